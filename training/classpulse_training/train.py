"""Training loop: seeded, checkpointed every epoch, resumable, with a history file for learning curves."""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from .config import TrainConfig, load_config, save_config
from .data import class_weights, evaluation_stream, training_stream
from .distill import (
    DistillationLoss,
    StudentAccuracy,
    distillation_model,
    student_of,
    teacher_ensemble,
    teacher_run_dirs,
)
from .fer_csv import FerData, load_training_csvs
from .hardware import describe_cpu, resolve_precision
from .initial_weights import load_initial_weights
from .model import build_model, count_macs
from .run_files import RunFiles, read_json, run_record, write_json_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_val_accuracy: float
    training_seconds: float


def _compile(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = steps_per_epoch * config.warmup_epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.peak_learning_rate * 0.01,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=config.final_learning_rate_fraction,
        warmup_target=config.peak_learning_rate,
        warmup_steps=warmup_steps,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=config.weight_decay,
        use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum or 0.99,
    )
    # Decay only conv/dense kernels: decaying BN scales and biases just fights the normalisation.
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    if config.distillation.enabled:
        loss = DistillationLoss(
            config.distillation.temperature, config.distillation.label_weight, config.label_smoothing
        )
        accuracy = StudentAccuracy(name="accuracy")
    else:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=False)


class _AveragedWeights:
    """The optimizer's moving average of the weights, swapped into the model for as long as the block runs."""

    def __init__(self, model: keras.Model):
        self.model = model

    def __enter__(self) -> keras.Model:
        self._raw = [v.numpy() for v in self.model.trainable_variables]
        averages = self.model.optimizer._model_variables_moving_average  # Keras keeps no public handle on them
        for variable, average in zip(self.model.trainable_variables, averages, strict=True):
            variable.assign(average)
        return self.model

    def __exit__(self, *exc) -> None:
        for variable, raw in zip(self.model.trainable_variables, self._raw, strict=True):
            variable.assign(raw)


