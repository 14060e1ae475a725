"""A recording continued by another reader (an ingest replica taking over a source) takes the very frames one reader
would have taken after the point where the first stopped: same positions on the timeline, none skipped, none twice,
wherever it stopped (before, on or between key frames); and the point is the oldest frame Kafka has not
acknowledged, unless it was dropped for good."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from classpulse_ingest.accounting import DropReason, ProgressTally
from classpulse_ingest.buffer import FrameBuffer, OutgoingFrame
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.video import SourceSpec, open_reader

pytestmark = pytest.mark.unit

FPS = 3.0  # not a divisor of the video's 10 fps: sampling instants fall between frames


def _positions(location: Path, stop_after: int | None = None, continue_at_ms: float | None = None) -> list[tuple[float, float]]:
    """(position, where reading continues after it) of each frame taken, the first `stop_after` only if given."""
    reader = open_reader(SourceSpec(str(location)), IngestSettings(), continue_at_ms=continue_at_ms)
    taken = []
    try:
        for raw in reader.frames(FPS, 0.0):
            taken.append((raw.position_ms, raw.continue_at_ms))
            if stop_after is not None and len(taken) == stop_after:
                break
    finally:
        reader.release()
    return taken


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("continuation") / "lesson.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for number in range(150):  # 15 s: a seek lands well inside
        writer.write(np.full((120, 160, 3), number % 250, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("stop_after", [1, 7, 20, 44])
def test_a_video_continued_by_another_reader_takes_the_frames_one_reader_takes(video, stop_after):
    whole = _positions(video)
    before = _positions(video, stop_after=stop_after)
    after = _positions(video, continue_at_ms=before[-1][1])
    assert [p for p, _ in before + after] == [p for p, _ in whole]


def test_a_folder_continued_by_another_reader_skips_the_images_read_before(tmp_path):
    for number in range(6):
        cv2.imwrite(str(tmp_path / f"{number:03d}.jpg"), np.full((40, 40, 3), number * 40, np.uint8))
    whole = _positions(tmp_path)
    before = _positions(tmp_path, stop_after=2)
    after = _positions(tmp_path, continue_at_ms=before[-1][1])
    assert [p for p, _ in before + after] == [p for p, _ in whole] and len(whole) == 6


def test_a_source_continues_at_its_oldest_frame_kafka_has_not_acknowledged():
    tally = ProgressTally("file", 10, 2500.0, lease=None)
    for sequence in range(10, 14):
        tally.handed(sequence, 250.0 * (sequence + 1))  # where reading goes on after it
    tally.published("lesson:11")
    tally.published("lesson:13")  # acknowledged out of order: 10 and 12 may still be lost
    at_first = tally.continuation()
    tally.published("lesson:10")
    after_ten = tally.continuation()
    tally.dropped(DropReason.BUFFER_FULL, "lesson:12")  # gone for good: not waited for
    assert at_first == (10, 2500.0) and after_ten == (12, 3000.0)
    assert tally.continuation() == (14, 3500.0) and tally.wait_settled(0)


def test_frames_dropped_at_shutdown_are_taken_again_where_the_recording_continues():
    tally = ProgressTally("file", 0, 0.0, lease=None)
    buffer = FrameBuffer(max_frames=256, max_bytes=1024 * 1024)
    for sequence in range(10):
        tally.handed(sequence, 500.0 * (sequence + 1))
        buffer.put(OutgoingFrame(b"class", b"jpeg", f"lesson:{sequence}", tally))
    for _ in range(4):  # sent and acknowledged; then Kafka answered nothing more
        tally.published(buffer.get(timeout_s=0).frame_id)
    for frame in buffer.drain():  # as KafkaSender.close drops the frames still waiting once its drain time ran out
        frame.tally.dropped(DropReason.SHUTDOWN, frame.frame_id)
    assert tally.continuation() == (4, 2000.0)
    assert tally.wait_settled(0) and tally.has_unpublished_frames()  # every frame answered for, six to take again


@pytest.mark.parametrize("reason", list(DropReason))
def test_only_a_frame_dropped_as_the_process_lets_the_source_go_is_taken_again(reason):
    """Dropped at shutdown, or once another replica holds the source, a frame is published where the recording
    continues; dropped for any other reason it is gone for good, whichever process runs the source."""
    tally = ProgressTally("file", 0, 0.0, lease=None)
    for sequence in range(3):
        tally.handed(sequence, 500.0 * (sequence + 1))
    tally.published("lesson:0")
    tally.dropped(reason, "lesson:1")
    tally.published("lesson:2")
    taken_again = reason in (DropReason.SHUTDOWN, DropReason.LEASE_LOST)
    assert tally.continuation() == ((1, 500.0) if taken_again else (3, 1500.0))
    assert tally.wait_settled(0) and tally.has_unpublished_frames() == taken_again
