"""The aggregator's writes and a replica: a batch returns only once a replica holds it (Redis WAIT), so its Kafka
offsets are committed only then; with the replica away the batch is retried (a dependency outage), never committed.
And the clients made from CLASSPULSE_REDIS_SENTINELS reach the primary the sentinels name."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from classpulse_aggregator.stage import AggregateResults
from classpulse_aggregator.writer import ReplicasBehind, SeriesWriter, Written
from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import RedisSettings, StorageSettings
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.redis_server import sentinel_addresses
from classpulse_devstack.stack import Stack
from classpulse_store.redis_clients import redis_client as make_redis_client
from classpulse_store.registry import ClassRecord, class_key
from classpulse_stream.stage import Delivery

pytestmark = pytest.mark.integration

FAILOVER = "redis-replica,redis-sentinel-1,redis-sentinel-2,redis-sentinel-3"


@pytest.fixture(scope="module")
def replicated(infra: Stack) -> Iterator[Stack]:
    """A replica of the session's Redis and three sentinels watching it, for this module."""
    stack = Stack(DevstackConfig.from_env({**os.environ, "CLASSPULSE_DEVSTACK_REDIS_SENTINEL": "1"}))
    components = stack.select(FAILOVER)
    stack.up(components)
    yield stack
    stack.down(components)


def _frame(class_id: str, sequence: int) -> FrameResult:
    at_ms = int(time.time() * 1000) - 2000
    return FrameResult(
        class_id=class_id, source_id="cam", frame_id=f"cam:{sequence}", sequence=sequence, captured_at_ms=at_ms,
        completed_at_ms=at_ms, boxes=[[0, 0, 10, 10]], probabilities=[[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]],
    )


def _writer(client, replicas: int) -> SeriesWriter:
    return SeriesWriter(client, StorageSettings().resolutions(), dedup_window_s=600, replicas=replicas, replica_timeout_ms=300)


def test_a_batch_returns_once_a_replica_holds_it_and_is_retried_while_none_does(replicated, redis_client, class_id):
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id).to_hash())
    writer = _writer(redis_client, replicas=1)
    assert [write.outcome for write in writer.write([_frame(class_id, 0)])] == [Written.NEW]

    replica = replicated.process(replicated.select("redis-replica")[0])
    os.kill(replica.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ReplicasBehind, match="0 of 1 replicas"):
            writer.write([_frame(class_id, 1)])
        handler = AggregateResults(writer, alerts=None, max_capture_ahead_ms=60_000)
        with pytest.raises(DependencyUnavailable) as raised:
            handler([Delivery("classpulse.predictions", 0, 0, None, b"", _frame(class_id, 2))])
        assert raised.value.dependency == "redis_replica"
        # Without WAIT the same write returns at once: what a commit would then have trusted.
        assert [write.outcome for write in _writer(redis_client, replicas=0).write([_frame(class_id, 3)])] == [Written.NEW]
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    # The retried batch is written again; what had landed is recognised, nothing counts twice.
    assert [write.outcome for write in writer.write([_frame(class_id, 1), _frame(class_id, 2)])] == [Written.DUPLICATE] * 2


def test_a_client_from_the_sentinel_settings_reaches_the_primary_they_name(replicated, redis_client, class_id):
    settings = RedisSettings(
        redis_url="redis://ignored.invalid:1/0", redis_sentinels=sentinel_addresses(replicated.config)
    )
    client = make_redis_client(settings)
    client.set(class_key(class_id), "through the sentinels")
    assert redis_client.get(class_key(class_id)) == b"through the sentinels"
    assert client.connection_pool.get_master_address() == ("127.0.0.1", replicated.config.redis_port)
    client.close()
