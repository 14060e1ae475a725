"""A fine-tune's start (config.init_from): the weights of a trained run or of an exported version, read into the fresh
network before its first epoch.

Only the first start reads them: a resumed run continues from its own checkpoint, which already holds them trained on.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras

from .config import TrainConfig, load_config
from .export import METRICS_FILE
from .model import ModelConfig
from .restore import read_exported_weights, single_network
from .run_files import RunFiles, run_record
from .versions import REPO_ROOT


def is_version(init_from: str) -> bool:
    """A path (models/emotion/<v>, relative to the repository or absolute) names an exported version; a bare name a
    run beside the one being trained, as a distilled run names its teachers."""
    return "/" in init_from


def source_dir(init_from: str, runs_dir: Path) -> Path:
    return REPO_ROOT / init_from if is_version(init_from) else runs_dir / init_from


def _same_network(theirs: ModelConfig, ours: ModelConfig, source: Path) -> None:
    # Dropout has no weights: a fine-tune may change it. Any other difference would leave layers unread or misread.
    if dataclasses.replace(theirs, dropout=ours.dropout) != ours:
        raise ValueError(f"init_from {source} is a different network ({theirs}) from this run's ({ours})")


def load_initial_weights(model: keras.Model, config: TrainConfig, runs_dir: Path) -> dict:
    """Read config.init_from's weights into ``model`` (built from config.model); what run.json records of them."""
    source = source_dir(config.init_from, runs_dir)
    if is_version(config.init_from):
        metrics_file = source / METRICS_FILE
        if not metrics_file.exists():
            raise FileNotFoundError(f"init_from {config.init_from!r}: no exported version at {source}")
        metrics = json.loads(metrics_file.read_text())
        member = single_network(metrics, source)
        _same_network(TrainConfig.from_dict(member["config"]).model, config.model, source)
        read_exported_weights(source, model)
        return {"version": config.init_from, "run": member["run"], "accuracy": metrics["accuracy"],
                "selection_split": metrics["selection_split"]}
    files = RunFiles(source)
    for needed in (files.config, files.best_weights):
        if not needed.exists():
            raise FileNotFoundError(
                f"init_from run {config.init_from!r} has no {needed.relative_to(source)} in {runs_dir}: train it first "
                f"or restore it from its version (python -m classpulse_training restore-run)"
            )
    _same_network(load_config(files.config).model, config.model, source)
    model.load_weights(files.best_weights)
    return run_record(source)
