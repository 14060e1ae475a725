"""FER2013's faces framed by their landmarks as the detector frames a face (classpulse_bench.framed_faces), written in
Kaggle's layout for a training config's `extra_training_csv`: a face FER2013 framed otherwise (moved, turned) comes
out framed nearly as the same face framed as FER2013 framed it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classpulse_bench.framed_faces import framed_faces, landmark_framed, write_framed_csv
from classpulse_detector.settings import DetectorSettings
from classpulse_training.fer_csv import load_fer_csv, write_fer_csv

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def finder():
    return DetectorSettings(personal_face_detector="blazeface").face_finder("personal")


def _framed_otherwise(face: np.ndarray) -> np.ndarray:
    """The face as another crop of the same photo would show it: 3 px right, 2 px up, turned 8 degrees."""
    move = cv2.getRotationMatrix2D((24, 24), 8, 1.0)
    move[:, 2] += (3, -2)
    return cv2.warpAffine(face, move, (48, 48), borderMode=cv2.BORDER_REFLECT)


def test_a_face_framed_otherwise_comes_out_framed_as_the_same_face(finder, public_test_faces):
    centre = slice(8, 40)
    apart, framed_apart = [], []
    for seed, face in enumerate(public_test_faces[:24]):
        other = _framed_otherwise(face)
        framed, framed_other = landmark_framed(finder, face, seed), landmark_framed(finder, other, seed)
        assert framed is not None and framed_other is not None and framed.shape == (48, 48)
        apart.append(np.abs(face[centre, centre].astype(float) - other[centre, centre]).mean())
        framed_apart.append(np.abs(framed[centre, centre].astype(float) - framed_other[centre, centre]).mean())
    # Measured: 48 gray levels apart as FER2013 framed them, 18.5 framed by their landmarks (22 of 24 closer).
    assert np.median(framed_apart) < 0.6 * np.median(apart)
    assert np.mean(np.array(framed_apart) < np.array(apart)) >= 0.75


def test_blank_images_are_skipped_and_rows_name_the_faces_framed(finder, public_test_faces):
    faces = np.concatenate([public_test_faces[:3], np.full((1, 48, 48), 128, np.uint8), public_test_faces[3:5]])
    framed = framed_faces(finder, faces)
    assert framed.rows.tolist() == [0, 1, 2, 4, 5]
    assert framed.images.shape == (5, 48, 48) and framed.images.dtype == np.uint8
    assert not np.array_equal(framed.images[0], faces[0])  # cut again, not copied


def test_the_csv_written_holds_the_training_rows_framed_with_their_labels(tmp_path, public_test_faces):
    faces = np.concatenate([public_test_faces[:4], np.zeros((1, 48, 48), np.uint8)])
    labels = np.array([3, 0, 6, 4, 2])
    source = write_fer_csv(tmp_path / "in.csv", faces, labels, ["Training"] * 5)
    out = tmp_path / "runs" / "framed.csv.gz"
    assert write_framed_csv(str(source), out) == (5, 4)
    written = load_fer_csv(out)
    assert written.labels.tolist() == [3, 0, 6, 4] and set(written.usage) == {"Training"}
    assert written.images.shape == (4, 48, 48, 1)


def test_through_losses_each_face_comes_once_more_through_its_families_loss(finder, public_test_faces):
    from classpulse_bench.framed_faces import LOSSES
    from classpulse_detector.blazeface import sharpness

    faces = public_test_faces[:16]
    framed = framed_faces(finder, faces, through_losses=True)
    assert framed.rows.tolist() == [row for row in range(16) for _ in range(2)]  # as framed, then through a loss
    clean, lost = framed.images[0::2], framed.images[1::2]
    assert not any(np.array_equal(a, b) for a, b in zip(clean, lost, strict=True))
    # A blurred face is smaller and softer than the same face as framed: its crop has less fine detail. Measured on
    # these 4 faces: sharpness 0.43-1.26 as framed, 0.08-0.33 through the blur (at most 0.56 of the face's own).
    blurred = [row for row in range(16) if LOSSES[row % len(LOSSES)] == "blur"]
    assert all(sharpness(lost[row]) < 0.8 * sharpness(clean[row]) for row in blurred)
    assert framed_faces(finder, faces, through_losses=True).images.tobytes() == framed.images.tobytes()  # the same
