"""Batch-norm statistics re-estimated on plain faces: exact population statistics, mirrors included, nothing else
of the model changed."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from classpulse_training.batchnorm import reestimate_batchnorm
from classpulse_training.model import ensemble_model

pytestmark = pytest.mark.unit


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48, 1)).astype(np.uint8)


def _column_ramp_model() -> keras.Model:
    """faces -> one number per face, the pixels weighted by their column (so a mirror image gives another number)
    -> dropout -> batch norm. The BN layer's input is then known exactly for any face."""
    inputs = keras.Input((48, 48, 1))
    flat = keras.layers.Flatten()(inputs)
    ramp = keras.layers.Dense(1, use_bias=False, name="ramp")
    x = ramp(flat)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    model = keras.Model(inputs, x)
    columns = np.tile(np.arange(48, dtype=np.float32) / 48 / 2304, (48, 1)).reshape(-1, 1)
    ramp.kernel.assign(columns)
    return model


def _ramp_values(faces: np.ndarray) -> np.ndarray:
    columns = np.tile(np.arange(48, dtype=np.float64) / 48 / 2304, (48, 1)).reshape(-1)
    return faces.reshape(len(faces), -1).astype(np.float64) @ columns


def test_statistics_are_the_population_mean_and_variance_over_faces_and_mirrors():
    model = _column_ramp_model()
    faces = _faces(10)
    # Batches of 4, 4 and 2: an unweighted mean of batch statistics, or a mean of batch variances, would differ.
    assert reestimate_batchnorm(model, faces, batch_size=4) == 1
    values = np.concatenate([_ramp_values(faces), _ramp_values(faces[:, :, ::-1])])
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), [values.mean()], rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), [values.var()], rtol=1e-4)
    # Momentum and dropout are what they were: the model trains and serves as before.
    assert bn.momentum == 0.9 and model.get_layer("drop").rate == 0.5


def test_without_mirrors_only_the_faces_count():
    model = _column_ramp_model()
    faces = _faces(6, seed=1)
    reestimate_batchnorm(model, faces, mirrors=False)
    values = _ramp_values(faces)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), [values.mean()], rtol=1e-5)
    np.testing.assert_allclose(model.get_layer("bn").moving_variance.numpy(), [values.var()], rtol=1e-4)


def test_weights_other_than_the_statistics_are_untouched_and_ensemble_members_are_reached():
    members = [_column_ramp_model(), _column_ramp_model()]
    ensemble = ensemble_model(members)
    trainable = [w.numpy() for w in ensemble.trainable_weights]
    assert reestimate_batchnorm(ensemble, _faces(8, seed=2)) == 2
    for member in members:
        assert member.get_layer("bn").moving_mean.numpy()[0] != 0.0  # was 0 when built
    for before, after in zip(trainable, ensemble.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


def test_no_faces_is_refused():
    with pytest.raises(ValueError, match="no faces"):
        reestimate_batchnorm(_column_ramp_model(), _faces(0))
