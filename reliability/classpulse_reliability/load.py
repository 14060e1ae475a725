"""Load generator: simulated classes of simulated students on an isolated stack, and what the pipeline did with them.

Each class is a video-call gallery (the demo's renderer) of FER2013 faces: every student shows one face for a few
seconds, then another, and now and then steps away. Frames are rendered live, stamped with the wall clock as a
camera would, and published through the services' own producer settings at the class's frame rate; for a while in
the middle the rate is multiplied (a burst). Meanwhile every few seconds each stage's consumer lag and message
count and every process's resident memory are sampled; at the end the aggregator's capture-to-Redis latency
histogram gives the end-to-end percentiles.

    python -m classpulse_reliability load --classes 4 --students 6 --fps 2 --seconds 120 --burst-factor 3
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from classpulse_core.schemas import Frame
from classpulse_core.settings import KafkaSettings
from classpulse_core.timeseries import FRAMES
from classpulse_demo.fer_csv import EMOTIONS, resolve_fer_csv, sample_faces
from classpulse_demo.gallery import GalleryRenderer, plan_gallery
from classpulse_reliability.isolated import COMPONENTS, IsolatedStack, running_isolated_stack
from classpulse_reliability.scrape import Samples, scrape, total
from classpulse_reliability.workload import FrameSender, class_totals, register_class
from classpulse_stream.kafka import make_producer
from classpulse_stream.stage import StageConfig

log = logging.getLogger(__name__)

STAGES = ("detector", "classifier", "aggregator")
FRAME_SIZE = (640, 480)
JPEG_QUALITY = 85
FACES_PER_EMOTION = 12
FACE_HOLD_S = (3.0, 8.0)
AWAY_SHARE = 0.1
MIB = 1024 * 1024
LAG_REFRESH_S = StageConfig.lag_refresh_s + 1.0


@dataclass(frozen=True)
class LoadPlan:
    classes: int = 2
    students: int = 6
    fps: float = 2.0
    seconds: float = 60.0
    burst_factor: float = 3.0
    burst_start_s: float = 20.0
    burst_seconds: float = 10.0
    sample_every_s: float = 2.0
    drain_timeout_s: float = 180.0
    seed: int = 7

    def rate_multiplier(self, elapsed_s: float) -> float:
        in_burst = self.burst_start_s <= elapsed_s < self.burst_start_s + self.burst_seconds
        return self.burst_factor if in_burst else 1.0


@dataclass(frozen=True)
class Sample:
    at_s: float
    published: int
    lag: dict[str, float]
    messages_in: dict[str, float]
    rss: dict[str, int]


@dataclass
class LoadResult:
    plan: LoadPlan
    class_ids: list[str]
    published: int = 0
    counted: int = 0
    publish_s: float = 0.0
    drained_s: float | None = None
    samples: list[Sample] = field(default_factory=list)
    latency_quantiles: dict[float, float] = field(default_factory=dict)


class SimulatedClass:
    """One class: its gallery, and which face each student shows at a given moment."""

    def __init__(self, class_id: str, students: int, faces: list[np.ndarray], rng: random.Random) -> None:
        self.class_id = class_id
        self.rng = rng
        self.renderer = GalleryRenderer(plan_gallery(*FRAME_SIZE, students), [f"Student {i + 1}" for i in range(students)], faces)
        self._slots = len(faces)
        self._showing: list[tuple[int | None, float]] = [(None, 0.0)] * students
        self.sequence = 0

    def render(self, now: float) -> np.ndarray:
        shown = []
        for student, (slot, until) in enumerate(self._showing):
            if now >= until:
                slot = None if self.rng.random() < AWAY_SHARE else self.rng.randrange(self._slots)
                self._showing[student] = (slot, now + self.rng.uniform(*FACE_HOLD_S))
            shown.append(slot)
        return self.renderer.render(shown)

    def next_frame(self, source_id: str) -> Frame:
        image = self.render(time.monotonic())
        jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
        now_ms = int(time.time() * 1000)
        frame = Frame(
            class_id=self.class_id,
            source_id=source_id,
            frame_id=f"{source_id}:{self.sequence}",
            sequence=self.sequence,
            captured_at_ms=now_ms,
            published_at_ms=now_ms,
            width=FRAME_SIZE[0],
            height=FRAME_SIZE[1],
            jpeg=jpeg,
        )
        self.sequence += 1
        return frame


def fer_faces(seed: int) -> list[np.ndarray]:
    """FER2013 faces, a dozen per emotion, from the test split the model did not learn from."""
    picked = sample_faces(resolve_fer_csv(), dict.fromkeys(EMOTIONS, FACES_PER_EMOTION), "PublicTest", random.Random(seed))
    return [face.pixels for emotion in EMOTIONS for face in picked.get(emotion, [])]


def _sample(stack: IsolatedStack, started: float, published: int) -> Sample:
    metrics: dict[str, Samples] = {stage: scrape(stack.url(stage)) for stage in STAGES}
    return Sample(
        at_s=time.monotonic() - started,
        published=published,
        lag={stage: total(metrics[stage], "classpulse_consumer_lag") for stage in STAGES},
        messages_in={stage: total(metrics[stage], "classpulse_messages_in_total") for stage in STAGES},
        rss={name: stack.rss_bytes(name) for name in COMPONENTS},
    )


def histogram_quantiles(before: Samples, after: Samples, name: str, stage: str, quantiles: tuple[float, ...]) -> dict[float, float]:
    """Quantiles of what a histogram observed between two scrapes, interpolated linearly inside a bucket (as
    Prometheus's histogram_quantile does); a quantile in the open top bucket is reported as its lower bound."""
    def buckets(samples: Samples) -> dict[float, float]:
        return {
            float(dict(labels)["le"]): value
            for (sample, labels), value in samples.items()
            if sample == f"{name}_bucket" and dict(labels).get("stage") == stage
        }

    start, end = buckets(before), buckets(after)
    bounds = sorted(end)
    cumulative = [end[bound] - start.get(bound, 0.0) for bound in bounds]
    count = cumulative[-1] if cumulative else 0.0
    result = {}
    for quantile in quantiles:
        if count == 0:
            result[quantile] = float("nan")
            continue
        rank = quantile * count
        index = next(i for i, seen in enumerate(cumulative) if seen >= rank)
        lower = bounds[index - 1] if index else 0.0
        upper = bounds[index]
        if upper == float("inf"):
            result[quantile] = lower
            continue
        below = cumulative[index - 1] if index else 0.0
        inside = cumulative[index] - below
        result[quantile] = lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
    return result


def run_load(stack: IsolatedStack, plan: LoadPlan) -> LoadResult:
    rng = random.Random(plan.seed)
    faces = fer_faces(plan.seed)
    run_id = uuid.uuid4().hex[:6]
    classes = [SimulatedClass(f"load-{run_id}-{i}", plan.students, faces, random.Random(rng.random())) for i in range(plan.classes)]
    for simulated in classes:
        register_class(stack.url("api"), stack.admin_key(), simulated.class_id, plan.students)
    kafka = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)
    sender = FrameSender(make_producer(kafka, "classpulse-load"), kafka.frames_topic)
    result = LoadResult(plan, [simulated.class_id for simulated in classes])
    latency_before = scrape(stack.url("aggregator"))
    started = time.monotonic()
    stop_sampling = threading.Event()
    sampler = threading.Thread(target=_sample_until, args=(stack, started, result, stop_sampling), daemon=True)
    sampler.start()
    try:
        _publish(classes, sender, plan, started, result)
        result.publish_s = time.monotonic() - started
        result.drained_s = _drain(stack, result, started)
    finally:
        stop_sampling.set()
        sampler.join()
        sender.producer.close(timeout=10)
    # Stages refresh their lag gauge every few seconds: one more sample once they have, to show where lag ended.
    time.sleep(LAG_REFRESH_S)
    result.samples.append(_sample(stack, started, result.published))
    result.latency_quantiles = histogram_quantiles(
        latency_before, scrape(stack.url("aggregator")), "classpulse_latency_seconds", "aggregator", (0.5, 0.9, 0.99)
    )
    return result


