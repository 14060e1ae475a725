"""An export's warm-up records (assets.extra/tf_serving_warmup_requests) prepare what the classifier will call."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
import tensorflow as tf

from classpulse_classifier.settings import ClassifierSettings
from classpulse_core.labels import EMOTIONS
from classpulse_devstack.tfserving_standin.servable import Servable
from classpulse_training.serving import SERVING_SIGNATURE, write_saved_model
from classpulse_training.warmup import WARMUP_BATCH_SIZES, read_warmup_requests, write_warmup_requests

pytestmark = pytest.mark.unit


def test_every_signature_the_classifier_may_call_is_warmed_at_every_batch_size(tmp_path: Path) -> None:
    """A signature's graph is prepared on its own first run: warming only flip averaging left the classifier's
    default signature (one pass) cold, and its first batches after a rollout paid for it within their deadline."""
    version_dir = tmp_path / "1"
    network = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(len(EMOTIONS))])
    write_saved_model(network, version_dir, temperature=1.0, flip_average=True)
    write_warmup_requests(version_dir)

    warmed = {(r.model_spec.signature_name, r.inputs["faces"].tensor_shape.dim[0].size) for r in read_warmup_requests(version_dir)}
    called = {ClassifierSettings.model_fields["model_signature"].default, SERVING_SIGNATURE}
    assert warmed == {(signature, size) for signature in called for size in WARMUP_BATCH_SIZES}
    # Replayed as the model server does on loading the version: each one a valid request of its signature.
    assert Servable("emotion", 1, version_dir).replay_warmup_requests() == len(called) * len(WARMUP_BATCH_SIZES)


def test_the_classifiers_call_sizes_are_warmed_in_a_small_file(tmp_path: Path) -> None:
    """A busy class's calls are 128-256 faces (max_batch_faces split over concurrent_calls): a size left cold pays
    its first run within the deadline of the first such call after a rollout. The requests repeat one value over
    their shape, so warming 256-face calls keeps the committed file small."""
    settings = ClassifierSettings.model_fields
    max_call = settings["max_batch_faces"].default
    assert {max_call, max_call // settings["concurrent_calls"].default} <= set(WARMUP_BATCH_SIZES)
    version_dir = tmp_path / "1"
    network = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(len(EMOTIONS))])
    write_saved_model(network, version_dir, temperature=1.0, flip_average=False)
    assert write_warmup_requests(version_dir).stat().st_size < 4096
    largest = max(read_warmup_requests(version_dir), key=lambda request: request.inputs["faces"].tensor_shape.dim[0].size)
    assert tf.make_ndarray(largest.inputs["faces"]).shape == (max(WARMUP_BATCH_SIZES), 48, 48, 1)
