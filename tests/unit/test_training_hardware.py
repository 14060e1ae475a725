"""Training precision "auto": bfloat16 only where the CPU computes it natively and faster than float32."""

from __future__ import annotations

import pytest

from classpulse_training.config import TrainConfig
from classpulse_training.hardware import BFLOAT16_MIN_SPEEDUP, bfloat16_speedup, describe_cpu, resolve_precision

pytestmark = pytest.mark.unit

AVX2_ONLY = {"fpu", "sse4_2", "avx", "avx2", "fma"}


@pytest.mark.parametrize(("flags", "speedup", "expected"), [
    (AVX2_ONLY, 3.0, "float32"),
    (AVX2_ONLY | {"avx512f", "avx512bw"}, 3.0, "float32"),  # AVX-512 without its bfloat16 extension emulates it too
    (AVX2_ONLY | {"avx512f", "avx512_bf16"}, 3.4, "mixed_bfloat16"),  # AMD Zen 4: 860 against 251 GFLOP/s
    (AVX2_ONLY | {"avx512f", "avx512_bf16"}, 0.52, "float32"),  # a Sapphire Rapids VM without AMX: 145 against 278
    (AVX2_ONLY | {"amx_bf16", "amx_tile"}, 2.5, "mixed_bfloat16"),
    (AVX2_ONLY | {"amx_bf16", "amx_tile"}, BFLOAT16_MIN_SPEEDUP - 0.01, "float32"),
])
def test_auto_is_mixed_bfloat16_only_where_the_cpu_has_it_and_it_is_faster(flags, speedup, expected):
    assert resolve_precision("auto", flags, speedup) == expected


def test_the_speedup_is_measured_on_this_cpu():
    speedup = bfloat16_speedup()
    assert 0.05 < speedup < 50  # a ratio of two measured rates, not a guess from the flags
    assert bfloat16_speedup() == speedup  # once a process


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
