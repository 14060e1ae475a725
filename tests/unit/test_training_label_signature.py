"""Exported models name their outputs (classpulse_core.labels.LABELS_SIGNATURE) in the pipeline's order; a
version exported before that gets the signature added without its outputs changing."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from classpulse_core.labels import EMOTIONS, LABELS_OUTPUT, LABELS_SIGNATURE
from classpulse_training.serving import (
    OUTPUT_KEY,
    SINGLE_PASS_SIGNATURE,
    add_label_signature,
    load_signature,
    write_saved_model,
)

pytestmark = pytest.mark.unit


def _tiny_network() -> keras.Model:
    return keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(len(EMOTIONS))])


def _label_names(model_dir: Path) -> list[str]:
    return [name.decode() for name in load_signature(model_dir, LABELS_SIGNATURE)()[LABELS_OUTPUT].numpy()]


def test_an_export_names_its_outputs_in_the_pipelines_order(tmp_path: Path) -> None:
    write_saved_model(_tiny_network(), tmp_path / "1", temperature=1.0, flip_average=False)
    assert _label_names(tmp_path / "1") == list(EMOTIONS)


def test_labels_are_added_to_an_older_export_without_changing_its_outputs(tmp_path: Path) -> None:
    model_dir = tmp_path / "1"
    write_saved_model(_tiny_network(), model_dir, temperature=1.3, flip_average=True)
    faces = tf.constant(np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1), dtype=np.uint8))
    before = load_signature(model_dir, SINGLE_PASS_SIGNATURE)(faces=faces)[OUTPUT_KEY].numpy()
    (model_dir / "assets.extra").mkdir()
    (model_dir / "assets.extra" / "kept").write_text("beside the SavedModel")

    add_label_signature(model_dir)

    assert _label_names(model_dir) == list(EMOTIONS)
    np.testing.assert_array_equal(load_signature(model_dir, SINGLE_PASS_SIGNATURE)(faces=faces)[OUTPUT_KEY].numpy(), before)
    assert (model_dir / "assets.extra" / "kept").read_text() == "beside the SavedModel"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["1"]  # no staging folder left behind
