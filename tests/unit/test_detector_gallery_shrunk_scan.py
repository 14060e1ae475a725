"""A gallery's full scan is run again on the frame shrunk (blazeface.GALLERY_SHRUNK_SCAN): the faces only that scan
finds are added, back in the frame's pixels with their landmarks; a face it finds again, or a part of one, is not;
scans of a region (a tracked face's surroundings, a change) and the other camera kinds' scans run once."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from classpulse_core.schemas import CameraKind
from classpulse_detector.blazeface import GALLERY_SHRUNK_SCAN, BlazeFaceDetector, _apart
from classpulse_detector.faces import Face, landmarks_of
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit

FRAME = (100, 200)  # height, width


def _face(x: int, y: int, side: int) -> Face:
    """A square face with its eyes, nose, mouth and ears where a frontal face's are."""
    shares = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.5, 0.75], [0.1, 0.45], [0.9, 0.45]], np.float32)
    return Face((x, y, side, side), shares * side)


@pytest.fixture
def detector(monkeypatch) -> tuple[BlazeFaceDetector, list]:
    """A finder shrinking by half whose scans return set faces by the size of the frame they are given."""
    finder = BlazeFaceDetector(min_face_px=16, shrunk_scan=0.5)
    calls: list = []

    def detected(gray, region, largest_px, smallest_px):
        calls.append((gray.shape, region, largest_px, smallest_px))
        if gray.shape == FRAME:
            return [_face(10, 10, 40)]
        assert gray.shape == (FRAME[0] // 2, FRAME[1] // 2)
        return [
            _face(6, 6, 18),  # the full scan's face again: overlaps it
            _face(12, 12, 6),  # a part of it: centred inside it
            _face(60, 10, 20),  # a face only the shrunk scan finds
        ]

    monkeypatch.setattr(finder, "_detected", detected)
    return finder, calls


def test_a_full_scan_adds_the_faces_only_the_shrunk_scan_finds_back_in_frame_pixels(detector):
    finder, calls = detector
    faces = finder.detect(np.zeros(FRAME, np.uint8), largest_px=90, smallest_px=30)
    assert [tuple(face) for face in faces] == [(10, 10, 40, 40), (120, 20, 40, 40)]
    added = landmarks_of(faces[1])
    assert added is not None
    np.testing.assert_allclose(added, landmarks_of(_face(120, 20, 40)), atol=1e-4)  # landmarks scaled with the box
    # The shrunk scan looks for the same faces in its own pixels.
    assert calls == [(FRAME, None, 90, 30), ((50, 100), None, 45, 15)]


def test_a_region_scan_runs_once(detector):
    finder, calls = detector
    faces = finder.detect(np.zeros(FRAME, np.uint8), (0, 0, 100, 100))
    assert [tuple(face) for face in faces] == [(10, 10, 40, 40)]
    assert len(calls) == 1


def test_apart_means_no_overlap_and_neither_centred_in_the_other():
    face = (100, 100, 40, 40)
    assert _apart((200, 100, 40, 40), [face])
    assert not _apart((105, 105, 40, 40), [face])  # the same face, moved a little
    assert not _apart((110, 110, 10, 10), [face])  # a part of it (an eye): IoU 0.06, but centred inside
    assert not _apart((70, 70, 100, 100), [face])  # the face and its halo: the face centred inside
    assert _apart(face, [])


def test_only_a_gallerys_finder_scans_twice():
    settings = DetectorSettings()
    shrunk = {kind: settings.face_finder(kind).shrunk_scan for kind in get_args(CameraKind)}
    assert shrunk == {"personal": 0.0, "room": 0.0, "gallery": GALLERY_SHRUNK_SCAN}
    assert 0 < GALLERY_SHRUNK_SCAN < 1
