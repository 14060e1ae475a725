"""A video of faces that move, turn, leave and come back, drawn at run time from FER2013 faces, with where each face
is in each frame: what the detector's tracking is tested and measured on (tests/unit/test_detector_tracking_motion.py,
`python -m classpulse_bench tracking`).

Three students on a 640x360 picture (a webcam-sized room view, faces 110 px wide): one walks across and back at 40 px
a frame (over a third of a face's side: further than a template's look-around reaches), one stays in place rolling
their head up to 30 degrees either way, one sits still, leaves for six frames and comes back a little to the side.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classpulse_bench.face_layouts import background, paste_turned
from classpulse_detector.faces import Box, landmarks_of

SIZE = (640, 360)
SIDE = 110
WALK_STEP_PX = 40
AWAY_FRAMES = range(8, 14)
"""Frames in which the third student is away."""


@dataclass(frozen=True)
class MovingFrame:
    gray: np.ndarray
    faces: dict[str, Box]
    """Where each student on camera is drawn (the face's square, without its halo), by role: walker, roller, leaver."""
    tilts: dict[str, float]
    """How far each face is rolled, in degrees, counter-clockwise on the picture (its eye line at -tilt)."""


def _walker(n: int) -> tuple[float, float, float]:
    span = (SIZE[0] - 2 * 70) // WALK_STEP_PX  # frames to cross once
    leg = n % (2 * span)
    x = 70 + WALK_STEP_PX * (leg if leg <= span else 2 * span - leg)
    return x, 100 + 15 * math.sin(n / 3), 0.0


def _roller(n: int) -> tuple[float, float, float]:
    return 450 + 10 * math.sin(n / 4), 262, 30 * math.sin(2 * math.pi * n / 12)


def _leaver(n: int) -> tuple[float, float, float] | None:
    if n in AWAY_FRAMES:
        return None
    return (150 + 3 * n if n < AWAY_FRAMES.start else 190 + 2 * n), 262, 0.0


def moving_faces_video(faces: Sequence[np.ndarray], frames: int = 24, seed: int = 0) -> list[MovingFrame]:
    """The video's frames (gray, uint8) from three 48x48 faces, with the place of each face on camera."""
    if len(faces) < 3:
        raise ValueError("three faces are needed")
    backdrop = background(random.Random(seed), *SIZE)
    noise = np.random.default_rng(seed)
    video = []
    for n in range(frames):
        canvas = backdrop.copy()
        placed, tilts = {}, {}
        # The first three faces play the three roles; the others are not used.
        roles = zip(("walker", "roller", "leaver"), faces, (_walker(n), _roller(n), _leaver(n)), strict=False)
        for role, face, where in roles:
            if where is None:
                continue
            x, y, tilt = where
            paste_turned(canvas, face, (round(x), round(y)), SIDE, tilt)
            placed[role] = (round(x) - SIDE // 2, round(y) - SIDE // 2, SIDE, SIDE)
            tilts[role] = tilt
        canvas += noise.normal(0, 2, canvas.shape)  # sensor noise: no two frames alike
        video.append(MovingFrame(np.clip(canvas.round(), 0, 255).astype(np.uint8), placed, tilts))
    return video


def drawn_face(frame: MovingFrame, box: Box) -> str | None:
    """The role of the face drawn where `box` is (its centre within a third of a face's side of the drawn centre)."""
    for role, (x, y, w, h) in frame.faces.items():
        if math.hypot(box[0] + box[2] / 2 - x - w / 2, box[1] + box[3] / 2 - y - h / 2) < SIDE / 3:
            return role
    return None


def counted_right(frame: MovingFrame, boxes: list[Box]) -> bool:
    """Whether `boxes` are exactly the faces drawn: each face found once, nothing else."""
    roles = [drawn_face(frame, box) for box in boxes]
    return None not in roles and sorted(roles) == sorted(frame.faces)


def roll_error_deg(frame: MovingFrame, box: Box) -> float | None:
    """How far the eye line of the landmarks `box` carries is from the drawn face's roll (None without landmarks)."""
    role, landmarks = drawn_face(frame, box), landmarks_of(box)
    if role is None or landmarks is None:
        return None
    (rx, ry), (lx, ly) = landmarks[:2]
    return abs(math.degrees(math.atan2(ly - ry, lx - rx)) + frame.tilts[role])
