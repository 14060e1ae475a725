"""Class shares corrected for the model's known errors (PACC from a window's mean probabilities), and the file the
API reads them from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings
from classpulse_core.labels import EMOTIONS
from classpulse_core.share_correction import (
    FILE_NAME,
    ShareCorrection,
    mean_probabilities,
    project_to_simplex,
    solve_shares,
)
from classpulse_training import class_mixes, model_card
from classpulse_training.versions import latest_version_dir

pytestmark = pytest.mark.unit

K = len(EMOTIONS)
# A model that reads each emotion right 60% of the time and spreads the rest evenly, but confuses sad (4) with
# neutral (6) a lot: the kind of matrix a FER2013 model has.
CONFUSION = np.full((K, K), 0.4 / (K - 1))
np.fill_diagonal(CONFUSION, 0.6)
CONFUSION[4] = CONFUSION[6] = 0.02
CONFUSION[4, 4], CONFUSION[4, 6] = 0.5, 0.4
CONFUSION[6, 6], CONFUSION[6, 4] = 0.5, 0.4


def posteriors_of(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-face probabilities whose mean per true emotion is CONFUSION's row: Dirichlet draws around it."""
    return np.stack([rng.dirichlet(CONFUSION[label] * 20) for label in labels])


def test_the_mix_of_a_large_class_is_recovered_where_the_raw_mean_is_far_off() -> None:
    rng = np.random.default_rng(1)
    truth = np.array([0.0, 0.0, 0.05, 0.15, 0.0, 0.0, 0.8])  # a mostly neutral class
    labels = rng.choice(K, 20_000, p=truth)
    raw = posteriors_of(labels, rng).mean(axis=0)
    corrected = ShareCorrection(CONFUSION, "test").correct(raw)[0]
    realised = np.bincount(labels, minlength=K) / len(labels)
    assert class_mixes.total_variation(raw, realised) > 0.3
    assert class_mixes.total_variation(corrected, realised) < 0.02
    assert corrected.min() >= 0 and corrected.sum() == pytest.approx(1.0)


def test_an_exact_mean_is_inverted_exactly_and_shares_outside_the_simplex_are_projected_onto_it() -> None:
    correction = ShareCorrection(CONFUSION, "test")
    truth = np.array([[0.1, 0.0, 0.2, 0.3, 0.0, 0.1, 0.3], [0, 0, 0, 0, 0, 0, 1.0]])
    assert correction.correct(truth @ CONFUSION) == pytest.approx(truth, abs=1e-6)
    # A mean no mix can give (more sad than even an all-sad class reads): the nearest mix is all sad.
    impossible = np.array([0.01, 0.01, 0.01, 0.01, 0.9, 0.01, 0.05])
    assert correction.correct(impossible)[0] == pytest.approx(np.eye(K)[4], abs=1e-6)


def test_windows_without_faces_have_no_shares_and_one_face_gets_shares_that_add_up() -> None:
    correction = ShareCorrection(CONFUSION, "test")
    one_face = {f"emotion.{name}": value for name, value in zip(EMOTIONS, CONFUSION[3], strict=True)} | {"faces": 1.0}
    empty, single, nothing = correction.shares([{"faces": 0.0}, one_face, {}])
    assert empty is None and nothing is None
    # One face that reads like the model's average happy face is read as a happy face.
    assert single["happy"] == pytest.approx(1.0, abs=1e-6)
    assert sum(single.values()) == pytest.approx(1.0)


def test_the_correction_refuses_matrices_it_cannot_invert() -> None:
    with pytest.raises(ValueError, match="singular"):
        ShareCorrection(np.full((K, K), 1 / K), "test")
    with pytest.raises(ValueError, match="7x7"):
        ShareCorrection(np.eye(3), "test")
    with pytest.raises(ValueError, match="disgust"):
        mean_probabilities(np.eye(K)[[0, 2, 3, 4, 5, 6]], np.array([0, 2, 3, 4, 5, 6]))


def test_simplex_projection_keeps_points_already_on_it_and_is_the_nearest_point() -> None:
    inside = np.array([[0.2, 0.1, 0.1, 0.2, 0.1, 0.2, 0.1]])
    assert project_to_simplex(inside) == pytest.approx(inside)
    outside = np.array([[0.8, 0.6, -0.2, 0, 0, 0, 0]])
    assert project_to_simplex(outside) == pytest.approx(np.array([[0.6, 0.4, 0, 0, 0, 0, 0]]))


def test_the_shipped_version_has_a_correction_per_signature_measured_on_held_out_faces() -> None:
    document = json.loads((latest_version_dir() / FILE_NAME).read_text())
    assert document["split"] == "PublicTest" and document["faces"] == sum(document["faces_per_emotion"])
    for signature in ("serving_default", "emotion_single_pass"):
        matrix = np.array(document["signatures"][signature]["mean_probabilities"])
        assert matrix.sum(axis=1) == pytest.approx(np.ones(K), abs=1e-4)
        assert (np.diag(matrix) == matrix.max(axis=1)).all(), f"{signature}: some emotion is read as another on average"
    check = document["class_mix_check"]
    assert check["mean"]["10 s, one face image a student"]["corrected_tvd"] < check["mean"]["10 s, one face image a student"]["raw_tvd"]


