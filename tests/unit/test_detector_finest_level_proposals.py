"""BlazeFace's finest pyramid level (the frame enlarged about twice for 20-px faces, over two thirds of a scan's CPU)
runs only on windows around the small faces the level above it proposes (down to PROPOSAL_SCORE): the same faces are
found as when the whole level runs, at a fraction of the network's input, and where the windows would cost as much as
the whole level, the whole level runs once."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from classpulse_bench.face_layouts import background, paste_turned
from classpulse_detector.blazeface import PROPOSAL_ALIGN, BlazeFaceDetector, Detections
from counting_net import counted
from fer_faces import public_test_faces

pytestmark = pytest.mark.unit

SIZE = (640, 480)
FACES = {"left": (120, 130, 100), "middle": (320, 130, 100), "right": (520, 130, 100), "back": (200, 380, 26), "corner": (560, 400, 30)}
"""name -> centre x, centre y, side: three seated faces, two far back (the finest level's sizes)."""


@pytest.fixture(scope="module")
def room() -> np.ndarray:
    faces = public_test_faces({"happy": 3, "neutral": 3}, 37)
    canvas = background(random.Random(29), *SIZE)
    for face, (x, y, side) in zip(faces, FACES.values(), strict=False):
        paste_turned(canvas, face, (x, y), side, 0.0)
    return np.clip(canvas.round(), 0, 255).astype(np.uint8)


def _names(boxes) -> list[str | None]:
    names = []
    for x, y, w, h in boxes:
        near = [name for name, (cx, cy, side) in FACES.items() if math.hypot(x + w / 2 - cx, y + h / 2 - cy) < side / 3]
        names.append(near[0] if near else None)
    return names


def test_the_finest_level_runs_only_around_proposals_and_finds_the_same_faces(room, monkeypatch):
    detector = BlazeFaceDetector(min_face_px=20)
    levels = detector.scales(*SIZE)
    finest = levels[-1] ** 2 * SIZE[0] * SIZE[1]
    counting = counted(detector)
    proposed = detector.detect(room)
    proposed_pixels = sum(counting.inputs)
    # Every level in full, as before: the finest level on the whole frame.
    monkeypatch.setattr(
        BlazeFaceDetector, "_proposed_level",
        lambda self, gray, region, scale, *proposals: self.network.run(gray, region, scale),
    )
    counting.inputs.clear()
    whole = detector.detect(room)
    assert sorted(_names(proposed), key=str) == sorted(_names(whole), key=str) == sorted(FACES)
    assert sum(counting.inputs) > finest  # the whole finest level ran...
    assert proposed_pixels < sum(counting.inputs) - 0.6 * finest  # ...and with proposals, at most 40% of it


def test_windows_that_would_cost_the_whole_level_give_way_to_it(room):
    detector = BlazeFaceDetector(min_face_px=20)
    scale = detector.scales(*SIZE)[-1]
    # Small "faces" proposed all over the frame: windows around them would cover the level many times over.
    xs, ys = np.meshgrid(np.arange(10, SIZE[0], 40), np.arange(10, SIZE[1], 40))
    boxes = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + 16, ys.ravel() + 16], axis=1)
    coarser = _boxes_scored(boxes, np.full(len(boxes), 0.3))
    counting = counted(detector)
    detector._proposed_level(room, (0, 0, *SIZE), scale, coarser)
    assert len(counting.inputs) == 1
    # One proposal: one window of the network's square, on the level's anchor grid.
    counting.inputs.clear()
    found = detector._proposed_level(room, (0, 0, *SIZE), scale, coarser.subset(np.arange(1)))
    assert counting.inputs == [detector.network.model.side**2]
    assert PROPOSAL_ALIGN % 8 == 0 and isinstance(found, Detections)


def test_a_part_of_a_sure_larger_face_gets_no_window_but_a_face_in_a_doubtful_one_does(room):
    """A small detection inside a much larger face scoring over SECOND_LOOK_BELOW is a part of it (an eye, a mouth),
    which the part rule would drop: no window. Inside a doubtful large "face" (a coarse level's "face" made of small
    faces and backdrop scores 0.60-0.70) it may be a face: its window runs."""
    detector = BlazeFaceDetector(min_face_px=20)
    scale = detector.scales(*SIZE)[-1]
    small = _boxes_scored([[300, 100, 330, 130]], [0.3])
    counting = counted(detector)
    for larger_score, windows in ((0.9, 0), (0.65, 1)):
        counting.inputs.clear()
        detector._proposed_level(room, (0, 0, *SIZE), scale, small, _boxes_scored([[260, 60, 380, 180]], [larger_score]))
        assert len(counting.inputs) == windows, larger_score


def _boxes_scored(boxes, scores) -> Detections:
    boxes = np.array(boxes, np.float32)
    return Detections(boxes, np.zeros((len(boxes), 6, 2), np.float32), np.array(scores, np.float32))