class _RunRecorder(keras.callbacks.Callback):
    """After each epoch: save the resumable checkpoint, the best weights, the history, and log one line.

    With a weight average (config.ema_momentum) it is scored on the validation rows too, and the best of the
    averaged weights, not of the raw ones, is what the run keeps.
    """

    def __init__(self, files: RunFiles, history: list[dict], total_epochs: int, validation=None):
        super().__init__()
        self.files = files
        self.history = history
        self.total_epochs = total_epochs
        self.validation = validation  # the evaluation stream, when the averaged weights are to be scored
        best = read_json(files.best_info, {"val_accuracy": -1.0})
        self.best_val_accuracy = best["val_accuracy"]
        self._epoch_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        record = {
            "epoch": epoch + 1,
            "loss": float(logs["loss"]),
            "accuracy": float(logs["accuracy"]),
            "val_loss": float(logs["val_loss"]),
            "val_accuracy": float(logs["val_accuracy"]),
            "learning_rate": float(self.model.optimizer.learning_rate.numpy()),
            "seconds": round(time.monotonic() - self._epoch_started, 2),
        }
        tmp = self.files.last_checkpoint.with_name("last.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, self.files.last_checkpoint)
        if self.validation is None:
            improved = self._keep_if_best(self.model, epoch, record["val_accuracy"])
        else:
            with _AveragedWeights(self.model) as averaged:
                scores = averaged.evaluate(self.validation, verbose=0, return_dict=True)
                record["ema_val_loss"], record["ema_val_accuracy"] = float(scores["loss"]), float(scores["accuracy"])
                improved = self._keep_if_best(averaged, epoch, record["ema_val_accuracy"])
        record["seconds"] = round(time.monotonic() - self._epoch_started, 2)  # the checkpoints and scoring count
        self.history.append(record)
        write_json_atomic(self.files.history, self.history)
        log.info(
            "epoch %d/%d loss=%.4f accuracy=%.4f val_loss=%.4f val_accuracy=%.4f%s lr=%.2e time=%.1fs%s",
            epoch + 1, self.total_epochs, record["loss"], record["accuracy"], record["val_loss"],
            record["val_accuracy"],
            f" ema_val_accuracy={record['ema_val_accuracy']:.4f}" if "ema_val_accuracy" in record else "",
            record["learning_rate"], record["seconds"], " (best)" if improved else "",
        )

    def _keep_if_best(self, model: keras.Model, epoch: int, val_accuracy: float) -> bool:
        if val_accuracy <= self.best_val_accuracy:
            return False
        self.best_val_accuracy = val_accuracy
        student_of(model).save_weights(self.files.best_weights)  # a distillation run keeps its student alone
        write_json_atomic(self.files.best_info, {"epoch": epoch + 1, "val_accuracy": val_accuracy})
        return True


def _select_training_rows(data: FerData, config: TrainConfig) -> FerData:
    train = data.split(config.train_usage)
    return train.subset(slice(0, config.limit_train_rows)) if config.limit_train_rows else train


def _start_or_resume(
    files: RunFiles, config: TrainConfig, resume: bool, steps_per_epoch: int, train_rows: int, val_rows: int,
    precision: str,
) -> tuple[keras.Model, int, list[dict]]:
    """(model, first epoch to run, history so far): from the last checkpoint, or a fresh compiled model."""
    if resume and files.last_checkpoint.exists():
        model = keras.models.load_model(files.last_checkpoint)
        # The optimizer's step counter is the truth; the history may lag by an epoch after a crash.
        first_epoch = int(model.optimizer.iterations.numpy()) // steps_per_epoch
        log.info("resuming %s at epoch %d", files.root, first_epoch + 1)
        return model, first_epoch, read_json(files.history, [])[:first_epoch]
    student = build_model(config.model)
    start = load_initial_weights(student, config, files.root.parent) if config.init_from else None
    if start:
        log.info("fine-tune: weights from %s", config.init_from)
    model, teachers = student, []
    if config.distillation.enabled:
        teachers = teacher_run_dirs(config.distillation, files.root.parent)
        model = distillation_model(student, teacher_ensemble(
            [_load_teacher(run_dir) for run_dir in teachers], config.distillation.teacher_flip
        ))
    _compile(model, config, steps_per_epoch)
    save_config(config, files.config)
    write_json_atomic(files.run_info, {
        "command": shlex.join([Path(sys.executable).name, "-m", "classpulse_training", *sys.argv[1:]]),
        "seed": config.seed,
        "precision": precision,
        "cpu": describe_cpu(),
        "macs_per_face": count_macs(student),
        "parameters": student.count_params(),
        "train_rows": train_rows,
        "val_rows": val_rows,
        **({"teachers": [run_record(run_dir) for run_dir in teachers]} if teachers else {}),
        **({"init_from": start} if start else {}),
    })
    return model, 0, []


def _load_teacher(run_dir: Path) -> keras.Model:
    files = RunFiles(run_dir)
    # Built without dropout: Keras runs a nested network in the caller's training mode whatever its call says, and a
    # teacher must give the same answer in fit() as in evaluate(). (Its batch norm is frozen by trainable=False.)
    teacher = build_model(dataclasses.replace(load_config(files.config).model, dropout=0.0))
    teacher.load_weights(files.best_weights)
    return teacher


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    data: FerData | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Train (or continue training) the run in ``run_dir``.

    ``data`` replaces reading config.csv and config.extra_training_csv; ``extra_callbacks`` run after each epoch's
    checkpoint (e.g. to stop early).
    """
    files = RunFiles(Path(run_dir))
    if not resume and files.last_checkpoint.exists():
        raise FileExistsError(f"{files.root} already holds a run; pass --resume or choose another run name")
    files.make_dirs()
    keras.utils.set_random_seed(config.seed)
    precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(precision)
    log.info("precision %s (config: %s; this CPU: %s)", precision, config.precision, describe_cpu())

    if data is None:
        data = load_training_csvs(config.csv, config.extra_training_csv, config.train_usage)
    train_rows, val_rows = _select_training_rows(data, config), data.split(config.val_usage)
    steps_per_epoch = len(train_rows) // config.batch_size
    if steps_per_epoch == 0 or len(val_rows) == 0:
        raise ValueError(f"need >= {config.batch_size} {config.train_usage} rows and some {config.val_usage} rows")

    model, first_epoch, history = _start_or_resume(
        files, config, resume, steps_per_epoch, len(train_rows), len(val_rows), precision
    )
    served = student_of(model)
    log.info("model: %d parameters, %.1f M multiply-accumulates per face", served.count_params(), count_macs(served) / 1e6)

    weights = class_weights(train_rows.labels, config.class_weight_power)
    stream = training_stream(
        train_rows, seed=config.seed, batch_size=config.batch_size, first_epoch=first_epoch, epochs=config.epochs,
        weights_per_class=weights, augment=config.augment,
    )
    validation = evaluation_stream(val_rows)
    recorder = _RunRecorder(files, history, config.epochs, validation if config.ema_momentum > 0 else None)
    if first_epoch < config.epochs:
        model.fit(
            stream, epochs=config.epochs, initial_epoch=first_epoch, steps_per_epoch=steps_per_epoch,
            validation_data=validation, callbacks=[recorder, *extra_callbacks], verbose=0,
            shuffle=False,  # the stream is already shuffled, deterministically per epoch
        )
    best = read_json(files.best_info)
    seconds = float(np.sum([h["seconds"] for h in history]))
    log.info(
        "done: best %s accuracy %.4f at epoch %d, %.1f min training",
        config.val_usage, best["val_accuracy"], best["epoch"], seconds / 60,
    )
    return TrainResult(history, best["epoch"], best["val_accuracy"], seconds)
