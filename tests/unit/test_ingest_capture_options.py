"""FFmpeg's per-kind limits (protocols, formats) apply to the one capture they were set for: OpenCV reads them from
the environment, and left there they would limit every later capture of the process to the last kind's formats."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from classpulse_ingest.diagnose import SourceError
from classpulse_ingest.video import SourceSpec, Timeouts, _open_capture

pytestmark = pytest.mark.unit


def test_a_streams_ffmpeg_limits_do_not_outlive_its_open(tmp_path):
    video = tmp_path / "lesson.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for n in range(5):
        writer.write(np.full((48, 64, 3), 40 * n, np.uint8))
    writer.release()
    before = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
    with pytest.raises(SourceError):
        _open_capture(SourceSpec("rtsp://127.0.0.1:1/camera"), Timeouts(open_ms=500, read_ms=500))
    assert os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS") == before
    capture = cv2.VideoCapture(str(video))  # a later reader of an mp4 file, with no limits of its own
    assert capture.isOpened() and capture.read()[0]
    capture.release()
