"""`python -m classpulse_bench verifier`: trains the face / not-face verifier of BlazeFace's candidates
(classpulse_detector.verifier) and writes its weights next to it, printing their sha256 to pin in
`verifier.WEIGHTS_SHA256`.

The candidates come from frames of every generated family (`face_layouts.family_frame`) drawn from FER2013's
Training split under a seed of their own (SEED), never from PublicTest, whose faces the faces
bench draws under its tuning and report seeds, and never from faces-wild: each frame is scanned as the service
scans it, with every candidate down to TRAIN_MIN_SCORE kept (the merged, nested-free ones the verifier is shown). A
candidate centred on a drawn face at about its size (the bench's `face_matches` rule) is a face, every other one (a
name label, backdrop, a part of a face, a box beside a face, a box too large for its face) is not. The model is a
logistic regression on `verifier.features`, fitted by Newton's method with an L2 penalty on the standardised
features; the standardisation is folded into the weights, so the service only takes a dot product. The same seed,
frames and OpenCV build write the same file.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classpulse_bench.face_layouts import families, family_frame, picker
from classpulse_bench.faces import CENTRE_SHARE, SIDE_RANGE

TRAIN_MIN_SCORE = 0.4
"""Candidates down to this score are shown to the verifier in training: below the detector's lowest setting."""
FRAMES_PER_FAMILY = 10
SEED = "train1"
"""Of the training frames ("train1:<family>"): apart from the faces bench's integer seeds and from its PublicTest faces."""
L2 = 300.0
"""Penalty on the standardised weights; chosen on the tuning seeds (docs/face-detection.md, "Verifier")."""
NEWTON_STEPS = 40


@dataclass
class VerifierTrainingResult:
    faces: int
    not_faces: int
    accuracy: float
    path: Path
    sha256: str


def centred_on_a_face(box: np.ndarray, truth: list[tuple[int, int, int, int]]) -> bool:
    """Whether a candidate (x0, y0, x1, y1) is centred on a drawn face at about its size (`faces.face_matches`'s
    centre rule, without its one-to-one pairing or its IoU rule: the labels the pinned weights were trained with)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    for tx, ty, side, _ in truth:
        offset = max(abs((x0 + x1) / 2 - tx - side / 2), abs((y0 + y1) / 2 - ty - side / 2)) / side
        if offset <= CENTRE_SHARE and SIDE_RANGE[0] <= max(x1 - x0, y1 - y0) / side <= SIDE_RANGE[1]:
            return True
    return False


def candidates(images: np.ndarray, frames: int, seed: str) -> tuple[np.ndarray, np.ndarray]:
    """Features [N, FEATURES] and labels [N] (1: a face) of every candidate in `frames` frames a family."""
    from classpulse_detector.blazeface import BlazeFaceDetector
    from classpulse_detector.settings import DetectorSettings
    from classpulse_detector.verifier import FEATURES, FaceVerifier

    settings = DetectorSettings()
    untrained = FaceVerifier(np.zeros(FEATURES + 1, np.float32))  # never asked: candidates come before the verifier
    # Every frame but a webcam's is scanned as a room camera's (faces from 20 px), galleries too: the shipped weights
    # were trained so, before galleries had a finder of their own (faces from 16 px).
    room, personal = (
        BlazeFaceDetector(settings.blazeface_model, TRAIN_MIN_SCORE, min_face_px, verifier=untrained)
        for min_face_px in (settings.blazeface_min_face_px, settings.personal_min_face_px)
    )
    rows, labels = [], []
    for family in families():
        rng = random.Random(f"{seed}:{family}")
        pick = picker(images, rng)
        for number in range(frames):
            frame = family_frame(family, number, rng, pick)
            finder = personal if frame.camera_kind == "personal" else room
            found = finder.candidates(frame.gray, averaged_score=TRAIN_MIN_SCORE)  # one NMS, as when trained
            truth = [face.box for face in frame.faces]
            for index in range(len(found.scores)):
                rows.append(finder.candidate_features(frame.gray, found, index))
                labels.append(centred_on_a_face(found.boxes[index], truth))
    return np.array(rows, np.float64), np.array(labels, np.float64)


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = L2, steps: int = NEWTON_STEPS) -> np.ndarray:
    """[FEATURES + 1] float32: weights then bias of a logistic regression on the raw features."""
    mean, spread = features.mean(0), features.std(0) + 1e-6
    design = np.hstack([(features - mean) / spread, np.ones((len(features), 1))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    weights = np.zeros(design.shape[1])
    for _ in range(steps):
        probability = 1 / (1 + np.exp(-np.clip(design @ weights, -50, 50)))
        gradient = design.T @ (probability - labels) + penalty * weights
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-7:
            break
    scaled = weights[:-1] / spread
    return np.concatenate([scaled, [weights[-1] - float((scaled * mean).sum())]]).astype(np.float32)


def train_verifier(
    csv_path: str | None, seed: str = SEED, frames: int = FRAMES_PER_FAMILY, out: Path | None = None
) -> VerifierTrainingResult:
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_detector.verifier import WEIGHTS_PATH, FaceVerifier
    from classpulse_training.fer_csv import load_fer_csv

    images = load_fer_csv(resolve_fer_csv(csv_path)).split("Training").images[..., 0]
    features, labels = candidates(images, frames, seed)
    weights = fit_logistic(features, labels)
    accuracy = float(((FaceVerifier(weights).probability(features) >= 0.5) == labels).mean())
    buffer = io.BytesIO()
    np.save(buffer, weights, allow_pickle=False)
    path = out or WEIGHTS_PATH
    path.write_bytes(buffer.getvalue())
    return VerifierTrainingResult(
        int(labels.sum()), int(len(labels) - labels.sum()), round(accuracy, 4), path, hashlib.sha256(buffer.getvalue()).hexdigest()
    )