def test_the_api_corrects_with_the_signature_the_classifier_calls(tmp_path) -> None:
    single = create_app(ApiSettings()).state.shares
    flips = create_app(ApiSettings(model_signature="serving_default")).state.shares
    assert single.matrix.shape == (K, K) and not np.allclose(single.matrix, flips.matrix)
    with pytest.raises(ValueError, match="no correction for signature 'emotion_unknown'"):
        create_app(ApiSettings(model_signature="emotion_unknown"))
    with pytest.raises(FileNotFoundError):
        create_app(ApiSettings(quantification_file=tmp_path / FILE_NAME))


def test_the_class_mix_check_uses_the_sample_class_phases() -> None:
    from classpulse_demo import class_script

    assert class_mixes.SAMPLE_CLASS_PHASES == class_script.DEFAULT_PHASE_EMOTIONS
    assert class_mixes.SAMPLE_CLASS_DIFFERING == class_script.DIFFERING_SHARE


def test_generated_classes_follow_their_mix() -> None:
    rng = np.random.default_rng(0)
    sample = class_mixes.Mix("sample", "happy", class_mixes.SAMPLE_CLASS_DIFFERING)
    emotions = class_mixes.student_emotions(sample, 12, rng)
    assert (emotions == EMOTIONS.index("happy")).sum() == 8
    assert (class_mixes.student_emotions(class_mixes.MIXES[0], 30, rng) == EMOTIONS.index("neutral")).all()


def test_known_shares_are_recovered_with_a_matrix_estimated_from_labelled_faces_as_the_export_does() -> None:
    # The export measures M on held-out faces; here those are synthetic faces of a known confusion, and the classes
    # are other faces of it. Error left: M's estimation noise (20,000 faces), which the sad/neutral confusion amplifies
    # about tenfold (with 5,000 faces an all-neutral class read 0.037 off), and the class's own (20,000 faces).
    rng = np.random.default_rng(2)
    held_out = rng.integers(0, K, 20_000)
    correction = ShareCorrection(mean_probabilities(posteriors_of(held_out, rng), held_out), "synthetic")
    for truth in (np.eye(K)[6], np.array([0.1, 0.05, 0.1, 0.4, 0.2, 0.1, 0.05]), np.full(K, 1 / K)):
        labels = rng.choice(K, 20_000, p=truth)
        corrected = correction.correct(posteriors_of(labels, rng).mean(axis=0))[0]
        assert class_mixes.total_variation(corrected, np.bincount(labels, minlength=K) / len(labels)) < 0.03


def test_the_class_mix_check_leaves_each_class_out_of_its_m_and_splits_the_error_into_m_noise_and_the_windows_own() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, K, 1_400)  # about 200 faces an emotion, 100 in the half a class draws from
    check = class_mixes.check_class_mixes(posteriors_of(labels, rng), labels, classes=8)
    assert check["classes_per_mix"] == 8
    # M comes from every face a class does not show: more than the other half (the former two-fold split), fewer
    # than all of them.
    low, high = check["m_faces"]
    assert len(labels) / 2 < low <= high < len(labels)
    long_windows = check["windows"]["60 s, a new face image a student each second"]
    # An all-neutral class of 12-30 students over 60 s reads 720-1800 face images drawn from about 100 neutral faces.
    neutral = long_windows["all neutral"]
    assert neutral["face_readings"] >= 720 and neutral["distinct_faces"] <= 130
    assert check["windows"]["10 s, one face image a student"]["all neutral"]["distinct_faces"] <= 30
    # With M exact for the faces shown, only the window's sampling noise is left: less than with M from other faces.
    mean = check["mean"]["60 s, a new face image a student each second"]
    assert mean["known_m_tvd"] < mean["corrected_tvd"] < mean["raw_tvd"]
    assert mean["known_m_tvd"] < mean["half_m_tvd"] < mean["raw_tvd"]
    assert neutral["corrected_tvd_se"] > 0
    # The headline figure carries its standard error: the mixes' own, added in quadrature over the mean of eight.
    errors = np.array([figures["corrected_tvd_se"] for figures in long_windows.values()])
    assert mean["corrected_tvd_se"] == pytest.approx(np.sqrt((errors**2).sum()) / len(errors), abs=1e-4)
    assert 0 < mean["corrected_tvd_se"] < neutral["corrected_tvd_se"]
    card = model_card._class_shares_section(
        {"class_mix_check": {"signature": "emotion_single"} | check, "split": "PublicTest", "faces": len(labels), "model_version": 9}
    )
    assert "M from the other half" in card and check["method"] in card
    assert f"**{mean['corrected_tvd']:.3f}** ± {mean['corrected_tvd_se']:.4f} (standard error) (EM" in card


def test_a_class_left_out_of_m_is_left_out_exactly() -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, K, 300)
    probabilities = posteriors_of(labels, rng)
    indicator = np.eye(K)[labels]
    shown = np.array([0, 5, 17, 42])
    matrix, faces = class_mixes._means_without(indicator.T @ probabilities, indicator.sum(axis=0), probabilities,
                                                labels, shown)
    rest = np.setdiff1d(np.arange(len(labels)), shown)
    assert faces == len(rest)
    np.testing.assert_allclose(matrix, mean_probabilities(probabilities[rest], labels[rest]))


def test_each_window_can_be_corrected_with_its_own_matrix() -> None:
    matrices = np.stack([CONFUSION, np.eye(K) * 0.7 + 0.3 / K])
    means = np.stack([CONFUSION[6], np.full(K, 1 / K)])
    shares = solve_shares(matrices, means)
    for matrix, mean, row in zip(matrices, means, shares, strict=True):
        np.testing.assert_allclose(row, ShareCorrection(matrix, "test").correct(mean)[0], atol=1e-8)
    np.testing.assert_allclose(shares[0], np.eye(K)[6], atol=1e-6)
