"""The exported model: Keras CNN + inference-time choices (flip averaging, temperature) in one SavedModel.

``evaluate`` and ``export`` both score through ``predict_probabilities`` on the loaded SavedModel's
signature, so the numbers they report are the numbers TF Serving will produce.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from classpulse_core.labels import EMOTIONS as EMOTION_KEYS
from classpulse_core.labels import LABELS_OUTPUT, LABELS_SIGNATURE

from .labels import IMAGE_SIDE
from .versions import staged_version

SERVING_SIGNATURE = "serving_default"
NAMED_SIGNATURE = "emotion"  # same function as serving_default, under the model's own name
FLOAT_SIGNATURE = "emotion_float"
SINGLE_PASS_SIGNATURE = "emotion_single_pass"  # noqa: S105 - a signature name: one pass of the network
"""uint8 faces, one pass of the network (no flip averaging), its own fitted temperature: half the compute of the
default signature for a point or so of accuracy, for deployments that count cost per student first
(CLASSPULSE_MODEL_SIGNATURE)."""
INPUT_KEY = "faces"
OUTPUT_KEY = "probabilities"


def _face_spec(dtype: tf.DType) -> tf.TensorSpec:
    return tf.TensorSpec([None, IMAGE_SIDE, IMAGE_SIDE, 1], dtype, name=INPUT_KEY)


def averaged_logits(model: keras.Model, faces: tf.Tensor, flip_average: bool) -> tf.Tensor:
    """float32 logits, averaged over the face and its mirror image when flip_average is set."""
    faces = tf.cast(faces, tf.float32)
    if not flip_average:
        return tf.cast(model(faces, training=False), tf.float32)
    # One model call on [faces; mirrored] keeps the batch large, which is what the CPU kernels like.
    both = tf.cast(model(tf.concat([faces, tf.reverse(faces, axis=[2])], axis=0), training=False), tf.float32)
    plain, mirrored = tf.split(both, 2, axis=0)
    return (plain + mirrored) / 2.0


def calibrated_probabilities(model: keras.Model, faces: tf.Tensor, temperature: float, flip_average: bool) -> tf.Tensor:
    return tf.nn.softmax(averaged_logits(model, faces, flip_average) / temperature, axis=-1)


def keras_logits(model: keras.Model, images: np.ndarray, flip_average: bool, batch_size: int = 256) -> np.ndarray:
    """Logits of the Keras model over images in batches (used to choose flip averaging and fit the temperature)."""
    batches = (tf.constant(images[i : i + batch_size]) for i in range(0, len(images), batch_size))
    return np.concatenate([averaged_logits(model, faces, flip_average).numpy() for faces in batches])


class _EmotionModule(tf.Module):
    """Holds the Keras model (so its variables are saved once) and the signature functions."""

    def __init__(self, model: keras.Model, temperature: float, flip_average: bool, single_pass_temperature: float):
        super().__init__(name="emotion")
        self.model = model
        self._temperature = temperature
        self._flip_average = flip_average
        self._single_pass_temperature = single_pass_temperature

    def _probabilities(self, faces):
        return {OUTPUT_KEY: calibrated_probabilities(self.model, faces, self._temperature, self._flip_average)}

    @tf.function(input_signature=[_face_spec(tf.uint8)])
    def from_uint8(self, faces):
        return self._probabilities(faces)

    @tf.function(input_signature=[_face_spec(tf.float32)])
    def from_float(self, faces):
        return self._probabilities(faces)

    @tf.function(input_signature=[_face_spec(tf.uint8)])
    def single_pass(self, faces):
        return {OUTPUT_KEY: calibrated_probabilities(self.model, faces, self._single_pass_temperature, False)}

    @tf.function(input_signature=[])
    def labels(self):
        return _label_names()


def _label_names() -> dict[str, tf.Tensor]:
    """What LABELS_SIGNATURE answers: the emotion of each output column, as the services name them."""
    return {LABELS_OUTPUT: tf.constant(EMOTION_KEYS)}


def write_saved_model(
    model: keras.Model, path: Path, *, temperature: float, flip_average: bool, single_pass_temperature: float = 1.0
) -> None:
    module = _EmotionModule(model, temperature, flip_average, single_pass_temperature)
    uint8_signature = module.from_uint8.get_concrete_function()
    signatures = {
        SERVING_SIGNATURE: uint8_signature,
        NAMED_SIGNATURE: uint8_signature,
        FLOAT_SIGNATURE: module.from_float.get_concrete_function(),
        SINGLE_PASS_SIGNATURE: module.single_pass.get_concrete_function(),
        LABELS_SIGNATURE: module.labels.get_concrete_function(),
    }
    tf.saved_model.save(module, str(path), signatures=signatures)


def add_label_signature(model_dir: Path) -> None:
    """Adds LABELS_SIGNATURE to a SavedModel exported before models named their outputs: the same functions and
    variables saved again (its outputs do not change) into a copy of its version folder, which then replaces it
    whole (staged_version), so a model server watching the base path never loads it half-rewritten."""
    loaded = tf.saved_model.load(str(model_dir))
    loaded.labels = tf.function(input_signature=[])(_label_names)
    signatures = {**loaded.signatures, LABELS_SIGNATURE: loaded.labels.get_concrete_function()}
    with staged_version(model_dir, replacing=True) as staged:
        tf.saved_model.save(loaded, str(staged), signatures=signatures)


def load_signature(model_dir: Path, name: str = SERVING_SIGNATURE):
    return tf.saved_model.load(str(model_dir)).signatures[name]


def predict_probabilities(signature, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run a loaded signature over images (uint8 for the uint8 signatures) in batches."""
    outputs = [
        signature(**{INPUT_KEY: tf.constant(images[start : start + batch_size])})[OUTPUT_KEY].numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, 7), np.float32)
