"""The pipeline measured on a stack of its own (classpulse_reliability's isolated stack: every port moved by an
offset, nothing shared with `make up` or with tests running meanwhile).

Two kinds of measurement:
- drains: with the stages after it stopped, one stage is started on a backlog and its rate is read from its
  /metrics while it works through it; the CPU seconds of every process of the stack are read from /proc over the
  same interval, so each stage's cost per frame or face is its own, with nothing downstream competing;
- loads: everything runs, a publisher sends N classes x F frames/s of the sample class video for a while, and
  throughput, CPU per frame and latency since capture (each stage's classpulse_latency_seconds; the aggregator's is
  capture -> written to Redis) are read over the steady part of the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from classpulse_bench import procstat
from classpulse_bench.accuracy import FaceGuess, Score, top_emotion
from classpulse_bench.prom import Scrape, percentiles
from classpulse_bench.publisher import video_frame
from classpulse_core.schemas import FrameResult
from classpulse_devstack.components import MODEL_SERVER_MONITORING_PORT
from classpulse_reliability.isolated import IsolatedStack
from classpulse_reliability.workload import Workload, end_offsets, read_topic, register_class

log = logging.getLogger(__name__)

INPUT_TOPICS = {
    "detector": "classpulse.frames", "classifier": "classpulse.faces", "aggregator": "classpulse.predictions",
}
STAGES = tuple(INPUT_TOPICS)
POLL_S = 0.5
"""Each poll scrapes every stage: half a second keeps the harness's own CPU (it shares the cores) small."""
MESSAGES_IN = "classpulse_messages_in_total"
FACES = "classpulse_faces_total"
LATENCY = "classpulse_latency_seconds"
BATCH_SECONDS = "classpulse_batch_processing_seconds"
MODEL_SERVER_LATENCY = "tfserving_standin_request_latency_seconds"
HARNESS = "bench harness"
"""This process: its scrapes share the cores with the stack, so its CPU is counted, apart."""


@dataclass(frozen=True)
class Sample:
    """Counters and CPU seconds at one moment of a measurement."""

    at: float
    scrape: Scrape
    cpu: procstat.CpuSnapshot


