"""The emotion CNN: a compact VGG-style network sized for CPU serving (tens of MFLOPs per face).

The model takes float32 faces with pixel values in 0..255 so the exported signatures only cast, never rescale.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from .labels import IMAGE_SIDE, NUM_CLASSES

HEADS = {"global_average": keras.layers.GlobalAveragePooling2D, "flatten": keras.layers.Flatten}


@dataclass(frozen=True)
class ModelConfig:
    # One entry per resolution stage (48, 24, 12, 6 pixels): output channels and number of 3x3 convs.
    widths: tuple[int, ...] = (24, 48, 96, 192)
    convs_per_stage: tuple[int, ...] = (1, 2, 2, 2)
    dense_units: int = 256
    dropout: float = 0.4
    weight_decay: float = 0.0  # L2 on conv kernels; 0 because AdamW already decays weights
    # "global_average" pools the last stage to one vector; "flatten" keeps where on the face each feature fired
    # (FER2013 faces are aligned, so the mouth and the eyes always sit in the same cells) for a few more MACs.
    head: str = "global_average"

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.convs_per_stage):
            raise ValueError("widths and convs_per_stage need one entry per stage")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {sorted(HEADS)}, got {self.head!r}")


def _conv_bn_relu(x, filters: int, name: str, l2: float):
    regularizer = keras.regularizers.L2(l2) if l2 else None
    conv = keras.layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_regularizer=regularizer, name=f"{name}_conv"
    )
    x = conv(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def build_model(config: ModelConfig) -> keras.Model:
    inputs = keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1), dtype="float32", name="faces")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    last_stage = len(config.widths) - 1
    for stage, (width, convs) in enumerate(zip(config.widths, config.convs_per_stage, strict=True)):
        for i in range(convs):
            x = _conv_bn_relu(x, width, f"s{stage}_{i}", config.weight_decay)
        if stage != last_stage:
            x = keras.layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    x = HEADS[config.head](name="pool")(x)
    if config.dense_units:
        x = keras.layers.Dropout(config.dropout / 2, name="head_dropout_in")(x)
        x = keras.layers.Dense(config.dense_units, use_bias=False, name="head_dense")(x)
        x = keras.layers.BatchNormalization(name="head_bn")(x)
        x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    # Logits: softmax (with the fitted temperature) is applied in the exported signature.
    logits = keras.layers.Dense(NUM_CLASSES, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name="emotion_cnn")


def ensemble_model(members: list[keras.Model]) -> keras.Model:
    """One network whose logits are the mean of its members' (whole CNNs trained apart, from other seeds or configs):
    their errors differ, so the mean is right more often than either, for the sum of their costs."""
    inputs = keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1), dtype="float32", name="faces")
    # Re-wrapped under distinct names: a model may not hold two layers (here: networks) of the same name.
    renamed = [keras.Model(member.input, member.output, name=f"member_{i}") for i, member in enumerate(members)]
    logits = keras.layers.Average(name="mean_logits", dtype="float32")([member(inputs) for member in renamed])
    return keras.Model(inputs, logits, name="emotion_ensemble")


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates per face for the conv and dense layers (BN, ReLU and pooling are negligible), members of
    an ensemble included."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            macs += count_macs(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            macs += h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            c_in, c_out = layer.kernel.shape
            macs += c_in * c_out
    return int(macs)
