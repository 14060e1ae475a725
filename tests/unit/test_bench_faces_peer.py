"""The fer package on the faces bench's frames (`classpulse_bench.faces_peer`): the real package, run on generated
frames as the bench runs it, read by the same matching and share figures as ClassPulse's rows."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fer():
    from classpulse_bench.peers import PeerUnavailable, fer_reader

    try:
        return fer_reader()
    except PeerUnavailable as exc:
        pytest.skip(str(exc))


def test_fer_reads_each_face_as_probabilities_over_the_seven_emotions(public_test_split, fer):
    import cv2

    from classpulse_bench.face_layouts import family_frames

    images, _ = public_test_split
    frame = next(family_frames(images, "webcam", 1, 19))
    faces = fer(cv2.cvtColor(frame.gray, cv2.COLOR_GRAY2BGR))
    assert faces, "fer finds the webcam family's first face of seed 19"
    for box, probabilities in faces:
        assert len(box) == 4 and probabilities.shape == (7,)
        assert np.isclose(probabilities.sum(), 1.0) and (probabilities >= 0).all()


def test_a_familys_row_scores_fer_on_the_frames_classpulse_is_scored_on(public_test_split, fer):
    from classpulse_bench.face_layouts import family_frames
    from classpulse_bench.faces_peer import family_row

    images, labels = public_test_split
    row = family_row(fer, images, labels, "gallery", 2, 19)
    drawn = sum(len(frame.faces) for frame in family_frames(images, "gallery", 2, 19))
    assert row["frames"] == 2 and row["faces"] == drawn
    assert 0 < row["recall"] <= 1 and 0 < row["precision"] <= 1
    # A missed face counts wrong on every face shown, so that figure is the found faces' times the recall.
    assert row["accuracy_faces_shown"] == pytest.approx(row["accuracy_found_faces"] * row["recall"], abs=2e-4)
    assert 0 <= row["shares_tvd_raw"] <= 1 and 0 <= row["shares_tvd_mixes_raw"] <= 1
    assert "shares_tvd_mixes_corrected" not in row  # fer shows its raw mean: nothing corrects it
    assert row["cpu_ms_per_frame"] > 0


def test_faces_wild_counts_a_photo_without_a_face_found_as_wrong(fer):
    from classpulse_bench.faces import FACES_WILD, _wild_photos
    from classpulse_bench.faces_peer import wild_row

    if not (FACES_WILD / "labels.csv").is_file():
        pytest.skip(f"faces-wild is absent: {FACES_WILD}")
    row = wild_row(fer, _wild_photos(12, 19))
    assert row["photos"] == 12 and 0 < row["found"] <= 1
    assert row["accuracy_every_photo"] == pytest.approx(row["accuracy_largest_face"] * row["found"], abs=2e-4)
