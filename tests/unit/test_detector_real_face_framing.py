"""The emotion model's crops of real faces are framed as FER2013 framed its own faces (blazeface.REAL_FACE_FRAMING):
FER_FRAMING, found on FER2013's 48x48 crops enlarged, moved by what BlazeFace reads differently on such an enlarged
crop than on a whole photo. Finding faces (the verifier's crops, the scan-sharpening decision) keeps FER_FRAMING,
on which it was trained and chosen: a detector's crop framing never changes which faces it finds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classpulse_bench.face_layouts import family_frames
from classpulse_bench.faces import FACES_WILD, _wild_photos, real_face_framing
from classpulse_detector.blazeface import (
    FER_FRAMING,
    REAL_FACE_FRAMING,
    BlazeFaceDetector,
    Framing,
    aligned_crop,
    alignment,
)
from classpulse_detector.faces import landmarks_of
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit


def test_real_face_framing_moves_fer_framing_by_under_a_pixel_a_landmark():
    moves = np.array(REAL_FACE_FRAMING.points) - np.array(FER_FRAMING.points)
    assert 0 < np.abs(moves).max() < 1.0
    assert BlazeFaceDetector().framing == REAL_FACE_FRAMING


def test_alignment_places_the_landmarks_where_its_crop_shows_them():
    landmarks = np.array([[100, 120], [160, 110], [133, 150], [136, 180]], np.float64)
    cut = alignment(landmarks, FER_FRAMING)
    placed = cut.placed(landmarks)
    # the least-squares cut puts the landmarks' centroid on the framing's, turned level by the eye line
    assert placed.mean(0) == pytest.approx(np.array(FER_FRAMING.points).mean(0))
    assert placed[0, 1] == pytest.approx(placed[1, 1])
    # a bright dot at the nose tip shows in the crop where `placed` says
    gray = np.zeros((300, 300), np.uint8)
    cv2.circle(gray, (133, 150), 6, 255, -1)
    crop = cut.crop(gray)
    y, x = np.unravel_index(int(np.argmax(cv2.GaussianBlur(crop, (0, 0), 1.5))), crop.shape)
    assert abs(x - placed[2, 0]) <= 1 and abs(y - placed[2, 1]) <= 1


def _frames(images: np.ndarray) -> list:
    return [*family_frames(images, "noise", 2, 19), *family_frames(images, "blur", 1, 19)]


def _room_finder() -> BlazeFaceDetector:
    finder = DetectorSettings(face_detector="blazeface").face_finder("room")
    assert isinstance(finder, BlazeFaceDetector)
    return finder


def test_the_crop_framing_changes_the_model_crops_and_not_the_faces_found(public_test_faces):
    shipped, framed_otherwise = _room_finder(), _room_finder()
    framed_otherwise.framing = FER_FRAMING.zoomed(0.5, 8.0)
    frames = _frames(public_test_faces)
    # the verifier reads the same crops, framed as it was trained, whatever the model's framing
    candidates = shipped.candidates(frames[0].gray)
    assert len(candidates.scores) > 0
    for index in range(len(candidates.scores)):
        assert np.array_equal(
            shipped.candidate_features(frames[0].gray, candidates, index),
            framed_otherwise.candidate_features(frames[0].gray, candidates, index),
        )
    cut_real = 0
    for frame in frames:
        faces, others = shipped.detect(frame.gray), framed_otherwise.detect(frame.gray)
        assert faces == others
        assert all(np.array_equal(landmarks_of(a), landmarks_of(b)) for a, b in zip(faces, others, strict=True))
        assert shipped.crop(frame.gray, faces) != framed_otherwise.crop(frame.gray, faces)
        crops = np.frombuffer(shipped.crop(frame.gray, faces), np.uint8).reshape(-1, 48, 48)
        cut_real += sum(
            np.array_equal(crop, aligned_crop(frame.gray, landmarks_of(face), REAL_FACE_FRAMING))
            for crop, face in zip(crops, faces, strict=True)
        )
    assert cut_real > 0  # the model reads crops cut with REAL_FACE_FRAMING (a blurred face's is zoomed and sharpened)


def test_the_bench_measures_the_move_real_framing_is_made_of():
    if not (FACES_WILD / "labels.csv").is_file():
        pytest.skip(f"faces-wild is needed for real faces: {FACES_WILD} is absent")
    finder = BlazeFaceDetector()
    faces = []
    for path, _ in _wild_photos(12, 3):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        found = finder.detect(gray)
        if found:
            faces.append((gray, max(found, key=lambda box: box[2] * box[3])))
    measured = real_face_framing(finder, faces, 3)
    assert measured["faces"] == len(faces) >= 10 and measured["found_again"] >= 10
    offset = np.array(measured["offset_48px"])
    assert offset.shape == (4, 2) and np.abs(offset).max() < 1.5
    assert np.allclose(measured["landmarks_48px"], np.array(FER_FRAMING.points) - offset, atol=0.051)
    # cut with a framing 3 px lower, the landmarks found again are 3 px lower: what is measured is the cut's
    lower = real_face_framing(finder, faces, 3, Framing(tuple((x, y + 3) for x, y in FER_FRAMING.points)))
    lowered = np.array(lower["found_48px"])[:, 1] - np.array(measured["found_48px"])[:, 1]
    assert np.mean(lowered) == pytest.approx(3, abs=0.5)
