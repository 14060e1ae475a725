"""Export a training run's best checkpoint to models/emotion/<version>/ with everything serving needs.

Inference-time choices are made here on the selection split (PublicTest) and baked into the signature:
batch-norm statistics re-estimated on the un-augmented training faces (kept only if they do not lower the selection
accuracy), flip averaging (only if it pays for its 2x cost) and the softmax temperature (fitted by NLL, and kept only
if it also lowers the expected calibration error: label smoothing can leave a network calibrated already).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .batchnorm import reestimate_batchnorm
from .class_mixes import CLASSES_PER_MIX
from .config import TrainConfig, load_config
from .evaluate import HISTORY_FILE, score
from .fer_csv import FerData, load_training_csvs
from .hardware import describe_cpu
from .metrics import expected_calibration_error, fit_temperature, negative_log_likelihood, softmax
from .model import build_model, count_macs, ensemble_model
from .model_card import write_model_card
from .plots import save_all_learning_curves, save_confusion_matrix
from .quantification import write_quantification
from .run_files import RunFiles, read_json
from .serving import (
    FLOAT_SIGNATURE,
    SERVING_SIGNATURE,
    SINGLE_PASS_SIGNATURE,
    keras_logits,
    load_signature,
    write_saved_model,
)
from .speed import faces_per_second
from .versions import staged_version
from .warmup import write_warmup_requests

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CARD_FIGURES = "card"


@dataclass(frozen=True)
class ExportChoices:
    flip_average: bool
    fitted_temperature: float
    temperature: float  # the one shipped: fitted_temperature, or 1.0 where fitting did not lower the ECE
    accuracy_plain: float
    accuracy_flip: float
    ece_before: float
    ece_fitted: float
    nll_before: float
    nll_fitted: float
    single_pass_temperature: float  # the single-pass signature's, chosen the same way on the plain logits


COMPUTE_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def load_trained_model(files: RunFiles, config: TrainConfig, compute_dtype: str = "float32") -> keras.Model:
    """Rebuild the network and load the best weights (stored as float32 even after mixed-precision training).

    compute_dtype "bfloat16" keeps float32 weights but runs the convolutions in bfloat16: about 2.5x the
    throughput with AMX or on AMD Zen 4 (half of float32's on a CPU with AVX512-BF16 but no AMX), at a small
    accuracy cost that export measures and records.
    """
    keras.mixed_precision.set_global_policy(COMPUTE_POLICIES[compute_dtype])
    model = build_model(config.model)
    model.load_weights(files.best_weights)
    return model


def choose_inference(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, flip: str, min_flip_gain: float
) -> ExportChoices:
    plain = keras_logits(model, images, flip_average=False)
    flipped = keras_logits(model, images, flip_average=True)
    accuracy_plain = float((plain.argmax(1) == labels).mean())
    accuracy_flip = float((flipped.argmax(1) == labels).mean())
    use_flip = flip == "on" or (flip == "auto" and accuracy_flip - accuracy_plain >= min_flip_gain)
    logits = flipped if use_flip else plain
    chosen = _calibrate(logits, labels)
    # The single-pass signature's temperature: the same fit on the plain logits (done once when they are the default).
    single_pass = chosen if not use_flip else _calibrate(plain, labels)
    return ExportChoices(
        single_pass_temperature=single_pass.temperature,
        flip_average=use_flip,
        fitted_temperature=chosen.fitted,
        temperature=chosen.temperature,
        accuracy_plain=accuracy_plain,
        accuracy_flip=accuracy_flip,
        ece_before=chosen.ece_before,
        ece_fitted=chosen.ece_fitted,
        nll_before=negative_log_likelihood(logits, labels, 1.0),
        nll_fitted=negative_log_likelihood(logits, labels, chosen.fitted),
    )


BATCHNORM_MODES = ("auto", "training", "kept")


@dataclass(frozen=True)
class BatchNormChoice:
    reestimated: bool
    training_faces: int  # faces the statistics were re-estimated from (their mirror images come on top); 0 = not tried
    accuracy_before: float | None  # selection accuracy, the better of one pass and flip averaging
    accuracy_after: float | None

    def describe(self, train_usage: str, restored_from: dict | None = None) -> str:
        """`restored_from`: the run's weights are an exported version's (restore-run), whose statistics are kept."""
        if self.reestimated:
            return f"re-estimated on {self.training_faces} un-augmented {train_usage} faces and their mirror images"
        kept = (
            f"as version {restored_from['version']} was exported with them ({restored_from['batchnorm_statistics']})"
            if restored_from else "as training left them"
        )
        return kept + (" (re-estimating them lowered the selection accuracy)" if self.training_faces else "")


def choose_batchnorm_statistics(model: keras.Model, training: FerData, selection: FerData, mode: str) -> BatchNormChoice:
    """"kept": the moving statistics training left; "training": re-estimated on the un-augmented training faces
    (see batchnorm.py); "auto": re-estimated, and kept only if the selection accuracy does not drop."""
    if mode not in BATCHNORM_MODES:
        raise ValueError(f"batch-norm statistics mode must be one of {BATCHNORM_MODES}, got {mode!r}")
    if mode == "kept":
        return BatchNormChoice(False, 0, None, None)
    before = _best_accuracy(model, selection)
    from_training = [variable.numpy() for variable in model.non_trainable_variables]
    reestimate_batchnorm(model, training.images)
    after = _best_accuracy(model, selection)
    if mode == "auto" and after < before:
        for variable, value in zip(model.non_trainable_variables, from_training, strict=True):
            variable.assign(value)
        return BatchNormChoice(False, len(training), before, after)
    return BatchNormChoice(True, len(training), before, after)


def _best_accuracy(model: keras.Model, data: FerData) -> float:
    return max(
        float((keras_logits(model, data.images, flip_average=flip).argmax(1) == data.labels).mean())
        for flip in (False, True)
    )


class _Calibration(NamedTuple):
    fitted: float
    ece_before: float
    ece_fitted: float

    @property
    def temperature(self) -> float:
        """The fitted temperature where it lowers the ECE, else 1 (label smoothing can leave logits calibrated)."""
        return self.fitted if self.ece_fitted < self.ece_before else 1.0


def _calibrate(logits: np.ndarray, labels: np.ndarray) -> _Calibration:
    fitted = fit_temperature(logits, labels)
    return _Calibration(
        fitted,
        expected_calibration_error(softmax(logits), labels),
        expected_calibration_error(softmax(logits, fitted), labels),
    )


@dataclass(frozen=True)
class Member:
    """One trained network of the exported model (an ensemble has several)."""

    files: RunFiles
    config: TrainConfig

    @classmethod
    def of(cls, run_dir: Path) -> Member:
        files = RunFiles(run_dir)
        return cls(files, load_config(files.config))

    def training(self, model: keras.Model) -> dict:
        history = read_json(self.files.history, [])
        run_info = read_json(self.files.run_info, {})
        return {
            "run": self.files.root.name,
            "best_epoch": read_json(self.files.best_info)["epoch"],
            "epochs": self.config.epochs,
            "training_seconds": round(float(sum(h["seconds"] for h in history)), 1),
            "command": run_info.get("command"),
            # Runs from before precision "auto" recorded no resolved precision: their config's is the one they ran in.
            "precision": run_info.get("precision", self.config.precision),
            "cpu": run_info.get("cpu"),
            "seed": self.config.seed,
            "parameters": model.count_params(),
            "config": self.config.to_dict(),
            **{key: run_info[key] for key in ("teachers", "init_from", "restored_from") if key in run_info},
        }


def export(
    run_dirs: list[Path],
    version_dir: Path,
    *,
    csv: str | None,
    flip: str,
    min_flip_gain: float,
    compute_dtype: str = "float32",
    batchnorm: str = "auto",
    speed_seconds: float = 3.0,
    classes_per_mix: int = CLASSES_PER_MIX,
) -> dict:
    """Export the best checkpoint of one run, or the mean of several runs' networks (an ensemble). `speed_seconds`
    and `classes_per_mix` (the card's class-share check, quantification.py) size what the export measures."""
    members = [Member.of(run_dir) for run_dir in run_dirs]
    config = members[0].config
    if len({(m.config.train_usage, m.config.val_usage) for m in members}) != 1:
        raise ValueError("an ensemble's members must be trained and selected on the same splits")
    networks = [load_trained_model(m.files, m.config, compute_dtype) for m in members]
    model = networks[0] if len(networks) == 1 else ensemble_model(networks)
    data = load_training_csvs(csv or config.csv, config.extra_training_csv, config.train_usage)
    selection = data.split(config.val_usage)
    norms = choose_batchnorm_statistics(model, data.split(config.train_usage), selection, batchnorm)
    restored_from = read_json(members[0].files.run_info, {}).get("restored_from") if len(members) == 1 else None
    log.info("batch-norm statistics %s", norms.describe(config.train_usage, restored_from))
    choices = choose_inference(model, selection.images, selection.labels, flip, min_flip_gain)
    log.info("flip averaging %s (accuracy %.4f plain, %.4f flipped); temperature %.3f",
             "on" if choices.flip_average else "off", choices.accuracy_plain, choices.accuracy_flip, choices.temperature)

    if version_dir.exists():
        raise FileExistsError(f"{version_dir} exists; versions are immutable, pick a new one")
    with staged_version(version_dir) as staged:
        write_saved_model(
            model, staged, temperature=choices.temperature, flip_average=choices.flip_average,
            single_pass_temperature=choices.single_pass_temperature,
        )
        write_warmup_requests(staged)
        histories = [read_json(m.files.history, []) for m in members]
        # One network: its epochs, as evaluate's learning curves read them; an ensemble: each member's, by run.
        history = histories[0] if len(members) == 1 else {m.files.root.name: h for m, h in zip(members, histories, strict=True)}
        (staged / HISTORY_FILE).write_text(json.dumps(history) + "\n")

        # Final numbers come from the SavedModel's own signature: exactly what serving will compute.
        signature = load_signature(staged)
        scored = score(signature, selection)
        single_pass = score(load_signature(staged, SINGLE_PASS_SIGNATURE), selection)
        figures = staged / CARD_FIGURES
        figures.mkdir()
        title = f"v{version_dir.name} on {config.val_usage}"
        save_confusion_matrix(scored.report.confusion, figures / "confusion_matrix.png", title)
        save_all_learning_curves(history, figures, config.val_usage)

        macs = count_macs(model) * (2 if choices.flip_average else 1)
        trained = [m.training(network) for m, network in zip(members, networks, strict=True)]
        metrics = {
            "model_version": int(version_dir.name),
            "selection_split": config.val_usage,
            "n": scored.report.n,
            "accuracy": round(scored.report.accuracy, 4),
            "macro_f1": round(scored.report.macro_f1, 4),
            "per_class": scored.report.per_class(),
            "confusion_matrix": scored.report.confusion.tolist(),
            "inference": {
                "compute_dtype": compute_dtype,
                "batchnorm_statistics": norms.describe(config.train_usage, restored_from),
                "batchnorm_selection_accuracy": {"before": norms.accuracy_before, "after": norms.accuracy_after},
                "networks": len(members),
                "flip_average": choices.flip_average,
                "accuracy_without_flip": round(choices.accuracy_plain, 4),
                "accuracy_with_flip": round(choices.accuracy_flip, 4),
            },
            "single_pass": {
                "signature": SINGLE_PASS_SIGNATURE,
                "accuracy": round(single_pass.report.accuracy, 4),
                "macro_f1": round(single_pass.report.macro_f1, 4),
                "temperature": round(choices.single_pass_temperature, 4),
                "ece": round(single_pass.ece, 4),
                "macs_per_face": count_macs(model),
            },
            "calibration": {
                "method": f"temperature fitted by NLL on {config.val_usage}, applied only if it lowers the ECE",
                "fitted_temperature": round(choices.fitted_temperature, 4),
                "temperature": round(choices.temperature, 4),
                "ece_before": round(choices.ece_before, 4),
                "ece_with_fitted_temperature": round(choices.ece_fitted, 4),
                "ece_after": round(scored.ece, 4),
                "nll_before": round(choices.nll_before, 4),
                "nll_with_fitted_temperature": round(choices.nll_fitted, 4),
                "ece_bins": 15,
            },
            "cost": {
                "parameters": model.count_params(),
                "macs_per_face": macs,
                "flops_per_face": 2 * macs,
            },
            "speed_faces_per_s": {
                "signature_uint8_batch64": round(faces_per_second(lambda x: signature(faces=x), 64, seconds=speed_seconds)),
                "signature_uint8_batch256": round(faces_per_second(lambda x: signature(faces=x), 256, seconds=speed_seconds)),
                "keras_batch256": round(
                    faces_per_second(tf.function(lambda x: model(x, training=False)), 256, np.float32, seconds=speed_seconds)
                ),
                "cpu": describe_cpu(),
                "note": "measured while other work ran; best of ~1 s windows",
            },
            "training": {
                "data": config.csv,
                "train_split": config.train_usage,
                "train_rows": read_json(members[0].files.run_info, {}).get("train_rows"),
                "extra_training_csv": config.extra_training_csv,
                "training_seconds": round(sum(t["training_seconds"] for t in trained), 1),
                "members": trained,
            },
            "export_command": shlex.join([Path(sys.executable).name, "-m", "classpulse_training", *sys.argv[1:]]),
            "signatures": [SERVING_SIGNATURE, "emotion", FLOAT_SIGNATURE, SINGLE_PASS_SIGNATURE],
        }
        (staged / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        write_quantification(
            staged, {SERVING_SIGNATURE: scored.probabilities, SINGLE_PASS_SIGNATURE: single_pass.probabilities},
            selection.labels, data.split(config.train_usage).labels, config.val_usage, classes_per_mix,
        )
        write_model_card(json.loads((staged / METRICS_FILE).read_text()), staged)  # as metrics.json has it
    return metrics

