"""Per-class quotas, per-credential upload rates, the number of sources a key posts under and the uploads it has in
progress: kept in Redis, so every ingest replica shares them.

A bucket holds up to `burst` tokens and refills at `rate` tokens a second; a frame takes one. One Lua script reads,
refills and takes atomically on Redis's own clock (replicas' clocks never disagree about it), and the bucket expires
once it would be full again, so idle classes cost nothing. A key's sources are the source ids it posted under
within the last hour (a sorted set by last use); a new one past the bound waits until the oldest is an hour old. A
key's uploads in progress are a sorted set of upload ids by the time each must be over, so that one whose process died
stops counting then. If Redis cannot be reached the frame is let through
(counted): a quota exists to share capacity fairly, not to stop a class being watched while Redis restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from prometheus_client import Counter
from redis.commands.core import Script
from redis.typing import EncodableT

from classpulse_ingest.settings import IngestSettings
from classpulse_store.classkeys import quota_key

log = logging.getLogger(__name__)

QUOTA_UNCHECKED = Counter(
    "classpulse_ingest_quota_unchecked_total", "Frames let through because Redis could not check the quota"
)

_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local allowed, wait_ms = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait_ms}
"""


_TAKE_SOURCE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local window, most = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < most then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""

SOURCE_WINDOW_MS = 3_600_000

_HOLD = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local most, hold_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= most then
  return {0, 0}
end
redis.call('ZADD', KEYS[1], now + hold_ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], hold_ms)
return {1, 0}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0


class TokenBuckets:
    def __init__(self, client: redis.Redis) -> None:
        self._take = client.register_script(_TAKE)
        self._take_source = client.register_script(_TAKE_SOURCE)
        self._hold = client.register_script(_HOLD)
        self._client = client

    def take(self, key: str, rate: float, burst: int) -> Decision:
        return self._decide(self._take, key, [rate, burst])

    def take_source(self, key: str, source_id: str, most: int) -> Decision:
        """Whether `source_id` is one of the at most `most` sources posted under `key` within the last hour."""
        return self._decide(self._take_source, key, [source_id, SOURCE_WINDOW_MS, most])

    def hold(self, key: str, holder: str, most: int, hold_ms: int) -> Decision:
        """Whether `holder` is one of at most `most` holders of `key` at once; it holds until `release`, or for
        `hold_ms` at most."""
        return self._decide(self._hold, key, [holder, most, hold_ms])

    def release(self, key: str, holder: str) -> None:
        try:
            self._client.zrem(key, holder)
        except redis.RedisError as exc:
            log.warning("hold not released: redis unavailable", extra={"bucket": key, "error": repr(exc)})

    @staticmethod
    def _decide(script: Script, key: str, args: list[EncodableT]) -> Decision:
        try:
            allowed, wait_ms = script(keys=[key], args=args)
        except redis.RedisError as exc:
            QUOTA_UNCHECKED.inc()
            log.warning("quota not checked: redis unavailable", extra={"bucket": key, "error": repr(exc)})
            return Decision(True)
        return Decision(bool(allowed), int(wait_ms) / 1000)


class Quotas:
    """The limits a frame must get through: its class's quota, and for posted frames its credential's rate and
    number of sources."""

    def __init__(self, settings: IngestSettings, buckets: TokenBuckets) -> None:
        self.settings = settings
        self.buckets = buckets

    def take_class(self, class_id: str) -> Decision:
        return self.buckets.take(quota_key(class_id), self.settings.class_quota_fps(class_id), self.settings.class_burst)

    def take_credential(self, key_id: str, student: bool) -> Decision:
        """One frame of a key's own rate: a student token's (one student), or a service or admin key's (all its
        sources together), whatever source ids it sends."""
        settings = self.settings
        rate, burst = (
            (settings.upload_source_max_fps, settings.upload_source_burst)
            if student
            else (settings.upload_key_max_fps, settings.upload_key_burst)
        )
        return self.buckets.take(f"ingest:quota:key:{key_id}", rate, burst)

    def take_source(self, key_id: str, source_id: str) -> Decision:
        return self.buckets.take_source(f"ingest:sources:key:{key_id}", source_id, self.settings.upload_key_max_sources)

    def uploads_at_once(self, student: bool) -> int:
        """How many uploads a key may have in progress at once: a student token's, or a service or admin key's."""
        settings = self.settings
        return settings.upload_student_max_concurrent if student else settings.upload_key_max_concurrent

    def hold_upload(self, key_id: str, student: bool, upload_id: str, hold_ms: int) -> Decision:
        """One of the key's uploads in progress (`release_upload` once it is over; it stops counting after `hold_ms`)."""
        return self.buckets.hold(_uploads_key(key_id), upload_id, self.uploads_at_once(student), hold_ms)

    def release_upload(self, key_id: str, upload_id: str) -> None:
        self.buckets.release(_uploads_key(key_id), upload_id)


def _uploads_key(key_id: str) -> str:
    return f"ingest:uploads:key:{key_id}"
