"""A BlazeFace scan that finds a blurred face is done again on the frame sharpened; a scan of sharp faces runs once
(docs/face-detection.md, "Scanning a blurred frame again, sharpened")."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from classpulse_bench.face_layouts import background, family_frames, paste_turned
from classpulse_bench.faces import face_matches
from classpulse_detector.blazeface import SCAN_SHARPEN_BELOW, BlazeFaceDetector, sharpness
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit


def _finder(camera_kind: str = "room", **settings: float) -> BlazeFaceDetector:
    finder = DetectorSettings(face_detector="blazeface", gallery_face_detector="blazeface", **settings).face_finder(
        camera_kind  # type: ignore[arg-type]
    )
    assert isinstance(finder, BlazeFaceDetector)
    # One pyramid: a gallery's second, shrunk scan (test_detector_gallery_shrunk_scan) sharpens its own frame alike,
    # and would add its faces and scans to the counts below.
    finder.shrunk_scan = 0.0
    return finder


@pytest.fixture(scope="module")
def public_test_faces() -> np.ndarray:
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv

    try:
        csv_path = resolve_fer_csv(None)
    except FerCsvNotFoundError as exc:
        pytest.skip(f"FER2013 is needed to draw faces: {exc}")
    return load_fer_csv(csv_path).split("PublicTest").images[..., 0]


def _blurred_gallery(images: np.ndarray):
    """Seed 19's 14th blurred frame: a gallery of 19 faces blurred by the camera; a scan finds 14 of them."""
    frame = list(family_frames(images, "blur", 14, 19))[13]
    assert frame.camera_kind == "gallery" and len(frame.faces) == 19
    return frame


def _scanned_frames(finder: BlazeFaceDetector, monkeypatch) -> list[np.ndarray]:
    """The frames the finder's pyramid is run on, recorded as it scans."""
    seen: list[np.ndarray] = []
    candidates = finder.candidates

    def recorded(gray, *args, **kwargs):
        seen.append(gray)
        return candidates(gray, *args, **kwargs)

    monkeypatch.setattr(finder, "candidates", recorded)
    return seen


def test_a_scan_of_sharp_faces_runs_once_on_the_frame_as_it_is(public_test_faces, monkeypatch):
    canvas = background(random.Random(1), 640, 480)
    paste_turned(canvas, public_test_faces[3], (320, 240), 160, 0.0)
    gray = np.clip(canvas.round(), 0, 255).astype(np.uint8)
    finder = _finder()
    seen = _scanned_frames(finder, monkeypatch)
    faces = finder.detect(gray)
    assert len(faces) == 1
    assert sharpness(finder.crop_one(gray, faces[0])) >= SCAN_SHARPEN_BELOW
    assert len(seen) == 1 and seen[0] is gray


def test_a_scan_finding_a_blurred_face_is_done_again_on_the_frame_sharpened(public_test_faces, monkeypatch):
    frame = _blurred_gallery(public_test_faces)
    truth = [face.box for face in frame.faces]
    as_it_is = _finder(frame.camera_kind, scan_sharpen_below=0).detect(frame.gray)
    assert (len(face_matches(truth, as_it_is)), len(as_it_is)) == (14, 14)
    assert np.median([sharpness(_finder().crop_one(frame.gray, face)) for face in as_it_is]) < SCAN_SHARPEN_BELOW

    finder = _finder(frame.camera_kind)
    seen = _scanned_frames(finder, monkeypatch)
    faces = finder.detect(frame.gray)
    assert (len(face_matches(truth, faces)), len(faces)) == (15, 15)
    assert len(seen) == 2 and seen[0] is frame.gray
    assert sharpness(seen[1]) > 1.5 * sharpness(frame.gray)  # the second scan saw the frame sharpened
    assert np.corrcoef(seen[1].ravel().astype(float), frame.gray.ravel().astype(float))[0, 1] > 0.95  # the same frame


def test_a_rescan_finding_a_blurred_face_is_done_again_on_the_frame_sharpened(public_test_faces, monkeypatch):
    frame = _blurred_gallery(public_test_faces)
    finder = _finder(frame.camera_kind)
    seen = _scanned_frames(finder, monkeypatch)
    smallest = min(face.box[2] for face in frame.faces)
    faces = finder.rescan(frame.gray, smallest)
    assert faces and len(seen) == 2 and sharpness(seen[1]) > 1.5 * sharpness(frame.gray)


def test_the_setting_turns_it_off(public_test_faces, monkeypatch):
    blurred = cv2.GaussianBlur(_blurred_gallery(public_test_faces).gray, (0, 0), 1.0)
    scans = []
    for below in (SCAN_SHARPEN_BELOW, 0):
        finder = _finder("gallery", scan_sharpen_below=below)
        seen = _scanned_frames(finder, monkeypatch)
        finder.detect(blurred)
        scans.append(len(seen))
    assert scans == [2, 1]