def _publish(classes: list[SimulatedClass], sender: FrameSender, plan: LoadPlan, started: float, result: LoadResult) -> None:
    """Every class at its own rate (times the burst factor during the burst), frames rendered just in time."""
    source_ids = {simulated.class_id: f"camera-{uuid.uuid4().hex[:8]}" for simulated in classes}
    due = [started + i / (plan.fps * len(classes)) for i in range(len(classes))]
    while (now := time.monotonic()) - started < plan.seconds:
        index = min(range(len(classes)), key=due.__getitem__)
        time.sleep(max(0.0, due[index] - now))
        simulated = classes[index]
        sender.send(simulated.next_frame(source_ids[simulated.class_id]))
        result.published += 1
        due[index] += 1 / (plan.fps * plan.rate_multiplier(due[index] - started))
        if result.published % 16 == 0:
            sender.flush()
    sender.flush()


def _sample_until(stack: IsolatedStack, started: float, result: LoadResult, stop: threading.Event) -> None:
    while not stop.wait(result.plan.sample_every_s):
        try:
            result.samples.append(_sample(stack, started, result.published))
        except Exception as error:  # noqa: BLE001 - one missed sample is no reason to end the run
            log.warning("sample failed: %r", error)


def _drain(stack: IsolatedStack, result: LoadResult, started: float) -> float | None:
    """Seconds from the start until every published frame is counted in Redis, or None if that never happened."""
    deadline = time.monotonic() + result.plan.drain_timeout_s
    client = stack.redis()
    try:
        while time.monotonic() < deadline:
            result.counted = round(sum(class_totals(client, class_id)[FRAMES] for class_id in result.class_ids))
            if result.counted >= result.published:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        client.close()
    return None


