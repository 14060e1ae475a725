"""Fault drills: the same workload through a clean run and through runs with one real fault each, on an isolated
stack, and what each run left in Kafka and Redis.

Every run is a fresh class, or several (registered through the API with the stack's admin key), each fed by a replay
publisher of its own; a `DrillProfile` says how many, and how long and fast they publish: one class for a quick run,
or the full load of 8 classes x 6 students x 2 frames/s for two minutes. A fault is injected at a random moment while frames are being published (seeded: the report names the seed), the
broken part is brought back, and the run ends when Redis counts every frame and has stopped changing. Faults:

- kill -9 of a service (detector, classifier, aggregator, api, the ingest HTTP service), then a restart;
- kill -9 of the ingest publisher mid-publish, then a restart from its checkpoint with the same source id and
  frame numbers: frames after the checkpoint are sent twice, and dedup must make the result identical;
- the Kafka broker stopped (SIGTERM) and started again; Redis stopped (AOF on) and started again, or refusing
  every write for a while (out of memory);
- the model server killed (kill -9) and restarted, or frozen (SIGSTOP) past the classifier's deadline, then resumed;
- a second detector and classifier joining the consumer groups mid-stream, the first ones leaving and coming back,
  the second ones leaving again (a rolling replacement: four rebalances per group).
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from classpulse_core.timeseries import FACES, FRAMES, series_key
from classpulse_reliability.isolated import COMPONENTS, IsolatedStack
from classpulse_reliability.scrape import messages_in
from classpulse_reliability.workload import (
    Workload,
    class_totals,
    end_offsets,
    predictions_of,
    read_topic,
    register_class,
    sample_class_workload,
)

log = logging.getLogger(__name__)

DETERMINISTIC_DETECTOR = {
    "CLASSPULSE_FULL_SCAN_INTERVAL_MS": "0",
    "CLASSPULSE_DEEP_SCAN_INTERVAL_MS": "0",
    "CLASSPULSE_FACE_DETECTOR": "haar",
}
"""Environment of a stack that runs drills. Each fault's run is compared with the clean run exactly, which needs a
detector whose boxes depend on the frame alone. Between full scans the detector tracks faces, so a frame's boxes
depend on which replica saw the source's earlier frames (a rebalance or a restart moves a source to one that starts
with a full scan): the same faces, cut a few pixels apart, emotion sums ~1% off. Drills check delivery (nothing
lost, nothing twice) and so scan every frame, each scan down to the smallest faces (between deep scans a full scan
looks only for faces near the smallest the source has shown, which is history too); tracking's own behaviour on new and replayed sources is checked by
tests/unit/test_detector_tracking.py. Rooms run Haar here: a deep scan of every frame costs BlazeFace ~220 ms of a
640x480 frame against Haar's 12-26, which would make the drills and the load test measure that scan rather than
delivery; which face finder runs does not change what they check."""

PREDICTIONS_TOPIC = "classpulse.predictions"
FAULT_WINDOW = (0.2, 0.7)
"""A fault lands between 20% and 70% of the publishing time: mid-stream, with frames before and after it."""
SETTLE_S = 3.0
"""After the last frame is counted, totals must stay unchanged this long (a late double count would show)."""
POLL_S = 0.25
FREEZE_S = 12.0
"""Longer than the classifier's 5 s Predict deadline, so its batches fail and are retried with backoff."""
REPLICA_STAY_S = 6.0
"""How long the extra replicas stay in their groups: time to be assigned partitions and process."""
REFUSAL_S = 8.0
"""How long Redis refuses writes: the aggregator's retries back off to 4 s and more meanwhile."""
REPLICATED = ("detector", "classifier")
"""The stages scaled out in the rebalance drill (the aggregator's writes are per frame, so it scales the same way)."""


