"""A stage's attempt counts kept in Redis (`AttemptLedger`): they outlive the process, so a message that crashes
the stage every time it is processed ends in the dead-letter topic after `max_message_failures` restarts instead of
a crash loop, and a partition that moves to another replica keeps its messages' counts."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from classpulse_core.dependencies import DependencyUnavailable

ATTEMPTS_TTL_S = 24 * 3600
"""Counters go when their batch is committed; the TTL only clears those of a stage that stopped for good (or that
could not reach Redis at its commit), and is longer than any retention of the input topics."""


class RedisAttempts:
    """One hash per stage, `classpulse:stage-attempts:<stage>`, field per counter. Each field has its own TTL
    (HEXPIRE, Redis 7.4), renewed when it is counted: one TTL for the hash, renewed by every count of any message,
    would keep a counter whose forget() failed for as long as the stage runs."""

    def __init__(self, client: redis.Redis, stage: str, ttl_s: int = ATTEMPTS_TTL_S) -> None:
        self.client = client
        self.key = f"classpulse:stage-attempts:{stage}"
        self.ttl_s = ttl_s

    def add(self, counters: Sequence[str], by: int) -> list[int]:
        if not counters:
            return []  # HEXPIRE, like HDEL, refuses an empty list of fields
        pipeline = self.client.pipeline(transaction=False)
        for counter in counters:
            pipeline.hincrby(self.key, counter, by)
        pipeline.hexpire(self.key, self.ttl_s, *counters)
        try:
            return pipeline.execute()[:-1]
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", repr(exc)) from exc

    def forget(self, counters: Sequence[str]) -> None:
        if not counters:
            return
        try:
            self.client.hdel(self.key, *counters)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", repr(exc)) from exc
