"""A blurred face's crop is framed tighter and sharpened before the emotion model reads it; a sharp face's crop, and
the crop the verifier reads, are the aligned crop as cut (docs/face-detection.md, "Sharpening a blurred face's crop"
and "What the crops lose: the frame or the pipeline")."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from classpulse_bench.face_layouts import background, paste_turned
from classpulse_detector.blazeface import (
    BLURRED_ZOOM,
    SHARPEN_AMOUNT,
    SHARPEN_BELOW,
    SHARPEN_SIGMA,
    BlazeFaceDetector,
    sharpness,
    unsharp,
)
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def finder() -> BlazeFaceDetector:
    finder = DetectorSettings(face_detector="blazeface").face_finder("room")
    assert isinstance(finder, BlazeFaceDetector)
    return finder


@pytest.fixture(scope="module")
def frame_and_face(finder) -> tuple[np.ndarray, object]:
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv, sample_faces

    try:
        csv_path = resolve_fer_csv(None)
    except FerCsvNotFoundError as exc:
        pytest.skip(f"FER2013 is needed to draw a face: {exc}")
    face = sample_faces(csv_path, {"happy": 1}, "PublicTest", random.Random(3))["happy"][0].pixels
    canvas = background(random.Random(1), 640, 480)
    paste_turned(canvas, face, (320, 240), 192, 0.0)
    gray = np.clip(canvas.round(), 0, 255).astype(np.uint8)
    found = finder.detect(gray)
    assert len(found) == 1
    return gray, found[0]


def _crop(finder: BlazeFaceDetector, gray: np.ndarray, face) -> np.ndarray:
    return np.frombuffer(finder.crop(gray, [face]), np.uint8).reshape(48, 48)


def test_a_sharp_face_is_cropped_as_aligned(finder, frame_and_face):
    gray, face = frame_and_face
    aligned = finder.crop_one(gray, face)
    assert sharpness(aligned) >= SHARPEN_BELOW
    assert np.array_equal(_crop(finder, gray, face), aligned)


def test_a_blurred_face_is_sharpened_for_the_model_only(finder, frame_and_face):
    gray, face = frame_and_face
    blurred = cv2.GaussianBlur(gray, (0, 0), 8)  # a 192-px face out of focus: about 2 px of blur in its 48-px crop
    aligned = finder.crop_one(blurred, face)  # what the verifier reads
    assert sharpness(aligned) < SHARPEN_BELOW
    crop = _crop(finder, blurred, face)
    assert sharpness(crop) > 1.5 * sharpness(aligned)
    assert np.corrcoef(crop.ravel().astype(float), aligned.ravel().astype(float))[0, 1] > 0.9  # the same face
    # Framed tighter: BlazeFace spreads a blurred face's landmarks wider than the face's.
    tighter = finder.crop_one(blurred, face, finder.framing.zoomed(BLURRED_ZOOM))
    assert BLURRED_ZOOM > 1 and np.array_equal(crop, unsharp(tighter, SHARPEN_AMOUNT, SHARPEN_SIGMA))
    never = DetectorSettings(face_detector="blazeface", crop_sharpen_below=0).face_finder("room")
    assert np.array_equal(_crop(never, blurred, face), aligned)  # type: ignore[arg-type]
