"""Tracking on a video of real motion, generated at run time from FER2013 faces (classpulse_bench.moving_faces): one
student walks across and back faster than a template's look-around reaches, one rolls their head +-30 degrees, one
leaves for six frames and comes back. The tracker must count every frame right, keep following a face that moves,
drop a face that leaves at once and count it again as soon as it is back, as a new track."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from classpulse_bench.moving_faces import AWAY_FRAMES, counted_right, drawn_face, moving_faces_video
from classpulse_detector.faces import landmarks_of
from classpulse_detector.settings import DetectorSettings
from classpulse_detector.tracking import TrackingDetector

pytestmark = pytest.mark.unit

SOURCE = ("class-a", "cam-1")
FRAME_MS = 500
NEVER_MS = 3_600_000
"""A full-scan interval longer than the video: every frame after the first is tracked (unless the picture changed)."""


@pytest.fixture(scope="module")
def video():
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv, sample_faces

    try:
        csv_path = resolve_fer_csv(None)
    except FerCsvNotFoundError as exc:
        pytest.skip(f"the moving-faces video is drawn from FER2013 faces: {exc}")
    picked = sample_faces(csv_path, {"happy": 2, "neutral": 2}, "PublicTest", random.Random(19))
    return moving_faces_video([face.pixels for group in picked.values() for face in group][:3], 24, 19)


@pytest.fixture(scope="module")
def blazeface():
    return DetectorSettings(personal_min_face_px=80).face_finder("personal")


@pytest.fixture(scope="module")
def haar():
    return DetectorSettings(face_detector="haar").face_finder("room")


def _follow(tracker: TrackingDetector, video) -> tuple[list[list], list[dict[str, int]]]:
    """The boxes of every frame, and per frame which track number each drawn face was found under."""
    found, numbers = [], []
    for n, frame in enumerate(video):
        boxes = tracker.detect(SOURCE, n + 1, n * FRAME_MS, frame.gray)
        found.append(boxes)
        numbers.append({drawn_face(frame, box): number for box, number in zip(boxes, tracker.track_ids(SOURCE), strict=True)})
    return found, numbers


def _check_leaver(numbers: list[dict[str, int]]) -> None:
    """The student who leaves is not counted while away, is counted on the first frame back, as a new track."""
    before = numbers[AWAY_FRAMES.start - 1]["leaver"]
    assert all("leaver" not in numbers[n] for n in AWAY_FRAMES)
    back = numbers[AWAY_FRAMES.stop]["leaver"]
    seen_before = {number for frame in numbers[: AWAY_FRAMES.stop] for number in frame.values()}
    assert back != before and back not in seen_before


@pytest.mark.parametrize("follow", ["detection", "template"])
def test_blazeface_counts_every_frame_right_and_keeps_following_the_faces_that_move(video, blazeface, follow):
    tracker = TrackingDetector(blazeface, NEVER_MS, follow=follow)
    found, numbers = _follow(tracker, video)
    wrong = [n for n, (frame, boxes) in enumerate(zip(video, found, strict=True)) if not counted_right(frame, boxes)]
    assert wrong == []
    # The walker (40 px a frame) and the roller stay one track each, from the first frame to the last.
    for role in ("walker", "roller"):
        assert len({frame[role] for frame in numbers}) == 1, role
    _check_leaver(numbers)
    assert tracker.stats.full_scans <= 2  # followed, not found by scanning the whole frame again


def test_haar_follows_the_faces_it_found_by_template_and_counts_nothing_else(video, haar):
    """Haar finds some of these faces only now and then (a head rolled past ~15 degrees, this leaver's face): a face
    it once found is followed through the roll and the walk, and a face that left is not counted while away."""
    tracker = TrackingDetector(haar, NEVER_MS, follow="template")
    found, numbers = _follow(tracker, video)
    assert all(drawn_face(frame, box) is not None for frame, boxes in zip(video, found, strict=True) for box in boxes)
    assert all("walker" in frame for frame in numbers) and len({frame["walker"] for frame in numbers}) == 1
    assert all("leaver" not in numbers[n] for n in AWAY_FRAMES)
    full_scan_counts = sum(len(haar.detect(frame.gray)) for frame in video)
    assert sum(map(len, found)) >= full_scan_counts  # following keeps faces Haar loses on their own


def _eye_line_deg(box) -> float:
    (rx, ry), (lx, ly) = landmarks_of(box)[:2]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def test_following_by_detection_carries_the_landmarks_of_the_frame_itself(video, blazeface):
    """The head pose and the aligned crop are read from the landmarks a box carries: followed by detection, they are
    those of the frame (a template match would carry those of the frame the face was last detected in: up to 9
    degrees off on the rolling head)."""
    tracker = TrackingDetector(blazeface, NEVER_MS, follow="detection")
    off = []
    for n, frame in enumerate(video):
        full = {drawn_face(frame, box): box for box in blazeface.detect(frame.gray)}
        for box in tracker.detect(SOURCE, n + 1, n * FRAME_MS, frame.gray):
            if drawn_face(frame, box) == "roller" and "roller" in full:
                off.append(abs(_eye_line_deg(box) - _eye_line_deg(full["roller"])))
    assert len(off) == len(video) and max(off) <= 6, np.round(off, 1)



def test_a_full_scan_pairs_its_faces_with_the_known_ones_so_they_keep_their_numbers(video, blazeface):
    """Full scans every other frame: each face found is paired (by overlap with where its motion put it) with the
    face it was, and keeps its number; only the student who left and came back gets a new one."""
    tracker = TrackingDetector(blazeface, FRAME_MS * 2, follow="detection")
    _, numbers = _follow(tracker, video)
    assert tracker.stats.full_scans >= len(video) // 2
    for role in ("walker", "roller"):
        assert len({frame[role] for frame in numbers}) == 1, role
    _check_leaver(numbers)
