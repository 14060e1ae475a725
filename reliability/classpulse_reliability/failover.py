"""Redis failover drill: the primary killed (kill -9) while the aggregator writes, and nothing counted lost or twice.

A stack of its own with Redis as production runs it (a primary, two replicas, three sentinels; every client finds
the primary through the sentinels) and the parts that write to Redis: Kafka and the aggregator, which waits for a
replica (Redis WAIT) before it commits a batch's offsets. Frame results are published straight to the predictions
topic (no camera, detector or model needed: what is drilled is the last hop), the same ones twice, each time for a
new class: a clean run, then a run in which the primary is killed mid-stream. The sentinels promote a replica and
point the other at it (until then the aggregator has no primary, or no replica to wait for, so it stalls,
committing nothing); the killed primary is started again, as Kubernetes restarts a pod, and rejoins as a replica.
Both runs must leave exactly the same sums in Redis.

    python -m classpulse_reliability.failover [--frames 600] [--rate 40]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import redis

from classpulse_core.labels import EMOTIONS
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import KafkaSettings
from classpulse_core.timeseries import FRAMES, series_key
from classpulse_devstack.redis_server import REPLICAS, current_primary
from classpulse_reliability.isolated import REDIS_FAILOVER, IsolatedStack, claimed_offset
from classpulse_reliability.scrape import scrape, total
from classpulse_reliability.workload import class_totals
from classpulse_store.registry import ClassRecord, class_key
from classpulse_stream.kafka import make_producer

log = logging.getLogger(__name__)

COMPONENTS = ("kafka", "redis", *REDIS_FAILOVER, "aggregator")
SOURCES = 3
KILL_AT = 0.4
"""The primary dies 40% into publishing: counted frames before it, frames in flight, frames after."""
SETTLE_S = 3.0
PROMOTION_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class FailoverRun:
    class_id: str
    frames: int
    totals: dict[str, float]
    failover_s: float | None
    """From the kill until the sentinels named a new primary."""
    counting_again_s: float | None
    """From the kill until the class's frame count rose again."""
    done_s: float
    replica_waits_retried: float
    """classpulse_dependency_retries_total{stage="aggregator",dependency="redis_replica"} during the run."""


def frame_results(class_id: str, frames: int, origin_ms: int, seed: int = 11) -> list[FrameResult]:
    """The same frames for any class: SOURCES room cameras in turn, 0-4 faces each, seeded probabilities."""
    rng = random.Random(seed)
    results = []
    for index in range(frames):
        faces = rng.randrange(5)
        probabilities = []
        for _ in range(faces):
            weights = [rng.random() for _ in EMOTIONS]
            probabilities.append([weight / sum(weights) for weight in weights])
        source, sequence = f"cam-{index % SOURCES}", index // SOURCES
        at_ms = origin_ms + index * 100
        results.append(
            FrameResult(
                class_id=class_id, source_id=source, frame_id=f"{source}:{sequence}", sequence=sequence,
                captured_at_ms=at_ms, completed_at_ms=at_ms + 50, boxes=[[20 * face, 0, 16, 16] for face in range(faces)],
                probabilities=probabilities,
            )
        )
    return results


def primary_component(stack: IsolatedStack) -> str:
    port = current_primary(stack.config)[1]
    return next(name for name in ("redis", *REPLICAS) if stack.component(name).port == port)


def run(stack: IsolatedStack, frames: int, rate: float, kill_primary: bool, timeout_s: float = 300.0) -> FailoverRun:
    class_id = f"failover-{uuid.uuid4().hex[:10]}"
    client = stack.redis()
    client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id, expected_students=SOURCES).to_hash())
    # Frames from a whole second ago on, so their per-second sums line up the same way in every run.
    origin_ms = (int(time.time()) - 1) * 1000
    results = frame_results(class_id, frames, origin_ms)
    aggregator = stack.url("aggregator")
    retried_before = _replica_retries(aggregator)
    publisher = threading.Thread(target=_publish, args=(stack.kafka_bootstrap, results, rate), name="publisher")
    started = time.monotonic()
    publisher.start()
    failover_s = counting_again_s = None
    if kill_primary:
        time.sleep(frames / rate * KILL_AT)
        killed = primary_component(stack)
        count_at_kill = _counted(client, class_id)
        stack.kill(killed)
        killed_at = time.monotonic()
        failover_s = _wait_for_new_primary(stack, killed) - killed_at
        # As Kubernetes restarts a pod: the sentinels turn it into a replica of the new primary.
        stack.start(killed)
        counting_again_s = _wait_until(lambda: _counted(client, class_id) > count_at_kill, killed_at + timeout_s) - killed_at
    publisher.join(timeout=timeout_s)
    deadline = started + timeout_s
    _wait_until(lambda: _counted(client, class_id) >= frames, deadline)
    time.sleep(SETTLE_S)
    done_s = time.monotonic() - started - SETTLE_S
    totals = class_totals(client, class_id)
    client.close()
    return FailoverRun(
        class_id, frames, totals, failover_s, counting_again_s, done_s,
        _replica_retries(aggregator) - retried_before,
    )


def _publish(bootstrap: str, results: list[FrameResult], rate: float) -> None:
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    producer = make_producer(settings, "failover-drill")
    try:
        started = time.monotonic()
        for index, result in enumerate(results):
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
            producer.send(settings.predictions_topic, key=result.key, value=result.encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _counted(client: redis.Redis, class_id: str) -> float:
    try:
        key = series_key(class_id, FRAMES)
        return sum(value for _, value in client.ts().range(key, "-", "+")) if client.exists(key) else 0.0
    except redis.RedisError:  # the primary is what this drill kills: no answer this turn
        return -1.0


def _wait_for_new_primary(stack: IsolatedStack, killed: str) -> float:
    killed_port = stack.component(killed).port
    return _wait_until(
        lambda: (primary := current_primary(stack.config)) is not None and primary[1] != killed_port,
        time.monotonic() + PROMOTION_TIMEOUT_S,
    )


def _wait_until(condition, deadline: float) -> float:
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the drill's condition did not come true in time")
        time.sleep(0.1)
    return time.monotonic()


def _replica_retries(aggregator_url: str) -> float:
    return total(
        scrape(aggregator_url), "classpulse_dependency_retries_total", stage="aggregator", dependency="redis_replica"
    )


@contextlib.contextmanager
def failover_stack(offset: int | None = None) -> Iterator[IsolatedStack]:
    """Kafka, Redis with two replicas and three sentinels, and the aggregator (waiting for one replica), on a free port
    offset of their own; stopped after the block whatever happened."""
    with claimed_offset(offset) as claimed:
        stack = IsolatedStack(claimed, redis_sentinel=True)
        try:
            stack.up(only=COMPONENTS)
            yield stack
        finally:
            stack.down()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m classpulse_reliability.failover", description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rate", type=float, default=40.0, help="frames published per second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    with failover_stack() as stack:
        clean = run(stack, args.frames, args.rate, kill_primary=False)
        failover = run(stack, args.frames, args.rate, kill_primary=True)
    print(json.dumps({"clean": asdict(clean), "primary killed": asdict(failover)}, indent=2))
    print("totals identical:", clean.totals == failover.totals)


if __name__ == "__main__":
    main()