class Publisher:
    """The replay publisher of one run, as a child process that a drill may kill and resume."""

    def __init__(self, stack: IsolatedStack, workload_path: Path, class_id: str, rate: float) -> None:
        self.stack = stack
        self.workload_path = workload_path
        self.class_id = class_id
        self.rate = rate
        self.source_id = f"replay-{uuid.uuid4().hex[:8]}"
        self.origin_ms = int(time.time() * 1000)
        self.checkpoint = stack.config.run_dir / "replay" / f"{class_id}.checkpoint"
        self.log_path = stack.config.logs_dir / f"replay-{class_id}.log"
        self.process: subprocess.Popen | None = None

    def start(self, resume: bool = False) -> None:
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "classpulse_reliability.replay",
            "--workload", str(self.workload_path), "--class", self.class_id, "--source-id", self.source_id,
            "--origin-ms", str(self.origin_ms), "--rate", str(self.rate), "--checkpoint", str(self.checkpoint),
        ]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command + (["--resume"] if resume else []), env=self.stack.client_env(),
                stdout=log_file, stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.process is None:
            raise RuntimeError("the replay publisher was never started")
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout_s: float) -> None:
        if self.process is None:
            raise RuntimeError("the replay publisher was never started")
        if self.process.wait(timeout=timeout_s) != 0:
            raise RuntimeError(f"replay publisher exited {self.process.returncode}; see {self.log_path}")

    def resumed_from(self) -> int:
        return int(self.checkpoint.read_text()) if self.checkpoint.exists() else 0


class FrameCounter:
    """Polls the classes' frame count in Redis on a thread: when each frame was counted, for recovery times."""

    def __init__(self, stack: IsolatedStack, class_ids: list[str]) -> None:
        self._client = stack.redis()
        self._keys = [series_key(class_id, FRAMES) for class_id in class_ids]
        self.timeline: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="frame-counter", daemon=True)

    def __enter__(self) -> FrameCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                counted = sum(self._count(key) for key in self._keys)
            except Exception:  # noqa: BLE001, S112 - Redis may be the thing a drill restarts: no sample this turn
                continue
            self.timeline.append((time.monotonic(), counted))

    def _count(self, key: str) -> float:
        samples = self._client.ts().range(key, "-", "+") if self._client.exists(key) else []
        return sum(value for _, value in samples)

    def latest(self) -> float:
        return self.timeline[-1][1] if self.timeline else 0.0

    def first_increase_after(self, moment: float) -> float | None:
        """When the count first rose above its value at `moment` (None if it never did)."""
        before = max((count for at, count in self.timeline if at <= moment), default=0.0)
        return next((at for at, count in self.timeline if at > moment and count > before), None)


@dataclass
class DrillRun:
    """What a fault does to the run: it fills in when it struck and when the broken part was back."""

    stack: IsolatedStack
    publishers: list[Publisher]
    rng: random.Random
    started_at: float
    publish_s: float
    window: tuple[float, float] = FAULT_WINDOW
    injected_at: float | None = None
    restored_at: float | None = None
    notes: list[str] = field(default_factory=list)

    def wait_for_fault_moment(self) -> None:
        at = self.started_at + self.rng.uniform(*self.window) * self.publish_s
        time.sleep(max(0.0, at - time.monotonic()))
        self.injected_at = time.monotonic()

    def restored(self) -> None:
        self.restored_at = time.monotonic()


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[DrillRun], None]
    window: tuple[float, float] = FAULT_WINDOW
    """Where in the publishing time the fault may strike, as fractions."""
    rate_factor: float = 1.0
    """Publishing rate relative to the drills' rate: a fault that lasts long needs frames flowing all along."""


def _kill_and_restart(component: str) -> Callable[[DrillRun], None]:
    def inject(run: DrillRun) -> None:
        run.wait_for_fault_moment()
        run.stack.kill(component)
        run.stack.start(component)
        run.restored()

    return inject


def _stop_and_start(component: str) -> Callable[[DrillRun], None]:
    def inject(run: DrillRun) -> None:
        run.wait_for_fault_moment()
        run.stack.stop(component)
        run.stack.start(component)
        run.restored()

    return inject


def _kill_publisher_and_resume(run: DrillRun) -> None:
    """Every class's publisher killed at once (as the one process publishing them all would be), then resumed."""
    run.wait_for_fault_moment()
    for publisher in run.publishers:
        publisher.kill()
    resumed = [publisher.resumed_from() for publisher in run.publishers]
    for publisher in run.publishers:
        publisher.start(resume=True)
    run.restored()
    frames = f"frame {resumed[0]}" if len(resumed) == 1 else f"frames {min(resumed)}-{max(resumed)}"
    run.notes.append(f"killed {'publisher' if len(resumed) == 1 else 'publishers'} resumed from {frames}")


