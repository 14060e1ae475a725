"""Aggregator stage: frame results in, per-class time series out (RedisTimeSeries)."""

from __future__ import annotations

import logging
import re
import time

import redis
from prometheus_client import Counter
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from classpulse_aggregator.alerts import AlertEvaluator
from classpulse_aggregator.writer import SeriesWriter, Written
from classpulse_core.capture import capture_time_problem
from classpulse_core.dependencies import REDIS_REFUSES_WRITES, DependencyUnavailable
from classpulse_core.schemas import FrameResult
from classpulse_store.replication import ReplicasBehind
from classpulse_stream import metrics
from classpulse_stream.stage import Delivery, Outcome, Reject

STAGE = "aggregator"
NO_REPLICA_FOLLOWS = re.compile(r"\bNOREPLICAS\b")
"""The primary refusing writes while no replica follows it (min-replicas-to-write): waited out as a batch no replica
acknowledged is (Redis refusing writes otherwise, REDIS_REFUSES_WRITES or memory full, is a Redis outage)."""
EMOTIONS_DROPPED = Counter(
    "classpulse_aggregator_emotions_dropped_total",
    "Frames whose emotions were not written: their class was presence-only when they were counted",
)
log = logging.getLogger(__name__)


class AggregateResults:
    def __init__(self, writer: SeriesWriter, alerts: AlertEvaluator, max_capture_ahead_ms: int) -> None:
        self.writer = writer
        self.alerts = alerts
        self.max_capture_ahead_ms = max_capture_ahead_ms

    def __call__(self, deliveries: list[Delivery[FrameResult]]) -> list[Outcome]:
        now_ms = int(time.time() * 1000)
        outcomes: list[Outcome] = []
        accepted: list[Delivery[FrameResult]] = []
        for delivery in deliveries:
            problem = capture_time_problem(
                delivery.message.captured_at_ms, now_ms, self.writer.raw_retention_ms, self.max_capture_ahead_ms
            )
            if problem:
                metrics.CAPTURE_TIMES_REFUSED.labels(STAGE, problem[0].value).inc()
                outcomes.append(Reject(delivery, f"{problem[0].value}: {problem[1]}"))
            else:
                accepted.append(delivery)
        results = [delivery.message for delivery in accepted]
        latest: dict[str, int] = {}
        partitions: dict[str, int] = {}
        for delivery in accepted:
            result = delivery.message
            latest[result.class_id] = max(latest.get(result.class_id, 0), result.captured_at_ms)
            partitions[result.class_id] = delivery.partition
        try:
            written = self.writer.write(results)
            self.alerts.observe(latest, partitions)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OutOfMemoryError, ReadOnlyError) as exc:
            raise DependencyUnavailable("redis", repr(exc)) from exc
        except ReplicasBehind as exc:
            # Committing now could lose the batch with the primary: retried (counted in
            # classpulse_dependency_retries_total{dependency="redis_replica"}) until a replica holds it.
            raise DependencyUnavailable("redis_replica", str(exc)) from exc
        except redis.ResponseError as exc:
            if NO_REPLICA_FOLLOWS.search(str(exc)):
                raise DependencyUnavailable("redis_replica", repr(exc)) from exc
            if REDIS_REFUSES_WRITES.search(str(exc)):
                raise DependencyUnavailable("redis", repr(exc)) from exc
            raise
        for delivery, write in zip(accepted, written, strict=True):
            if write.outcome is Written.REFUSED:
                outcomes.append(Reject(delivery, write.reason))
            elif write.outcome is Written.DUPLICATE:
                metrics.DUPLICATES_IGNORED.labels(STAGE).inc()
            elif write.reason:
                EMOTIONS_DROPPED.inc()
        done_ms = time.time() * 1000
        for result in results:
            metrics.LATENCY_SECONDS.labels(STAGE).observe(max(0.0, done_ms - result.captured_at_ms) / 1000)
        return outcomes
