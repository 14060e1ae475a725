"""Where a training run keeps its files, and how they are written so a crash never leaves a torn file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def run_info(self) -> Path:
        return self.root / "run.json"

    @property
    def last_checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.keras"

    @property
    def best_weights(self) -> Path:
        return self.root / "checkpoints" / "best.weights.h5"

    @property
    def best_info(self) -> Path:
        return self.root / "checkpoints" / "best.json"

    def make_dirs(self) -> None:
        self.last_checkpoint.parent.mkdir(parents=True, exist_ok=True)


def write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def run_record(run_dir: Path) -> dict:
    """What another run says of a run it builds on (a teacher, a fine-tune's start): enough to find and judge it again."""
    files = RunFiles(run_dir)
    best = read_json(files.best_info)
    return {"run": run_dir.name, "best_epoch": best["epoch"], "val_accuracy": best["val_accuracy"],
            "macs_per_face": read_json(files.run_info, {}).get("macs_per_face")}
