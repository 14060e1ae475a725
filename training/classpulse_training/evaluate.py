"""Score an exported SavedModel (through its serving signature) on a Kaggle-format CSV."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .fer_csv import FerData
from .labels import EMOTIONS
from .metrics import ClassificationReport, classification_report, expected_calibration_error
from .plots import save_all_learning_curves, save_confusion_matrix
from .serving import SERVING_SIGNATURE, SINGLE_PASS_SIGNATURE, load_signature, predict_probabilities

HISTORY_FILE = "training_history.json"
ECE_TARGET = 0.04
"""Issue 20: the served probabilities stay calibrated (top-label ECE) through the signature the classifier calls."""
SERVED_SIGNATURE = SINGLE_PASS_SIGNATURE  # the classifier's default (CLASSPULSE_MODEL_SIGNATURE)


@dataclass(frozen=True)
class Scored:
    probabilities: np.ndarray
    labels: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[Scored]) -> Scored:
        return cls(np.concatenate([p.probabilities for p in parts]), np.concatenate([p.labels for p in parts]))

    @cached_property
    def report(self) -> ClassificationReport:
        return classification_report(self.labels, self.probabilities.argmax(axis=1))

    @property
    def ece(self) -> float:
        return expected_calibration_error(self.probabilities, self.labels)

    def summary(self) -> dict:
        return {
            "accuracy": round(self.report.accuracy, 4),
            "macro_f1": round(self.report.macro_f1, 4),
            "ece": round(self.ece, 4),
            "n": self.report.n,
        }


def score(signature, data: FerData) -> Scored:
    return Scored(predict_probabilities(signature, data.images), data.labels)


def default_usages(data: FerData) -> list[str]:
    """Every held-out split present (PublicTest, PrivateTest, ...); all rows if the file has only Training."""
    held_out = [u for u in data.usages if u != "Training"]
    return held_out or data.usages


def format_report(name: str, scored: Scored) -> str:
    report = scored.report
    width = max(len(e) for e in EMOTIONS)
    lines = [
        f"== {name}: n={report.n} accuracy={report.accuracy:.4f} macro-F1={report.macro_f1:.4f} ECE={scored.ece:.4f}",
        f"{'class':<{width}}  precision  recall     f1  support",
    ]
    for i, emotion in enumerate(EMOTIONS):
        lines.append(
            f"{emotion:<{width}}  {report.precision[i]:9.3f}  {report.recall[i]:6.3f}  "
            f"{report.f1[i]:5.3f}  {report.support[i]:7d}"
        )
    lines.append("confusion matrix (rows = true, columns = predicted):")
    lines.append(" " * (width + 2) + "".join(f"{e[:7]:>8}" for e in EMOTIONS))
    for i, emotion in enumerate(EMOTIONS):
        lines.append(f"{emotion:<{width}}  " + "".join(f"{c:8d}" for c in report.confusion[i]))
    return "\n".join(lines)


def calibration_line(signature: str, ece: float) -> str:
    served = " (the classifier's default)" if signature == SERVED_SIGNATURE else ""
    verdict = "ok" if ece <= ECE_TARGET else "ABOVE TARGET"
    return f"ECE through {signature}{served}: {ece:.4f} (target <= {ECE_TARGET}): {verdict}"


def evaluate(model_dir: Path, data: FerData, usages: list[str], out_dir: Path) -> tuple[str, dict]:
    """Return (printable tables, summary dict) and write the figures to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    signature = load_signature(model_dir)
    tables, splits, figures = [], {}, []
    scored_all = []
    selected = []
    for usage in usages:
        rows = data if usage == "all" else data.split(usage)
        if len(rows) == 0:
            raise ValueError(f"no rows with Usage={usage!r}; present: {', '.join(data.usages)}")
        selected.append(rows)
        scored = score(signature, rows)
        scored_all.append(scored)
        tables.append(format_report(usage, scored))
        splits[usage] = scored.summary() | {"per_class": scored.report.per_class()}
        figure = out_dir / f"confusion_matrix_{usage}.png"
        figures.append(str(save_confusion_matrix(scored.report.confusion, figure, f"{model_dir.name}: {usage}")))
    history_path = model_dir / HISTORY_FILE
    if history_path.exists():
        figures += [str(path) for path in save_all_learning_curves(json.loads(history_path.read_text()), out_dir)]
    combined = Scored.concatenate(scored_all)
    by_signature = {
        SERVING_SIGNATURE: combined,
        SERVED_SIGNATURE: Scored.concatenate([score(load_signature(model_dir, SERVED_SIGNATURE), rows) for rows in selected]),
    }
    calibration = {name: {"ece": round(s.ece, 4), "within_target": s.ece <= ECE_TARGET} for name, s in by_signature.items()}
    tables.append("\n".join(calibration_line(name, s.ece) for name, s in by_signature.items()))
    summary = {"model": str(model_dir), "usages": usages} | combined.summary() | {
        "calibration": {"target": ECE_TARGET} | calibration, "splits": splits, "figures": figures,
    }
    return "\n\n".join(tables), summary
