"""Detect, then track: the tracker gives the boxes a full scan would, for a fraction of the scans, and scans at once
whenever what it knows may be stale (a face arrives, leaves, moves far; frames out of order; the interval is up)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classpulse_demo.sample_class import generate_sample_class
from classpulse_detector.faces import FaceDetector
from classpulse_detector.tracking import TrackingDetector

pytestmark = pytest.mark.unit

SOURCE = ("class-a", "cam-1")


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[np.ndarray]:
    paths = generate_sample_class(None, tmp_path_factory.mktemp("sample"), seconds=3, fps=2)
    capture = cv2.VideoCapture(str(paths.video))
    grays = []
    while True:
        ok, image = capture.read()
        if not ok:
            return grays
        grays.append(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _shifted(gray: np.ndarray, dx: int, dy: int) -> np.ndarray:
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(gray, shift, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)


def _close(a, b, tolerance: int = 3) -> bool:
    return len(a) == len(b) and all(abs(p - q) <= tolerance for box_a, box_b in zip(a, b, strict=True) for p, q in zip(box_a, box_b, strict=True))


def test_a_still_class_is_tracked_between_full_scans_with_the_full_scans_boxes(frames, detector):
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    first = frames[0]
    expected = detector.detect(first)
    assert len(expected) >= 4
    for n in range(5):
        assert tracker.detect(SOURCE, n + 1, n * 100, first) == expected
    assert (tracker.stats.full_scans, tracker.stats.tracked_frames) == (1, 4)


def test_the_interval_forces_a_full_scan(frames, detector):
    tracker = TrackingDetector(detector, full_scan_interval_ms=1000)
    for n, captured_at_ms in enumerate((0, 400, 800, 1000, 1400)):
        tracker.detect(SOURCE, n + 1, captured_at_ms, frames[0])
    assert (tracker.stats.full_scans, tracker.stats.tracked_frames) == (2, 3)


def test_interval_zero_scans_every_frame(frames, detector):
    tracker = TrackingDetector(detector, full_scan_interval_ms=0)
    for n in range(3):
        tracker.detect(SOURCE, n + 1, n, frames[0])
    assert tracker.stats.full_scans == 3


def test_faces_that_move_a_little_are_followed_without_a_scan(frames, detector):
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    boxes = tracker.detect(SOURCE, 1, 0, frames[0])
    moved = tracker.detect(SOURCE, 2, 100, _shifted(frames[0], 6, -4))
    assert tracker.stats.full_scans == 1
    assert _close(moved, [(x + 6, y - 4, w, h) for x, y, w, h in boxes], tolerance=4)


def test_faces_arriving_or_leaving_are_found_at_once(frames, detector):
    counts = [len(detector.detect(gray)) for gray in frames]
    arrival = next(n for n in range(1, len(frames)) if counts[n] > counts[n - 1])
    departure = next((n for n in range(1, len(frames)) if counts[n] < counts[n - 1]), None)
    for change in (arrival, departure):
        if change is None:
            continue
        tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
        tracker.detect(SOURCE, 1, 0, frames[change - 1])
        assert _close(tracker.detect(SOURCE, 2, 100, frames[change]), detector.detect(frames[change]))
        # A full scan, or a scan of where the picture changed: never nothing.
        assert tracker.stats.full_scans + tracker.stats.region_scans == 2


def test_a_change_in_one_place_is_scanned_there_and_a_change_everywhere_in_full(frames, detector):
    still = frames[0]
    boxes = detector.detect(still)
    x, y, w, h = boxes[0]
    free = [  # a place for another face, away from every known one
        (fx, fy) for fy in range(0, still.shape[0] - h, 8) for fx in range(0, still.shape[1] - w, 8)
        if all(fx + w + bw // 2 < bx or bx + bw + bw // 2 < fx or fy + h + bh // 2 < by or by + bh + bh // 2 < fy
               for bx, by, bw, bh in boxes)
    ]
    assert free, "the sample frame has no room for another face"
    fx, fy = free[0]
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    tracker.detect(SOURCE, 1, 0, still)
    arrived = still.copy()  # the first student's face turns up a second time, where there was no one
    arrived[fy : fy + h, fx : fx + w] = still[y : y + h, x : x + w]
    assert len(detector.detect(arrived)) == len(boxes) + 1
    found = tracker.detect(SOURCE, 2, 100, arrived)
    assert (tracker.stats.full_scans, tracker.stats.region_scans) == (1, 1)
    assert _close(found, detector.detect(arrived), tolerance=8)
    tracker.detect(SOURCE, 3, 200, arrived)  # re-anchored: the same picture is tracked, not scanned again
    assert (tracker.stats.full_scans, tracker.stats.region_scans) == (1, 1)
    brighter = np.clip(arrived.astype(np.int16) + 80, 0, 255).astype(np.uint8)  # the light changed everywhere
    assert _close(tracker.detect(SOURCE, 4, 300, brighter), detector.detect(brighter), tolerance=8)
    assert tracker.stats.full_scans == 2


def test_out_of_order_or_replayed_frames_are_scanned(frames, detector):
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    tracker.detect(SOURCE, 5, 500, frames[0])
    tracker.detect(SOURCE, 5, 500, frames[0])  # redelivered
    tracker.detect(SOURCE, 3, 300, frames[0])  # older
    assert tracker.stats.full_scans == 3


def test_sources_are_tracked_apart_and_the_oldest_forgotten(frames, detector):
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000, max_sources=2)
    for source in (("c", "a"), ("c", "b"), ("c", "c")):
        tracker.detect(source, 1, 0, frames[0])
    tracker.detect(("c", "c"), 2, 100, frames[0])  # known: tracked
    tracker.detect(("c", "a"), 2, 100, frames[0])  # forgotten (least recently seen): scanned
    assert (tracker.stats.full_scans, tracker.stats.tracked_frames) == (4, 1)


def test_a_noisy_shaking_webcam_is_still_mostly_tracked(frames, detector):
    rng = np.random.default_rng(1)
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    still = frames[0]
    expected = detector.detect(still)
    for n in range(12):
        dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
        noisy = np.clip(_shifted(still, dx, dy) + rng.normal(0, 4, still.shape), 0, 255).astype(np.uint8)
        found = tracker.detect(SOURCE, n + 1, n * 100, noisy)
        assert _close(found, [(x + dx, y + dy, w, h) for x, y, w, h in expected], tolerance=6)
    assert tracker.stats.tracked_frames >= 9


def test_a_face_that_changes_in_place_is_rescanned_around_it_not_in_the_whole_frame(frames, detector):
    still = frames[0]
    boxes = detector.detect(still)
    (x, y, w, h), (ox, oy, _, _) = boxes[0], boxes[1]
    swapped = still.copy()
    swapped[y : y + h, x : x + w] = still[oy : oy + h, ox : ox + w]  # another student's face in the first tile
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    tracker.detect(SOURCE, 1, 0, still)
    found = tracker.detect(SOURCE, 2, 100, swapped)
    assert tracker.stats.full_scans == 1 and tracker.stats.lost_faces == 1
    assert _close(found, detector.detect(swapped), tolerance=8)
    tracker.detect(SOURCE, 3, 200, swapped)  # re-anchored on the new face: it matches again
    assert tracker.stats.lost_faces == 1


def test_a_face_that_leaves_is_dropped_and_counted_again_as_soon_as_it_is_back(frames, detector):
    still = frames[0]
    boxes = detector.detect(still)
    x, y, w, h = boxes[0]
    away = still.copy()
    away[y : y + h, x : x + w] = int(np.median(still[y : y + h, x - 4 : x]))  # the tile's colour, no face
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    tracker.detect(SOURCE, 1, 0, still)
    assert tracker.detect(SOURCE, 2, 100, away) == [box for box in boxes if box != boxes[0]]
    assert tracker.stats.full_scans == 1
    back = tracker.detect(SOURCE, 3, 200, still)  # the picture changed where no face is known: scanned there
    assert _close(back, boxes) and (tracker.stats.full_scans, tracker.stats.region_scans) == (1, 1)


def test_a_steady_motion_is_predicted_so_the_template_finds_the_faces_where_they_went(frames, detector):
    """Faces moving 40 px a frame, beyond a template's look-around (a quarter of a face's side, 24-37 px here): only
    the first step needs the cascade; from then on each face's motion puts the look-around where the face is, and the
    only faces lost are those that moved out of the picture."""
    still = frames[0]
    faces = detector.detect(still)
    tracker = TrackingDetector(detector, full_scan_interval_ms=10_000)
    lost_after_first_step = 0
    for n in range(5):
        found = tracker.detect(SOURCE, n + 1, n * 100, _shifted(still, 40 * n, 0))
        inside = [(x + 40 * n, y) for x, y, w, _ in faces if x + w + 40 * n <= still.shape[1]]
        assert len(found) == len(inside)
        assert all(any(abs(x - b[0]) <= 8 and abs(y - b[1]) <= 8 for b in found) for x, y in inside)
        if n == 1:
            lost_after_first_step = tracker.stats.lost_faces
    gone = sum(x + w + 40 * 4 > still.shape[1] for x, _, w, _ in faces)
    assert tracker.stats.full_scans == 1
    assert tracker.stats.lost_faces - lost_after_first_step == gone, tracker.stats
