"""Writes that count only once a replica holds them (Redis WAIT): what a failover must not lose, or what a primary cut
off from its replicas must not be trusted with (the aggregator's batches before their Kafka offsets are committed,
ingest's source leases).

WAIT counts the replicas that hold this connection's writes so far, so it ends the pipeline that made them, on the same
connection."""

from __future__ import annotations

from typing import Any

import redis
import redis.client


class ReplicasBehind(redis.RedisError):
    """Fewer replicas than required acknowledged the writes within the timeout."""


def execute_replicated(pipeline: redis.client.Pipeline, replicas: int, timeout_ms: int) -> list[Any]:
    """The pipeline's replies once `replicas` replicas hold its writes (0: at once, no WAIT); raises ReplicasBehind
    if fewer did within `timeout_ms` (the writes are made on the primary all the same)."""
    if replicas:
        pipeline.execute_command("WAIT", replicas, timeout_ms)
    replies = pipeline.execute()
    if replicas:
        acknowledged = replies.pop()
        if acknowledged < replicas:
            raise ReplicasBehind(f"{acknowledged} of {replicas} replicas acknowledged the writes within {timeout_ms} ms")
    return replies
