"""What the bench ran on: CPU model, cores, memory, how busy the machine was, and its measured FLOP/s."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from classpulse_bench import procstat
from classpulse_training.hardware import best_rate, cpu_model, native_bfloat16


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return 0.0


def busy_cores(seconds: float = 1.0) -> float:
    """Cores' worth of CPU the whole machine is using right now (everyone's work), averaged over `seconds`."""
    before = procstat.machine_busy_seconds()
    time.sleep(seconds)
    return round((procstat.machine_busy_seconds() - before) / seconds, 2)


def describe() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib(),
        "bf16": native_bfloat16(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "busy_cores_before_bench": busy_cores(),
    }


def measured_flops(seconds: float = 3.0, side: int = 1024) -> dict[str, float]:
    """GFLOP/s of a square matmul on every core: float32 through numpy (BLAS), and bfloat16 through TensorFlow (the
    model's own arithmetic, oneDNN)."""
    import tensorflow as tf

    flops = 2.0 * side**3
    rng = np.random.default_rng(0)
    a32, b32 = rng.standard_normal((side, side), dtype=np.float32), rng.standard_normal((side, side), dtype=np.float32)
    a16, b16 = tf.constant(a32, tf.bfloat16), tf.constant(b32, tf.bfloat16)
    matmul16 = tf.function(lambda: tf.linalg.matmul(a16, b16))
    return {
        "float32_gflops": round(best_rate(lambda: a32 @ b32, flops, seconds) / 1e9, 1),
        "bfloat16_gflops": round(best_rate(lambda: matmul16().numpy(), flops, seconds) / 1e9, 1),
    }