@dataclass
class Pipeline:
    stack: IsolatedStack
    workload_path: Path
    workload: Workload
    labels: dict
    """The workload video's labels.json."""
    instances: dict[str, list[str]] = field(default_factory=lambda: {stage: [stage] for stage in STAGES})

    # --- processes and their metrics --------------------------------------------------------------------------

    def pids(self, extra: dict[str, int] | None = None) -> dict[str, int]:
        """Every process of the stack that runs now (replicas included), by name, plus `extra` (the publisher)."""
        replicas = [name for names in self.instances.values() for name in names]
        names = ["kafka", "redis", "model-server", "ingest", "api", *replicas]
        pids = {}
        for name in names:
            try:
                pids[name] = self.stack.pid(name)
            except RuntimeError:
                continue  # stopped for a drain
        return {**pids, HARNESS: os.getpid(), **(extra or {})}

    def scrape(self, stage: str) -> Scrape:
        """The stage's metrics, summed over its running instances (a stopped one counts nothing)."""
        total = Scrape.empty()
        for name in self.instances[stage]:
            try:
                total = total + Scrape.fetch(self.stack.url(name))
            except Exception:  # noqa: BLE001, S112 - not running (drains stop stages), or not serving yet
                continue
        return total

    def model_server_scrape(self) -> Scrape:
        port = MODEL_SERVER_MONITORING_PORT + self.stack.config.port_offset
        return Scrape.fetch(f"http://127.0.0.1:{port}")

    def scrape_all(self) -> Scrape:
        """Every stage's metrics in one scrape (their samples are labelled by stage, so they do not collide)."""
        total = self.model_server_scrape()
        for stage in STAGES:
            total = total + self.scrape(stage)
        return total

    def sample(self, extra_pids: dict[str, int] | None = None) -> Sample:
        return Sample(time.monotonic(), self.scrape_all(), procstat.CpuSnapshot.take(self.pids(extra_pids)))

    def peak_rss_mb(self, name: str) -> float:
        return round(procstat.peak_rss_bytes(self.stack.pid(name)) / 2**20, 1)

    def peak_rss_mb_all(self) -> dict[str, float]:
        """Peak memory of every process of the stack that runs now."""
        return {
            name: round(procstat.peak_rss_bytes(pid) / 2**20, 1)
            for name, pid in self.pids().items()
            if name != HARNESS
        }

    # --- scaling ----------------------------------------------------------------------------------------------

    def set_replicas(self, stage: str, count: int) -> None:
        """Run `count` instances of the stage (extra ones are members of its consumer group on other ports)."""
        while len(self.instances[stage]) < count:
            self.instances[stage].append(self.stack.add_replica(stage, len(self.instances[stage])))
        while len(self.instances[stage]) > count:
            self.stack.stop(self.instances[stage].pop())

    def stop_stage(self, stage: str) -> None:
        for name in self.instances[stage]:
            self.stack.stop(name)

    def start_stage(self, stage: str) -> None:
        for name in self.instances[stage]:
            self.stack.start(name)

    @contextlib.contextmanager
    def settings(self, env: dict[str, str], stages: tuple[str, ...]) -> Iterator[None]:
        """The stages restarted with `env` added to their settings for the block, and restarted without after it
        (a stage's settings are its environment, read once at start)."""
        saved = {name: os.environ.get(name) for name in env}
        try:
            os.environ.update(env)
            for stage in stages:
                self.stop_stage(stage)
                self.start_stage(stage)
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            for stage in stages:
                self.stop_stage(stage)
                self.start_stage(stage)

    # --- load ---------------------------------------------------------------------------------------------------

    def new_classes(self, count: int) -> list[str]:
        class_ids = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
        for class_id in class_ids:
            register_class(self.stack.url("api"), self.stack.admin_key(), class_id, self.workload.students)
        return class_ids

    def start_publisher(self, class_ids: list[str], fps: float, frames_per_class: int) -> subprocess.Popen:
        command = [
            sys.executable, "-m", "classpulse_bench.publisher", "--workload", str(self.workload_path),
            "--classes", ",".join(class_ids), "--fps", str(fps), "--frames", str(frames_per_class),
            "--run-id", uuid.uuid4().hex[:8],
        ]
        self.publisher_log.parent.mkdir(parents=True, exist_ok=True)
        with self.publisher_log.open("ab") as log_file:
            return subprocess.Popen(
                command, env=self.stack.client_env(), stdout=subprocess.PIPE, stderr=log_file, text=True
            )

    @property
    def publisher_log(self) -> Path:
        return self.stack.config.logs_dir / "bench-publisher.log"

    def finish_publisher(self, process: subprocess.Popen, timeout_s: float) -> dict:
        stdout, _ = process.communicate(timeout=timeout_s)
        if process.returncode != 0:
            raise RuntimeError(f"publisher exited with {process.returncode}; its log: {self.publisher_log}")
        return json.loads(stdout.strip().splitlines()[-1])

    def wait_for(self, stage: str, counter: str, target: float, timeout_s: float, **labels: str) -> list[Sample]:
        """Samples every POLL_S until the stage's `counter` reaches `target`; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        samples = []
        while True:
            sample = self.sample()
            samples.append(sample)
            if sample.scrape.total(counter, stage=stage, **labels) >= target:
                return samples
            if time.monotonic() > deadline:
                reached = sample.scrape.total(counter, stage=stage, **labels)
                raise TimeoutError(f"{stage}: {counter} at {reached:.0f} of {target:.0f} after {timeout_s:.0f} s")
            time.sleep(POLL_S)

    def accuracy_since(
        self, offsets: dict[int, int], class_ids: list[str], per_frame: list[dict], frames_per_class: int
    ) -> Score:
        """ClassPulse's answers for the classes' frames, read back from the predictions topic, scored against the
        labels of the video frame each showed (publisher.video_frame)."""
        wanted = {class_id.encode() for class_id in class_ids}
        results: dict[str, FrameResult] = {}
        for record in read_topic(self.stack.kafka_bootstrap, INPUT_TOPICS["aggregator"], offsets):
            if record.key in wanted:
                result = FrameResult.decode(record.value)
                results[result.frame_id] = result  # a redelivered frame counts once
        score = Score()
        for result in results.values():
            guesses = [
                FaceGuess(box, top_emotion(probabilities) if probabilities else None)
                for box, probabilities in zip(
                    result.boxes, result.probabilities or [None] * len(result.boxes), strict=True
                )
            ]
            shown = video_frame(
                result.sequence, class_ids.index(result.class_id), len(class_ids), min(len(per_frame), frames_per_class)
            )
            score.add_frame(per_frame[shown]["faces"], guesses)
        return score

    def predictions_offsets(self) -> dict[int, int]:
        return end_offsets(self.stack.kafka_bootstrap, INPUT_TOPICS["aggregator"])


def rate_between(first: Sample, last: Sample, counter: str, **labels: str) -> float:
    seconds = last.at - first.at
    if seconds <= 0:
        return 0.0
    return (last.scrape.total(counter, **labels) - first.scrape.total(counter, **labels)) / seconds


def cpu_ms_per(first: Sample, last: Sample, names: list[str], units: float) -> float | None:
    """CPU milliseconds the named processes spent per unit of work between the two samples."""
    used = last.cpu.since(first.cpu).per_process
    if units <= 0:
        return None
    return round(sum(used.get(name, 0.0) for name in names) / units * 1000, 2)


def window_percentiles(first: Sample, last: Sample, histogram: str, **labels: str) -> dict[str, float | None]:
    return percentiles((last.scrape - first.scrape).buckets(histogram, **labels))