def _freeze_model_server(run: DrillRun) -> None:
    """SIGSTOP: the model server holds its connections but answers nothing, so every Predict hits its deadline."""
    run.wait_for_fault_moment()
    run.stack.kill("model-server", signal.SIGSTOP)
    time.sleep(FREEZE_S)
    run.stack.kill("model-server", signal.SIGCONT)
    run.restored()


def _redis_refuses_writes(run: DrillRun) -> None:
    """maxmemory below what Redis holds: every write fails with OOM (as with a full disk, MISCONF) while reads work."""
    run.wait_for_fault_moment()
    client = run.stack.redis()
    try:
        client.config_set("maxmemory", "1")
        time.sleep(REFUSAL_S)
    finally:
        client.config_set("maxmemory", "0")
        client.close()
    run.restored()


def _replicas_join_and_take_over(run: DrillRun) -> None:
    """A rolling replacement of the detector and the classifier: a second replica of each joins its consumer group,
    the first leaves (so the newcomer must take over every partition), comes back, and the newcomer leaves: four
    rebalances per group while frames flow."""
    run.wait_for_fault_moment()
    replicas = [run.stack.add_replica(service) for service in REPLICATED]
    time.sleep(REPLICA_STAY_S / 2)
    for service in REPLICATED:
        run.stack.stop(service)
    time.sleep(REPLICA_STAY_S / 2)
    for service, replica in zip(REPLICATED, replicas, strict=True):
        run.stack.start(service)
        consumed = messages_in(run.stack.url(replica))
        run.stack.stop(replica)
        run.notes.append(f"{replica} consumed {consumed:.0f} messages while in the group")
    run.restored()


FAULTS: tuple[Fault, ...] = (
    Fault("kill -9 ingest publisher, resume", _kill_publisher_and_resume),
    Fault("kill -9 ingest (HTTP service)", _kill_and_restart("ingest")),
    Fault("kill -9 detector", _kill_and_restart("detector")),
    Fault("kill -9 classifier", _kill_and_restart("classifier")),
    Fault("kill -9 aggregator", _kill_and_restart("aggregator")),
    Fault("kill -9 api", _kill_and_restart("api")),
    Fault("Kafka broker stopped, restarted", _stop_and_start("kafka")),
    Fault("Redis stopped (AOF), restarted", _stop_and_start("redis")),
    Fault(f"Redis refuses writes (OOM) {REFUSAL_S:.0f} s", _redis_refuses_writes),
    Fault("kill -9 model server, restart", _kill_and_restart("model-server")),
    Fault(f"model server frozen {FREEZE_S:.0f} s (SIGSTOP)", _freeze_model_server),
    # Early and at a slower rate, so that frames flow while the replicas join, work and leave.
    Fault(
        "2nd detector + classifier join, 1st leave and return, 2nd leave",
        _replicas_join_and_take_over,
        window=(0.1, 0.3),
        rate_factor=0.4,
    ),
)


@dataclass(frozen=True)
class DrillProfile:
    """How much a drill publishes: `classes` classes, each the sample class video of `students` students, `seconds`
    long at `fps`, published at `rate` frames/s."""

    name: str
    classes: int
    students: int
    seconds: float
    fps: float
    rate: float
    timeout_s: float

    def workload(self) -> Path:
        return sample_class_workload(seconds=self.seconds, fps=self.fps, students=self.students)

    @property
    def frames(self) -> int:
        return self.classes * round(self.seconds * self.fps)


ONE_CLASS = DrillProfile("one-class", classes=1, students=6, seconds=12, fps=4, rate=6.0, timeout_s=300)
"""48 frames of six students, about 200 faces: long enough to strike mid-stream, short enough for a dozen runs."""
FULL_LOAD = DrillProfile("full-load", classes=8, students=6, seconds=120, fps=2, rate=2.0, timeout_s=1200)
"""8 classes x 6 students x 2 frames/s for two minutes (1,920 frames), as a school's live classes would send them."""
PROFILES = {profile.name: profile for profile in (ONE_CLASS, FULL_LOAD)}


