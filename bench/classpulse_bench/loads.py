"""The whole pipeline under a stated load: N classes x S students x F frames/s, everything running."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from classpulse_bench.pipeline import (
    FACES,
    HARNESS,
    INPUT_TOPICS,
    LATENCY,
    MESSAGES_IN,
    STAGES,
    Pipeline,
    Sample,
    window_percentiles,
)
from classpulse_bench.procstat import CpuSnapshot

log = logging.getLogger(__name__)

DRAIN_AFTER_S = 120.0
"""How long a run waits, after its last frame was published, for the aggregator to count every frame."""


@dataclass(frozen=True)
class Load:
    classes: int
    students: int
    fps: float

    @property
    def frames_per_s(self) -> float:
        return self.classes * self.fps

    @property
    def label(self) -> str:
        return f"{self.classes} classes x {self.students} students x {self.fps:g} fps"

    @classmethod
    def for_rate(cls, frames_per_s: float, students: int, fps: float) -> Load:
        """The load of about `frames_per_s` made of classes at `fps` each (at least one class)."""
        return cls(max(1, round(frames_per_s / fps)), students, fps)


@dataclass(frozen=True)
class LoadRun:
    load: Load
    figures: dict
    stage_latency: dict[str, dict]
    """Per stage: p50/p95/p99 of the time from a frame's capture until the stage was done with it."""
    cpu_ms_per_frame: dict[str, float]
    """Per process of the stack (and the publisher): CPU milliseconds per completed frame."""
    peak_rss_mb: dict[str, float]
    """Per process of the stack: peak resident memory since it started."""


def run(
    pipeline: Pipeline, load: Load, seconds: float, warmup_s: float, saturate: bool = False, score: bool = False
) -> LoadRun:
    """Publishes `load` for `seconds` and measures from `warmup_s` in until every frame is in Redis (or, with
    `saturate`, until the publisher stops: a backlogged pipeline's completion rate is its capacity)."""
    class_ids = pipeline.new_classes(load.classes)
    frames_per_class = max(1, math.ceil(load.fps * seconds))
    offsets = pipeline.predictions_offsets() if score else {}
    start = pipeline.sample()
    publisher = pipeline.start_publisher(class_ids, load.fps, frames_per_class)
    time.sleep(warmup_s)
    first = pipeline.sample({"publisher": publisher.pid})
    target = start.scrape.total(MESSAGES_IN, stage="aggregator") + load.classes * frames_per_class
    while_publishing = _sample_until_published(pipeline, publisher, first)
    pipeline.finish_publisher(publisher, 60)
    drain_s = DRAIN_AFTER_S + (seconds * 4 if saturate else 0)
    drained = pipeline.wait_for("aggregator", MESSAGES_IN, target, drain_s)[-1]
    last = while_publishing if saturate else _merge_publisher_cpu(drained, while_publishing)
    figures, cpu = _figures(pipeline, load, first, last)
    if score:
        figures.update(pipeline.accuracy_since(offsets, class_ids, pipeline.labels["per_frame"], frames_per_class).figures())
    latency = {stage: window_percentiles(first, last, LATENCY, stage=stage) for stage in STAGES}
    log.info("load run", extra={"load": load.label, "saturate": saturate, **figures})
    return LoadRun(load, figures, latency, cpu, pipeline.peak_rss_mb_all())


def _sample_until_published(pipeline: Pipeline, publisher, first: Sample) -> Sample:
    """The last sample taken while the publisher still ran (its CPU seconds are in it)."""
    last = first
    while publisher.poll() is None:
        last = pipeline.sample({"publisher": publisher.pid})
        time.sleep(0.5)
    return last


def _merge_publisher_cpu(final: Sample, while_publishing: Sample) -> Sample:
    """`final`, with the publisher's CPU seconds from the last sample in which it was still alive."""
    per_process = dict(final.cpu.per_process)
    if "publisher" in while_publishing.cpu.per_process:
        per_process["publisher"] = while_publishing.cpu.per_process["publisher"]
    return Sample(final.at, final.scrape, CpuSnapshot(per_process, final.cpu.machine))


def _figures(pipeline: Pipeline, load: Load, first: Sample, last: Sample) -> tuple[dict, dict[str, float]]:
    seconds = last.at - first.at
    aggregated = {"stage": "aggregator", "topic": INPUT_TOPICS["aggregator"]}
    frames = last.scrape.total(MESSAGES_IN, **aggregated) - first.scrape.total(MESSAGES_IN, **aggregated)
    faces = last.scrape.total(FACES, stage="classifier") - first.scrape.total(FACES, stage="classifier")
    used = last.cpu.since(first.cpu).per_process
    harness = used.pop(HARNESS, 0.0)
    ours = sum(used.values())
    cpu_ms_per_frame = {name: round(value / frames * 1000, 2) for name, value in sorted(used.items())} if frames else {}
    e2e = window_percentiles(first, last, LATENCY, stage="aggregator")
    figures = {
        "offered_frames_per_s": round(load.frames_per_s, 1),
        "frames_per_s": round(frames / seconds, 1),
        "faces_per_s": round(faces / seconds, 1),
        "cpu_ms_per_frame": round(ours / frames * 1000, 2) if frames else None,
        "frames_per_cpu_s": round(frames / ours, 1) if ours else None,
        "stack_cores": round(ours / seconds, 2),
        "harness_cores": round(harness / seconds, 2),
        "other_cores": round(max(0.0, last.cpu.machine - first.cpu.machine - ours - harness) / seconds, 2),
        **{f"capture_to_redis_{k}": v for k, v in e2e.items()},
    }
    return figures, cpu_ms_per_frame