# --- report ----------------------------------------------------------------------------------------------------


def _throughput(samples: list[Sample], stage: str) -> tuple[float, float]:
    """(mean, peak) messages per second consumed by `stage` over the run."""
    rates = [
        (later.messages_in[stage] - earlier.messages_in[stage]) / (later.at_s - earlier.at_s)
        for earlier, later in itertools.pairwise(samples)
    ]
    span = samples[-1].at_s - samples[0].at_s
    mean = (samples[-1].messages_in[stage] - samples[0].messages_in[stage]) / span if span else 0.0
    return mean, max(rates, default=0.0)


def memory_growth(result: LoadResult, name: str) -> tuple[int, int, int]:
    """(after warm-up, peak, end) resident bytes of a process; warm-up is the first quarter of the samples."""
    series = [sample.rss[name] for sample in result.samples]
    warm = series[len(series) // 4]
    return warm, max(series), series[-1]


def report(result: LoadResult) -> str:
    plan, samples = result.plan, result.samples
    lines = [
        "# Load report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on an isolated stack: {plan.classes} simulated "
        f"classes of {plan.students} students (FER2013 faces), {plan.fps:g} frames/s each for {plan.seconds:g} s, "
        f"x{plan.burst_factor:g} from {plan.burst_start_s:g} s for {plan.burst_seconds:g} s.",
        "",
        f"Frames published: {result.published}; counted in Redis: {result.counted}; publishing took "
        f"{result.publish_s:.0f} s; every frame counted {_since_end(result)}.",
        "",
        "| stage | mean msgs/s | peak msgs/s | max lag | lag at end |",
        "|---|---|---|---|---|",
    ]
    for stage in STAGES:
        mean, peak = _throughput(samples, stage)
        lags = [sample.lag[stage] for sample in samples]
        lines.append(f"| {stage} | {mean:.1f} | {peak:.1f} | {max(lags):.0f} | {lags[-1]:.0f} |")
    quantiles = result.latency_quantiles
    lines += [
        "",
        "End-to-end latency, capture to Redis (aggregator's classpulse_latency_seconds): "
        + ", ".join(f"p{round(q * 100)} {value:.2f} s" for q, value in quantiles.items()),
        "",
        "| process | RSS after warm-up (MiB) | peak (MiB) | end (MiB) |",
        "|---|---|---|---|",
    ]
    for name in COMPONENTS:
        warm, peak, end = memory_growth(result, name)
        lines.append(f"| {name} | {warm / MIB:.0f} | {peak / MIB:.0f} | {end / MIB:.0f} |")
    lines += ["", "Consumer lag over time (messages behind, summed over partitions):", "",
              "| t (s) | published | " + " | ".join(STAGES) + " |", "|---|---|" + "---|" * len(STAGES)]
    for sample in samples:
        lines.append(f"| {sample.at_s:.0f} | {sample.published} | " + " | ".join(f"{sample.lag[s]:.0f}" for s in STAGES) + " |")
    return "\n".join(lines) + "\n"


def _since_end(result: LoadResult) -> str:
    if result.drained_s is None:
        return f"NOT within {result.plan.drain_timeout_s:.0f} s of the end"
    return f"{max(0.0, result.drained_s - result.publish_s):.1f} s after publishing ended"


# --- command line ----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = LoadPlan()
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--students", type=int, default=defaults.students)
    parser.add_argument("--fps", type=float, default=defaults.fps, help="frames per second per class")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to publish")
    parser.add_argument("--burst-factor", type=float, default=defaults.burst_factor)
    parser.add_argument("--burst-start", type=float, default=40.0, help="seconds into the run")
    parser.add_argument("--burst-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("docs/load-report.md"))


def main(args: argparse.Namespace) -> int:
    plan = LoadPlan(
        classes=args.classes, students=args.students, fps=args.fps, seconds=args.seconds,
        burst_factor=args.burst_factor, burst_start_s=args.burst_start, burst_seconds=args.burst_seconds,
    )
    with running_isolated_stack(args.offset) as stack:
        result = run_load(stack, plan)
    text = report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"written to {args.out}")
    return 0 if result.drained_s is not None and result.counted == result.published else 1