@dataclass(frozen=True)
class DrillResult:
    fault: str
    class_ids: tuple[str, ...]
    frames_in: int
    prediction_messages: int
    frames_classified: int
    faces_classified: int
    totals: dict[str, float]
    restart_s: float | None
    recover_s: float | None
    done_s: float
    unexpected_exits: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def redis_frames(self) -> int:
        return round(self.totals[FRAMES])

    @property
    def redis_faces(self) -> int:
        return round(self.totals[FACES])


def run_drill(
    stack: IsolatedStack, profile: DrillProfile, fault: Fault | None, rng: random.Random, workload_path: Path | None = None
) -> DrillResult:
    """One run of the profile's workload in each of its classes, with `fault` (None: the clean run); returns what
    it left in Kafka and Redis, summed over the classes."""
    workload_path = workload_path or profile.workload()
    workload = Workload.load(workload_path)
    name = fault.name if fault else "clean run"
    class_ids = [f"drill-{uuid.uuid4().hex[:10]}" for _ in range(profile.classes)]
    for class_id in class_ids:
        register_class(stack.url("api"), stack.admin_key(), class_id, workload.students)
    predictions_before = end_offsets(stack.kafka_bootstrap, PREDICTIONS_TOPIC)
    rate = profile.rate * (fault.rate_factor if fault else 1.0)
    publishers = [Publisher(stack, workload_path, class_id, rate) for class_id in class_ids]
    expected = len(workload.jpegs) * len(class_ids)
    log.info("drill %r: %d classes, %d frames at %g/s each", name, len(class_ids), expected, rate)
    with FrameCounter(stack, class_ids) as counter:
        started_at = time.monotonic()
        for publisher in publishers:
            publisher.start()
        publish_s = len(workload.jpegs) / rate
        run = DrillRun(stack, publishers, rng, started_at, publish_s, fault.window if fault else FAULT_WINDOW)
        if fault:
            fault.inject(run)
        deadline = started_at + profile.timeout_s
        for publisher in publishers:
            publisher.wait(timeout_s=max(1.0, deadline - time.monotonic()))
        _wait_until_counted(counter, expected, deadline, name)
    client = stack.redis()
    per_class = [class_totals(client, class_id) for class_id in class_ids]
    client.close()
    totals = {metric: sum(class_total[metric] for class_total in per_class) for metric in per_class[0]}
    seen = predictions_of(read_topic(stack.kafka_bootstrap, PREDICTIONS_TOPIC, predictions_before), set(class_ids))
    recovered_at = None
    if run.restored_at is not None:
        recovered_at = counter.first_increase_after(run.restored_at) or run.restored_at
    return DrillResult(
        fault=name,
        class_ids=tuple(class_ids),
        frames_in=expected,
        prediction_messages=seen.messages,
        frames_classified=seen.frames,
        faces_classified=seen.faces,
        totals=totals,
        restart_s=_since(run.injected_at, run.restored_at),
        recover_s=_since(run.injected_at, recovered_at),
        done_s=_done_at(counter, expected) - started_at,
        unexpected_exits=_restart_exited(stack),
        notes=tuple(run.notes),
    )


def _since(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def _wait_until_counted(counter: FrameCounter, expected: int, deadline: float, name: str) -> None:
    """Until Redis counts every frame and the count has not moved for SETTLE_S."""
    while counter.latest() < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: {counter.latest():.0f} of {expected} frames counted before the deadline")
        time.sleep(POLL_S)
    time.sleep(SETTLE_S)


def _done_at(counter: FrameCounter, expected: int) -> float:
    return next(at for at, count in counter.timeline if count >= expected)


def _restart_exited(stack: IsolatedStack) -> tuple[str, ...]:
    """Components that died on their own during the run (a crash the drill did not cause), restarted for the next."""
    exited = tuple(name for name in COMPONENTS if stack.stack.process(stack.component(name)) is None)
    for name in exited:
        log.error("%s exited during the drill; see %s", name, stack.log_path(name))
        stack.start(name)
    return exited
