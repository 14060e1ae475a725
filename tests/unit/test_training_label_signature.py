"""Exported models name their outputs (classpulse_core.labels.LABELS_SIGNATURE) in the pipeline's order; a
version exported before that gets the signature added without its outputs changing."""

from __future__ import annotations

import os
import threading
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


def test_labels_are_added_in_a_copy_that_replaces_the_version_folder_whole(tmp_path: Path) -> None:
    """A model server polls the base path and may load the version while it is rewritten: it must find the old
    folder whole or the new one whole, never one with its SavedModel half-replaced. The folder that ends up there is
    another one (renamed into place), and every look at the path finds every file of a version."""
    model_dir = tmp_path / "1"
    write_saved_model(_tiny_network(), model_dir, temperature=1.0, flip_average=False)
    (model_dir / "assets.extra").mkdir()
    (model_dir / "assets.extra" / "kept").write_text("beside the SavedModel")
    complete = {"saved_model.pb", "fingerprint.pb", "variables/variables.index", "assets.extra/kept"}
    original = model_dir.stat().st_ino
    looks: list[set[str]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                looks.append({path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*")})
            except FileNotFoundError:  # between the two renames, or a file listed then gone
                looks.append(set())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        add_label_signature(model_dir)
    finally:
        done.set()
        watcher.join()

    assert model_dir.stat().st_ino != original, "the version folder was edited in place"
    assert all(complete <= seen for seen in looks if seen), [sorted(complete - seen) for seen in looks if seen]
    assert _label_names(model_dir) == list(EMOTIONS)
    assert os.listdir(tmp_path) == ["1"]
