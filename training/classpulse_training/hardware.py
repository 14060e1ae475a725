"""The CPU this runs on, as far as the choice of arithmetic goes.

bfloat16 pays only where the CPU computes it fast: there (AMX, or AMD Zen 4's AVX512-BF16), mixed-precision
training and a bfloat16 export run about 2.5x faster than float32. Without native bfloat16 TensorFlow emulates it:
measured on a 2-core AMD EPYC without AVX-512, a training step of the emotion CNN took 8.7 s in mixed bfloat16 against
0.71 s in float32. And the flag alone does not say it pays: on a 2-core Intel Xeon of the Sapphire Rapids class whose
VM exposes AVX512-BF16 but not AMX, TensorFlow multiplied bfloat16 matrices at half its float32 rate (145 against
278 GFLOP/s) and ran the served network 1.7-1.8x slower in mixed bfloat16 (docs/performance.md, "BlazeFace rooms, on
a CPU without AMX"). So "auto" measures it where the flags allow it.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def _cpuinfo_field(name: str) -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else ():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return ""


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    return set(_cpuinfo_field("flags").split())


def native_bfloat16(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return "avx512_bf16" in flags or "amx_bf16" in flags


BFLOAT16_MIN_SPEEDUP = 1.2
"""bfloat16 matrix products must be at least this many times faster than float32 ones for "auto" to train in mixed
bfloat16: below it, the casts around every layer and the float32 parts of a step eat the gain."""


def best_rate(run: Callable[[], object], flops_per_call: float, seconds: float) -> float:
    """Best FLOP/s of `run` over windows of up to a second after a warm-up call (best-of: the machine may be shared)."""
    run()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < min(1.0, seconds):
            run()
            calls += 1
        best = max(best, calls * flops_per_call / (time.perf_counter() - started))
    return best


@functools.cache
def bfloat16_speedup(seconds: float = 0.3, side: int = 512) -> float:
    """How many times faster TensorFlow (its oneDNN kernels: what training and serving run) multiplies two side x side
    bfloat16 matrices than float32 ones on this CPU (`best_rate` of each over `seconds`). Measured once a process."""
    import tensorflow as tf

    rates = []
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.uniform((side, side)), dtype)
        matmul = tf.function(lambda a=a: tf.matmul(a, a))
        rates.append(best_rate(lambda matmul=matmul: matmul().numpy(), 2.0 * side**3, seconds))
    return rates[1] / rates[0]


def resolve_precision(precision: str, flags: set[str] | None = None, speedup: float | None = None) -> str:
    """The Keras dtype policy for a config's precision: "auto" is mixed bfloat16 where the CPU has bfloat16 natively
    and multiplies it at least BFLOAT16_MIN_SPEEDUP times faster than float32 (`speedup`, default: measured here by
    `bfloat16_speedup`), float32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if not native_bfloat16(flags):
        return "float32"
    return "mixed_bfloat16" if (bfloat16_speedup() if speedup is None else speedup) >= BFLOAT16_MIN_SPEEDUP else "float32"


def describe_cpu() -> str:
    """One line for model cards and logs: CPU model, usable cores, native bfloat16 or not."""
    native = "native bfloat16" if native_bfloat16() else "no native bfloat16"
    return f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores, {native}"
