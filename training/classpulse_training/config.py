"""Training configuration: one JSON file (committed under training/configs/) fully describes a run."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .augment import AugmentConfig
from .distill import DistillationConfig
from .model import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    csv: str = "/work/shared/data/fer2013/fer2013.csv.gz"
    train_usage: str = "Training"
    val_usage: str = "PublicTest"
    seed: int = 1234
    epochs: int = 60
    batch_size: int = 128
    peak_learning_rate: float = 2e-3
    warmup_epochs: int = 2
    final_learning_rate_fraction: float = 0.005
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    # >0: keep an exponential moving average of the weights (per step, this momentum) and choose and export it
    # instead of the raw weights: 0.999 averages the last ~1,000 steps (~4 epochs), the noise of the final
    # epochs' steps cancelling out. 0 = off.
    ema_momentum: float = 0.0
    # Per-class loss weight = (class frequency) ** -class_weight_power, normalised to mean 1 over samples:
    # 0 = plain loss, 1 = fully balanced, 0.5 (default) lifts rare Disgust without wrecking overall accuracy.
    class_weight_power: float = 0.5
    # "mixed_bfloat16" (variables stay float32) roughly halves epoch time on CPUs with fast bfloat16 (AMX, Zen 4) and
    # makes it ~12x longer on CPUs without; "auto" picks it only where the CPU has bfloat16 natively and multiplies it
    # faster than float32, measured at the start (hardware.py).
    precision: str = "auto"
    limit_train_rows: int = 0  # >0: train on the first N rows only (tests, smoke runs)
    # A fine-tune: the network starts from these weights instead of random ones, the schedule above from its first
    # epoch. A run name (a folder beside this run, as teachers are named) or an exported version's path
    # (models/emotion/<v>, relative to the repository). The network's config must match but for dropout. "" = none.
    init_from: str = ""
    # More training faces: the `train_usage` rows of this Kaggle-layout CSV, after `csv`'s own (a path, absolute or
    # relative to where training runs). Written by `python -m classpulse_bench framed-faces`: FER2013's Training
    # faces framed by their landmarks as the detector frames a face, beside the faces as FER2013 framed them
    # (training/README.md, "Training faces framed as the pipeline frames them"). `export` re-estimates the batch-norm
    # statistics on them too. "" = none.
    extra_training_csv: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        raw = dict(raw)
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        model = _tuples(raw.pop("model", {}))
        augment = _tuples(raw.pop("augment", {}))
        distillation = _tuples(raw.pop("distillation", {}))
        return cls(
            model=ModelConfig(**model), augment=AugmentConfig(**augment),
            distillation=DistillationConfig(**distillation), **raw,
        )

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """Apply command-line overrides; None means "not given"."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _tuples(section: dict[str, Any]) -> dict[str, Any]:
    # JSON has no tuples; the frozen dataclasses use them so configs stay hashable and comparable.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def load_config(path: str | Path | None) -> TrainConfig:
    if path is None:
        return TrainConfig()
    return TrainConfig.from_dict(json.loads(Path(path).read_text()))


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
