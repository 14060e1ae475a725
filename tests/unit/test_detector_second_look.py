"""BlazeFace's second look at its candidates (`BlazeFaceDetector.is_face`) on generated frames (FER2013 faces drawn
at run time from ../shared/data; skipped where it is absent): a coarse pyramid level's large "face" over a patch of
backdrop and small faces is not counted, nor a gallery's name label, and no drawn face the scan found is lost."""

from __future__ import annotations

import random

import pytest

from classpulse_bench.face_layouts import family_frame, picker
from classpulse_bench.faces import face_matches
from classpulse_detector.blazeface import BlazeFaceDetector

pytestmark = pytest.mark.unit

TUNING_SEED = 23
"""The bench's tuning seed (docs/face-detection.md). Before the second look, frames 9 and 10 of its room family each
held a large false "face" over several found faces, and frame 4 of its gallery family a name label ("Student 9")
scored 0.60."""
CHECKED = {"room": {9: 0, 10: 0}, "gallery": {4: 1}}
"""Family -> frame -> drawn faces the network misses at any second look (frame 4: a high-contrast face no scan finds at
the shipped score)."""


@pytest.mark.parametrize("family", sorted(CHECKED))
def test_generated_frames_have_no_false_face_and_lose_no_found_one(public_test_faces, family):
    rng = random.Random(f"{TUNING_SEED}:{family}")
    pick = picker(public_test_faces, rng)
    frames = [family_frame(family, number, rng, pick) for number in range(max(CHECKED[family]) + 1)]
    detector = BlazeFaceDetector(min_face_px=20)  # the room camera settings (CLASSPULSE_BLAZEFACE_MIN_FACE_PX)
    for number, missed in CHECKED[family].items():
        truth = [face.box for face in frames[number].faces]
        boxes = detector.detect(frames[number].gray)
        matched = face_matches(truth, boxes)
        assert len(boxes) == len(matched), f"{family} frame {number}: {len(boxes) - len(matched)} false faces"
        assert len(matched) == len(truth) - missed, f"{family} frame {number}: {len(truth) - len(matched)} faces missed"
