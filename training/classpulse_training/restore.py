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


def restore_run(version_dir: Path, run_dir: Path) -> RunFiles:
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    members = metrics["training"]["members"]
    if len(members) != 1:
        raise ValueError(
            f"{version_dir} holds an ensemble of {len(members)} networks; only a single network restores to a run"
        )
    (member,) = members
    files = RunFiles(run_dir)
    if files.root.exists() and any(files.root.iterdir()):
        raise FileExistsError(f"{files.root} already holds files; choose another run name")
    config = TrainConfig.from_dict(member["config"])
    keras.mixed_precision.set_global_policy("float32")  # weights are stored as float32 whatever the compute dtype
    model = build_model(config.model)
    # The SavedModel's root object holds the network as `model` (serving._EmotionModule): read it into a fresh build
    # of the same config, and insist that every saved value found its variable and every variable its value.
    tf.train.Checkpoint(model=model).read(str(version_dir / "variables" / "variables")).assert_consumed()

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
        "restored_from": str(version_dir),
    })
    return files
