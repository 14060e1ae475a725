"""The emotion CNN's two heads: the pooled one, and the flattened one that keeps where on the face features are."""

from __future__ import annotations

import numpy as np
import pytest

from classpulse_training.model import ModelConfig, build_model, count_macs

pytestmark = pytest.mark.unit

SMALL = {"widths": (8, 16, 16, 32), "convs_per_stage": (1, 1, 1, 1), "dense_units": 16}


def test_flatten_head_keeps_the_last_stage_grid_and_costs_a_few_more_macs():
    pooled = build_model(ModelConfig(**SMALL))
    flat = build_model(ModelConfig(**SMALL, head="flatten"))
    assert pooled.get_layer("pool").output.shape[-1] == 32
    assert flat.get_layer("pool").output.shape[-1] == 6 * 6 * 32  # 48 px after three poolings: 6x6 cells
    extra = count_macs(flat) - count_macs(pooled)
    assert extra == (6 * 6 * 32 - 32) * 16  # only the head's dense layer grows
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    assert flat(faces).shape == (3, 7)


def test_an_unknown_head_is_refused_by_name():
    with pytest.raises(ValueError, match="head must be one of"):
        ModelConfig(**SMALL, head="attention")
