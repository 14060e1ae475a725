"""A known face that no longer matches its template is looked for again by one run of BlazeFace's 128x128 square,
the face shown upright at the network's best size (`BlazeFaceDetector.look_again`), before any scan around it: found
there, it costs that one run (a scan at its level cost a 192x192 input and a second look); where nothing there looks
even a little like a face (a camera turned off, a student gone), it is dropped without the scans (its level, then
every level down to the source's smallest faces); where the look cannot tell, the scans run as before."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from classpulse_bench.face_layouts import background, paste_turned
from classpulse_detector.blazeface import BlazeFaceDetector
from classpulse_detector.faces import Face, FaceDetector, landmarks_of
from classpulse_detector.tracking import TrackingDetector
from counting_net import counted
from fer_faces import public_test_faces

pytestmark = pytest.mark.unit

SIZE = (640, 480)
SEATS = ((160, 200, 110), (470, 220, 100))
"""Centre x, centre y and side of each drawn face."""


def _drawn(faces: int, roll: float = 0.0) -> np.ndarray:
    canvas = background(random.Random(31), *SIZE)
    for face, (x, y, side) in zip(public_test_faces({"happy": 1, "neutral": 1}, 43)[:faces], SEATS, strict=False):
        paste_turned(canvas, face, (x, y), side, roll)
    return np.clip(canvas.round(), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector(min_score=0.5, min_face_px=20)


def _near(box, seat) -> bool:
    x, y, w, h = box
    cx, cy, side = seat
    return math.hypot(x + w / 2 - cx, y + h / 2 - cy) < side / 4 and 0.6 * side < max(w, h) < 1.6 * side


def test_a_face_that_turned_is_found_again_by_one_run_of_the_square(detector):
    still = _drawn(2)
    known = [box for box in detector.detect(still) if _near(box, SEATS[0])]
    assert len(known) == 1
    rolled = _drawn(2, roll=15.0)  # a head that rolled: the template no longer matches, the face is looked for
    counting = counted(detector)
    try:
        found = TrackingDetector(detector)._detected_near(rolled, known[0], [], None)
    finally:
        detector.network._net = counting.net
    assert counting.inputs == [detector.network.model.side**2]  # one 128x128 run, no scan
    assert found is not None and _near(found, SEATS[0])
    # Fresh landmarks, back in frame pixels: the eye line is a full scan's of the rolled frame, not the known one's.
    scanned = [box for box in detector.detect(rolled) if _near(box, SEATS[0])]
    assert abs(_eye_line_deg(found) - _eye_line_deg(scanned[0])) < 3.0
    assert abs(_eye_line_deg(found) - _eye_line_deg(known[0])) > 10.0


def _eye_line_deg(box) -> float:
    (rx, ry), (lx, ly) = landmarks_of(box)[:2]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def test_a_face_that_left_costs_one_run_and_is_dropped_without_scans(detector):
    with_face = _drawn(2)
    known = [box for box in detector.detect(with_face) if _near(box, SEATS[1])]
    assert len(known) == 1
    gone = _drawn(1)  # the second student left: only the backdrop where they sat
    counting = counted(detector)
    try:
        found = TrackingDetector(detector)._detected_near(gone, known[0], [], None)
    finally:
        detector.network._net = counting.net
    assert found is None
    assert counting.inputs == [detector.network.model.side**2]


def test_where_the_quick_look_cannot_tell_the_scans_run(detector):
    """A box without landmarks (or a look that finds only doubtful faces) is scanned for as before: its level."""
    still = _drawn(2)
    x, y, side = SEATS[0]
    plain = Face((x - side // 2, y - side // 2, side, side))
    assert detector.look_again(still, plain) is None
    counting = counted(detector)
    try:
        found = TrackingDetector(detector)._detected_near(still, plain, [], None)
    finally:
        detector.network._net = counting.net
    assert found is not None and _near(found, SEATS[0])
    assert counting.inputs and counting.inputs[0] > detector.network.model.side**2  # a scan at the face's level
    assert FaceDetector().look_again(still, plain) is None  # Haar has no quick look: always scanned for


def test_the_second_look_frames_by_the_landmarks_only_where_the_box_framing_does_not_pass(detector):
    """`is_face` asks `second_look` for a score over SECOND_LOOK_SCORE: a face its box framing shows clearly costs one
    run, not the landmark framing's second; the replay, which records the best score, still gets both framings."""
    from classpulse_detector.blazeface import SECOND_LOOK_SCORE

    gray = _drawn(1)
    (face,) = detector.detect(gray)
    x, y, w, h = face
    box = np.array((x, y, x + w, y + h), np.float32)
    counting = counted(detector)
    best = detector.second_look(gray, box, landmarks_of(face))
    assert best > SECOND_LOOK_SCORE and len(counting.inputs) == 2
    enough = detector.second_look(gray, box, landmarks_of(face), enough=SECOND_LOOK_SCORE)
    assert enough > SECOND_LOOK_SCORE and len(counting.inputs) == 3
