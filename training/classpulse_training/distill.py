"""Knowledge distillation: a small served network (the student) learns from the outputs of larger, already trained
networks (the teachers) as well as from the labels.

FER2013's labels are noisy (people agree on about 65% of them) and a single label says nothing of how close a face
is to the other classes; a strong teacher's softened probabilities say both, and the gain they bring grows as the
student shrinks (Hinton et al. 2015; Cho & Hariharan 2019). The teachers run on exactly the augmented batch the
student sees (online, frozen): cached outputs of un-augmented faces would teach the wrong answer
for a rotated, erased or mixed face.

The training model outputs the student's logits and the teachers' (mean) logits side by side, so that Keras' own
fit, checkpoints, weight average and resume work unchanged: only the student's variables are trainable, and only the
student's weights are kept as the run's best weights (what export reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import ops

from .labels import IMAGE_SIDE, NUM_CLASSES

STUDENT_NAME = "emotion_cnn"  # the name model.build_model gives every network
TEACHER_NAME = "teachers"


@dataclass(frozen=True)
class DistillationConfig:
    # Run names (folders beside the student's run) of the trained teachers: each needs its config.json and best
    # weights. Empty: no distillation, the run learns from the labels alone.
    teachers: tuple[str, ...] = ()
    # Softmax temperature both sides are softened by before matching: higher shows more of the teacher's ranking of
    # the wrong classes ("dark knowledge"); 4 is the usual choice for few-class problems.
    temperature: float = 4.0
    # Weight of the labels' cross-entropy; the rest (1 - this) goes to matching the teachers.
    label_weight: float = 0.25
    # Teachers read each face and its mirror image and average their logits: a stronger teacher for one more pass.
    teacher_flip: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.teachers)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("distillation temperature must be > 0")
        if not 0 <= self.label_weight <= 1:
            raise ValueError("distillation label_weight must be within 0..1")


@keras.saving.register_keras_serializable(package="classpulse")
class HorizontalFlip(keras.layers.Layer):
    """Mirror images left to right (batch, height, width, channels)."""

    def call(self, images):
        return ops.flip(images, axis=2)


@keras.saving.register_keras_serializable(package="classpulse")
class DistillationLoss(keras.losses.Loss):
    """label_weight x cross-entropy(labels, student) + (1 - label_weight) x T^2 x KL(teacher_T || student_T).

    y_pred is [student logits | teacher logits]. T^2 keeps the soft term's gradients the size of the hard term's
    whatever the temperature (Hinton et al.)."""

    def __init__(self, temperature: float = 4.0, label_weight: float = 0.25, label_smoothing: float = 0.0,
                 name: str = "distillation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature
        self.label_weight = label_weight
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        student, teacher = y_pred[:, :NUM_CLASSES], y_pred[:, NUM_CLASSES:]
        hard = keras.losses.categorical_crossentropy(
            y_true, student, from_logits=True, label_smoothing=self.label_smoothing
        )
        t = self.temperature
        teacher_log_p = ops.log_softmax(teacher / t, axis=-1)
        student_log_p = ops.log_softmax(student / t, axis=-1)
        soft = ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1) * (t * t)
        return self.label_weight * hard + (1.0 - self.label_weight) * soft

    def get_config(self):
        return super().get_config() | {
            "temperature": self.temperature, "label_weight": self.label_weight,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="classpulse")
class StudentAccuracy(keras.metrics.CategoricalAccuracy):
    """Accuracy of the student's half of [student logits | teacher logits]: the figure the run is chosen by."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, y_pred[:, :NUM_CLASSES], sample_weight)


def teacher_ensemble(teachers: Sequence[keras.Model], flip: bool) -> keras.Model:
    """One frozen network: the mean logits of every teacher (on the face and, with flip, on its mirror image).

    Teachers come without dropout (train._load_teacher builds them so): Keras runs a nested network in its caller's
    training mode, and only batch norm is kept in inference mode by trainable=False."""
    inputs = keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1), dtype="float32", name="faces")
    views = [inputs, HorizontalFlip(name="mirror")(inputs)] if flip else [inputs]
    logits = []
    for i, teacher in enumerate(teachers):
        renamed = keras.Model(teacher.input, teacher.output, name=f"teacher_{i}")
        renamed.trainable = False
        logits += [renamed(view) for view in views]
    mean = logits[0] if len(logits) == 1 else keras.layers.Average(name="mean_logits", dtype="float32")(logits)
    ensemble = keras.Model(inputs, mean, name=TEACHER_NAME)
    ensemble.trainable = False
    return ensemble


def distillation_model(student: keras.Model, teachers: keras.Model) -> keras.Model:
    """The model fit() trains: [student logits | teachers' logits], float32 whatever the compute policy."""
    inputs = keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1), dtype="float32", name="faces")
    both = keras.layers.Concatenate(name="student_and_teacher_logits", dtype="float32")(
        [student(inputs), teachers(inputs)]
    )
    return keras.Model(inputs, both, name="distillation")


def student_of(model: keras.Model) -> keras.Model:
    """The network a run serves: the model itself, or the student inside a distillation model."""
    return model.get_layer(STUDENT_NAME) if model.name == "distillation" else model


def teacher_run_dirs(config: DistillationConfig, runs_dir: Path) -> list[Path]:
    """The teachers' run folders, each checked to hold what loading it needs."""
    dirs = [runs_dir / name for name in config.teachers]
    for run_dir in dirs:
        for needed in (run_dir / "config.json", run_dir / "checkpoints" / "best.weights.h5"):
            if not needed.exists():
                raise FileNotFoundError(
                    f"teacher run {run_dir.name!r} has no {needed.relative_to(run_dir)} in {runs_dir}: train it first "
                    f"(make train MODEL_RUN={run_dir.name}) or restore it (python -m classpulse_training restore-run)"
                )
    return dirs
