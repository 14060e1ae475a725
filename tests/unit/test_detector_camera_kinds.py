"""Each camera kind gets its own face finder: BlazeFace from 80 px on a student's own webcam, BlazeFace from the gallery
floor on a video call's gallery, the room setting (BlazeFace by default, Haar a setting) on a room camera; each kind's setting moves only
its own kind."""

from __future__ import annotations

from typing import get_args

import pytest

from classpulse_core.schemas import CameraKind
from classpulse_detector.blazeface import BlazeFaceDetector
from classpulse_detector.faces import FaceDetector
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit


def finders(settings: DetectorSettings) -> dict[str, tuple[type, int]]:
    return {
        kind: (type(finder), finder.min_face_px)
        for kind in get_args(CameraKind)
        for finder in [settings.face_finder(kind)]
    }


def test_by_default_every_kind_gets_blazeface_from_its_own_floor():
    settings = DetectorSettings()
    assert finders(settings) == {
        "personal": (BlazeFaceDetector, 80),
        "gallery": (BlazeFaceDetector, settings.gallery_min_face_px),
        "room": (BlazeFaceDetector, settings.blazeface_min_face_px),
    }
    assert settings.gallery_min_face_px < settings.min_face_px  # a 25-tile gallery's faces are under Haar's floor
    assert set(settings.tracking_detectors()) == {"personal", "room", "gallery"}


def test_each_kinds_setting_moves_its_own_kind_only(monkeypatch):
    monkeypatch.setenv("CLASSPULSE_GALLERY_FACE_DETECTOR", "haar")
    monkeypatch.setenv("CLASSPULSE_GALLERY_MIN_FACE_PX", "64")
    monkeypatch.setenv("CLASSPULSE_FACE_DETECTOR", "haar")
    settings = DetectorSettings()
    assert finders(settings) == {
        "personal": (BlazeFaceDetector, 80),
        "gallery": (FaceDetector, 64),
        "room": (FaceDetector, settings.min_face_px),
    }
    assert [settings.detector_name(kind) for kind in ("personal", "gallery", "room")] == ["blazeface", "haar", "haar"]


def test_a_gallery_floor_under_what_blazeface_sees_is_refused(monkeypatch):
    monkeypatch.setenv("CLASSPULSE_GALLERY_MIN_FACE_PX", "8")
    with pytest.raises(ValueError, match="gallery_min_face_px"):
        DetectorSettings()
