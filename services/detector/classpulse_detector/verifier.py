"""A face / not-face verifier for BlazeFace's candidates: a linear model on the HOG of the aligned 48x48 crop the
pipeline cuts for each candidate and of a crop of what surrounds it, with the network's score and the landmarks'
geometry beside them.

BlazeFace's score separates faces from what it mistakes for them (a gallery tile's name label, a patch of backdrop, an
ear or a brow of a face it missed, a box beside a found face) poorly between 0.5 and 0.7, where the blurred, small and
hard-JPEG faces it misses score too (docs/face-detection.md, "Second look" and "Verifier"). The crop shows what the
score does not: text, a cheek without eyes, and around it, the tile's label under a face or the faces around a patch
of backdrop. The detector asks it only about the candidates scoring under 0.6 (`blazeface.VERIFIED_BELOW`): judging
those of 0.6-0.7 too, it dropped real faces of faces-wild (docs/face-detection.md, "Where the verifier judges"); a
gallery camera's finder asks it up to 0.7, where a gallery's false faces are (`blazeface.GALLERY_VERIFIED_BELOW`).
The weights (`face_verifier.npy`, a few KB) are trained on candidates of
generated layouts drawn from FER2013's Training split, never from the faces the bench reports on; rebuilt by
`python -m classpulse_bench verifier` (classpulse_bench.verifier_training), which prints the sha256 to pin below.
The file is checked against it before it is loaded, like the BlazeFace models.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import cv2
import numpy as np

from classpulse_core.schemas import CROP_SIDE

WEIGHTS_PATH = Path(__file__).with_name("face_verifier.npy")
WEIGHTS_SHA256 = "bb210c14f9d99f46403b3b035383aa24a637f24d0d24d2ee201ebdb22ec80886"
"""Of the file `python -m classpulse_bench verifier` writes (it prints it)."""

HOG = cv2.HOGDescriptor((CROP_SIDE, CROP_SIDE), (16, 16), (8, 8), (8, 8), 9)
"""Gradient orientations of the crop in 8-px cells (9 bins), normalised over 2x2 cells: 25 blocks, 900 numbers.
Text, a cheek or a flat backdrop has gradients unlike two eyes over a nose and a mouth, at any brightness."""
CONTEXT_GROWTH = 2.0
"""The context crop shows a square of this many times the candidate's side about its centre, turned upright by its eye
line: the face and its neighbourhood (a label under a gallery tile, the face a part belongs to). On the tuning frames
(seeds 23 and 41), candidates scoring 0.45-0.7: area under the ROC 0.90 with the aligned crop alone (the score alone:
0.89), 0.97 with the context crop beside it."""
CONTEXT_SIDE = 32
CONTEXT_HOG = cv2.HOGDescriptor((CONTEXT_SIDE, CONTEXT_SIDE), (16, 16), (8, 8), (8, 8), 9)
"""The same cells as HOG on the context crop: 9 blocks, 324 numbers."""
GEOMETRY = 5
"""Numbers besides the HOG: the network's score (as a logit), and the box's side and the eye-to-mouth distance over
the eye distance, the nose's offset from the eyes' midpoint (across, along the face), logs of ratios where a ratio."""
FEATURES = HOG.getDescriptorSize() + CONTEXT_HOG.getDescriptorSize() + GEOMETRY


class VerifierFileError(RuntimeError):
    """The verifier's weights are missing or are not the pinned ones: the detector refuses to start."""


def context_crop(gray: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """CONTEXT_SIDE x CONTEXT_SIDE uint8: the square of CONTEXT_GROWTH times the box's side about its centre, turned so
    that the eye line is level."""
    x0, y0, x1, y1 = (float(v) for v in box)
    (rx, ry), (lx, ly) = landmarks[:2]
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    scale = CONTEXT_SIDE / (CONTEXT_GROWTH * max(x1 - x0, y1 - y0, 1e-3))
    turn = np.asarray(cv2.getRotationMatrix2D(centre, math.degrees(math.atan2(ly - ry, lx - rx)), scale), np.float64)
    turn[:, 2] += CONTEXT_SIDE / 2 - np.array(centre)
    return cv2.warpAffine(
        gray, turn, (CONTEXT_SIDE, CONTEXT_SIDE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


def features(gray: np.ndarray, crop: np.ndarray, score: float, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """[FEATURES] float32 for one candidate of the frame `gray`: its aligned crop (48x48 uint8), its score, its box
    (x0, y0, x1, y1) and landmarks ([>=4, 2]: right eye, left eye, nose tip, mouth), all in frame pixels."""
    right, left, nose, mouth = (landmarks[i].astype(np.float64) for i in range(4))
    across = left - right
    eyes = max(float(np.hypot(*across)), 1e-3)
    unit = across / eyes
    normal = np.array([-unit[1], unit[0]])
    middle = (left + right) / 2
    clipped = min(max(score, 1e-4), 1 - 1e-4)
    geometry = [
        math.log(clipped / (1 - clipped)),
        math.log(max(float(box[2] - box[0]), float(box[3] - box[1]), 1e-3) / eyes),
        math.log(max(float(np.hypot(*(mouth - middle))), 1e-3) / eyes),
        float((nose - middle) @ unit) / eyes,
        float((nose - middle) @ normal) / eyes,
    ]
    return np.concatenate([
        np.asarray(HOG.compute(np.ascontiguousarray(crop)), np.float32).ravel(),
        np.asarray(CONTEXT_HOG.compute(context_crop(gray, box, landmarks)), np.float32).ravel(),
        np.array(geometry, np.float32),
    ])


class FaceVerifier:
    """The probability that a candidate is a face: sigmoid(weights . features + bias)."""

    def __init__(self, weights: np.ndarray) -> None:
        if weights.shape != (FEATURES + 1,):
            raise VerifierFileError(f"face verifier weights have shape {weights.shape}, expected ({FEATURES + 1},)")
        self.weights = weights[:-1].astype(np.float32)
        self.bias = float(weights[-1])

    @staticmethod
    def load(path: Path = WEIGHTS_PATH, sha256: str = WEIGHTS_SHA256) -> FaceVerifier:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise VerifierFileError(f"cannot read the face verifier's weights {path}: {exc}") from exc
        digest = hashlib.sha256(content).hexdigest()
        if digest != sha256:
            raise VerifierFileError(
                f"face verifier weights {path} have sha256 {digest}, expected {sha256}: refusing a changed or corrupt "
                "file (rebuild: python -m classpulse_bench verifier)"
            )
        return FaceVerifier(np.load(io.BytesIO(content), allow_pickle=False))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """[N] probabilities for [N, FEATURES] features."""
        logits = np.clip(features @ self.weights + self.bias, -50, 50)
        probabilities: np.ndarray = 1 / (1 + np.exp(-logits))
        return probabilities
