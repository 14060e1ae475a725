"""Training precision "auto": bfloat16 only where the CPU computes it natively."""

from __future__ import annotations

import pytest

from classpulse_training.config import TrainConfig
from classpulse_training.hardware import describe_cpu, resolve_precision

pytestmark = pytest.mark.unit

AVX2_ONLY = {"fpu", "sse4_2", "avx", "avx2", "fma"}


@pytest.mark.parametrize(("flags", "expected"), [
    (AVX2_ONLY, "float32"),
    (AVX2_ONLY | {"avx512f", "avx512bw"}, "float32"),  # AVX-512 without its bfloat16 extension emulates it too
    (AVX2_ONLY | {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
    (AVX2_ONLY | {"amx_bf16", "amx_tile"}, "mixed_bfloat16"),
])
def test_auto_is_mixed_bfloat16_only_with_native_bfloat16(flags, expected):
    assert resolve_precision("auto", flags) == expected


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_an_explicit_precision_is_kept_whatever_the_cpu(precision):
    assert resolve_precision(precision, AVX2_ONLY) == precision
    assert resolve_precision(precision, {"amx_bf16"}) == precision


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("mixed_float16", AVX2_ONLY)


def test_the_default_config_lets_the_cpu_decide():
    assert TrainConfig().precision == "auto"
    assert "bfloat16" in describe_cpu() and "cores" in describe_cpu()
