"""A fine-tune's start (config init_from): the network begins with a trained run's or an exported version's weights,
checked to be the same network, and says which in run.json."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from classpulse_training.config import TrainConfig, load_config, save_config
from classpulse_training.initial_weights import load_initial_weights
from classpulse_training.model import ModelConfig, build_model
from classpulse_training.run_files import RunFiles, write_json_atomic
from classpulse_training.versions import MODELS_DIR, REPO_ROOT

pytestmark = pytest.mark.unit

TINY = ModelConfig(widths=(8, 16, 16, 32), convs_per_stage=(1, 1, 1, 1), dense_units=16)


def _same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


@pytest.fixture
def trained_start(tmp_path):
    """A run folder `start` as training leaves it: config, best weights and what its best epoch scored."""
    files = RunFiles(tmp_path / "start")
    files.make_dirs()
    network = build_model(TINY)
    save_config(TrainConfig(model=TINY), files.config)
    network.save_weights(files.best_weights)
    write_json_atomic(files.best_info, {"epoch": 7, "val_accuracy": 0.61})
    return files, network


def test_a_run_named_in_init_from_gives_the_network_its_weights(trained_start):
    files, start = trained_start
    fresh = build_model(TINY)
    assert not _same_weights(fresh, start)
    record = load_initial_weights(fresh, TrainConfig(model=TINY, init_from="start"), files.root.parent)
    assert _same_weights(fresh, start)
    assert record == {"run": "start", "best_epoch": 7, "val_accuracy": 0.61, "macs_per_face": None}


def test_dropout_may_change_but_no_layer_may(trained_start):
    files, start = trained_start
    more_dropout = dataclasses.replace(TINY, dropout=0.1)
    network = build_model(more_dropout)
    load_initial_weights(network, TrainConfig(model=more_dropout, init_from="start"), files.root.parent)
    assert _same_weights(network, start)
    wider = dataclasses.replace(TINY, dense_units=32)
    with pytest.raises(ValueError, match="different network"):
        load_initial_weights(build_model(wider), TrainConfig(model=wider, init_from="start"), files.root.parent)


def test_a_missing_start_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from run 'emotion-v0' has no config.json"):
        load_initial_weights(build_model(TINY), TrainConfig(model=TINY, init_from="emotion-v0"), tmp_path)
    with pytest.raises(FileNotFoundError, match="no exported version"):
        load_initial_weights(build_model(TINY), TrainConfig(model=TINY, init_from="models/emotion/0"), tmp_path)


def test_an_exported_version_starts_the_network_it_serves(tmp_path):
    # The committed served version: its SavedModel's weights, every one of them read (restore.read_exported_weights).
    version = sorted(MODELS_DIR.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)[-1]
    relative = str(version.relative_to(REPO_ROOT))
    config = load_config(REPO_ROOT / "training" / "configs" / "emotion-v3.json")
    fresh, network = build_model(config.model), build_model(config.model)
    record = load_initial_weights(network, dataclasses.replace(config, init_from=relative), tmp_path)
    assert record["version"] == relative and 0.6 < record["accuracy"] < 1 and record["selection_split"] == "PublicTest"
    assert not _same_weights(fresh, network)
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    assert np.isfinite(network(faces).numpy()).all()
