"""A training run's folder rebuilt from an exported version, so that a shipped network can be exported again (new
inference choices, new signatures) on a machine that no longer holds the run.

An exported version carries all a run's export needs: its metrics.json the run's config, command and seed, its
training_history.json the epochs, its SavedModel the network's weights. Restored weights are the exported ones:
batch-norm statistics included, as that export chose them.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from .config import TrainConfig, save_config
from .evaluate import HISTORY_FILE
from .export import METRICS_FILE
from .model import build_model, count_macs
from .run_files import RunFiles, write_json_atomic


def single_network(metrics: dict, version_dir: Path) -> dict:
    """The training record of a version's one network (its metrics.json's only member)."""
    members = metrics["training"]["members"]
    if len(members) != 1:
        raise ValueError(
            f"{version_dir} holds an ensemble of {len(members)} networks; only a single network restores to a run"
        )
    return members[0]


def read_exported_weights(version_dir: Path, model: keras.Model) -> None:
    """A version's network weights read into ``model``, a fresh build of the same model config."""
    # The SavedModel's root object holds the network as `model` (serving._EmotionModule): every saved value must find
    # its variable and every variable its value.
    tf.train.Checkpoint(model=model).read(str(version_dir / "variables" / "variables")).assert_consumed()


def restore_run(version_dir: Path, run_dir: Path) -> RunFiles:
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    member = single_network(metrics, version_dir)
    files = RunFiles(run_dir)
    if files.root.exists() and any(files.root.iterdir()):
        raise FileExistsError(f"{files.root} already holds files; choose another run name")
    config = TrainConfig.from_dict(member["config"])
    keras.mixed_precision.set_global_policy("float32")  # weights are stored as float32 whatever the compute dtype
    model = build_model(config.model)
    read_exported_weights(version_dir, model)

    files.make_dirs()
    model.save_weights(files.best_weights)
    save_config(config, files.config)
    history = json.loads((version_dir / HISTORY_FILE).read_text())
    write_json_atomic(files.history, history)
    best = history[member["best_epoch"] - 1]
    write_json_atomic(files.best_info, {
        "epoch": member["best_epoch"], "val_accuracy": best.get("ema_val_accuracy", best["val_accuracy"]),
    })
    write_json_atomic(files.run_info, {
        "command": member["command"],
        "seed": member["seed"],
        "precision": member.get("precision", config.precision),
        "cpu": member.get("cpu"),
        "macs_per_face": count_macs(model),
        "parameters": model.count_params(),
        "train_rows": metrics["training"]["train_rows"],
        "val_rows": metrics["n"],
        # What the run's export must say of weights that are another version's: which, and its batch-norm choice
        # (kept as exported, the statistics are that version's, not the ones training left).
        "restored_from": {
            "version": int(version_dir.name),
            "batchnorm_statistics": metrics["inference"].get("batchnorm_statistics", "as training left them"),
        },
        **({"init_from": member["init_from"]} if "init_from" in member else {}),
    })
    return files
