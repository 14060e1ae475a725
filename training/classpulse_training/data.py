"""tf.data pipelines over in-memory uint8 images.

The training stream is a pure function of (seed, epoch): epoch e shuffles with seed (seed, e) and augments
batch b with seed (seed, e * 1_000_000 + b). A resumed run therefore sees exactly the batches it would have
seen without the interruption.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .augment import AugmentConfig, augment_batch, mix_pairs
from .fer_csv import FerData
from .labels import NUM_CLASSES

_BATCHES_PER_EPOCH_STRIDE = 1_000_000


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Loss weight per class, frequency ** -power, scaled so the mean weight over the samples is 1."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    return (weights / (weights[labels].mean())).astype(np.float32)


def training_stream(
    data: FerData,
    *,
    seed: int,
    batch_size: int,
    first_epoch: int,
    epochs: int,
    weights_per_class: np.ndarray,
    augment: AugmentConfig,
) -> tf.data.Dataset:
    """Batches (augmented float images, one-hot labels, sample weights) for epochs first_epoch..epochs-1."""
    images = tf.constant(data.images)
    labels = tf.constant(data.labels)
    class_weight_table = tf.constant(weights_per_class)
    n = len(data)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
        return batches.enumerate().map(lambda b, idx: (epoch * _BATCHES_PER_EPOCH_STRIDE + b, idx))

    def make_batch(batch_id, idx):
        batch_labels = tf.gather(labels, idx)
        batch_seed = tf.stack([tf.cast(seed, tf.int64), batch_id])
        x = augment_batch(tf.gather(images, idx), batch_seed, augment)
        y = tf.one_hot(batch_labels, NUM_CLASSES)
        w = tf.gather(class_weight_table, batch_labels)
        if augment.mixup_alpha > 0:
            # The augmentation's own seeds come from splitting batch_seed; mixup takes a sibling of it.
            x, y, w = mix_pairs(x, y, w, batch_seed + [0, _BATCHES_PER_EPOCH_STRIDE // 2], augment.mixup_alpha)
        return x, y, w

    return (
        tf.data.Dataset.range(first_epoch, epochs)
        .flat_map(epoch_batches)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def evaluation_stream(data: FerData, batch_size: int = 512) -> tf.data.Dataset:
    """Un-augmented (float images, one-hot labels) in file order."""
    return (
        tf.data.Dataset.from_tensor_slices((data.images, data.labels))
        .batch(batch_size)
        .map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, NUM_CLASSES)))
        .prefetch(tf.data.AUTOTUNE)
    )
