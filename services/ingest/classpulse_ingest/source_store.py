"""Sources kept in Redis, so that they belong to the deployment and not to one ingest process: each source's
definition, state and progress in a hash, and a lease per running source naming the one replica that runs it.

A lease is a key set with NX and a time to live, holding its owner's token: the owner renews it (and writes its
progress in the same script) well before it expires; a replica that stops renewing (killed, frozen, cut off from
Redis) loses it, and any other replica may then claim the source and continue it from the progress last written.
Every write of an owner checks its token first, so a replica that lost a lease changes nothing any more.

With replicas to wait for (`CLASSPULSE_REDIS_WAIT_REPLICAS`, 1 by default with sentinels) a claim or a renewal counts
only once a replica holds it (Redis WAIT, classpulse_store.replication). A primary cut off by a network partition from
its replicas and the sentinels still takes the renewals of the ingest replicas on its side; the replica the sentinels
promote never sees them, lets the lease lapse and another ingest replica claim the source. Trusted without a replica's
word, those renewals would have the source published on both sides until the partition heals.

A source that reads a device of one machine (a webcam index) names that machine (`host`): only a replica of that
machine claims it, whatever replica runs the others.

Keys (one hash tag, so that every script's keys are in one slot of a Redis Cluster too):
  ingest:{sources}:record:<id>  hash: the source's definition, status (JSON), progress, owner, host, stop request
  ingest:{sources}:lease:<id>   the lease: the owner's token, expiring
  ingest:{sources}:all          sorted set of every kept source by creation time (listing)
  ingest:{sources}:unfinished   set of the sources that should be running (what replicas claim)
  ingest:{sources}:finished     sorted set of ended, stopped and failed sources by end time (the oldest forgotten)
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import redis

from classpulse_store.replication import execute_replicated

PREFIX = "ingest:{sources}"
ALL_KEY = f"{PREFIX}:all"
UNFINISHED_KEY = f"{PREFIX}:unfinished"
FINISHED_KEY = f"{PREFIX}:finished"
FINAL_STATE_NAMES = ("ended", "stopped", "failed")


def record_key(source_id: str) -> str:
    return f"{PREFIX}:record:{source_id}"


def lease_key(source_id: str) -> str:
    return f"{PREFIX}:lease:{source_id}"


_IS_FINAL = "local function is_final(state) return state == 'ended' or state == 'stopped' or state == 'failed' end\n"

# KEYS: record, all, unfinished, finished, lease. ARGV: id, created ms, token, ttl ms, owner, the first frame number
# it may use, then the record's fields and values. The creating replica holds the lease at once (no other replica's
# claim comes between). Returns the record (an id used before continues its numbers: frame ids never repeat), or nil
# if the id belongs to a source that has not finished.
_CREATE = _IS_FINAL + """
local state = redis.call('HGET', KEYS[1], 'state')
if state and not is_final(state) then return nil end
local next_sequence = math.max(tonumber(redis.call('HGET', KEYS[1], 'next_sequence') or '0'), tonumber(ARGV[6]))
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'next_sequence', next_sequence, unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SET', KEYS[5], ARGV[3], 'PX', ARGV[4])
local record = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[5])
return record
"""

# KEYS: lease, record, unfinished. ARGV: token, ttl ms, id, owner, the claimer's host. Returns the record as it was
# (its owner field names the replica it is taken over from), or nil if the source is owned, no longer meant to run,
# or another machine's.
_CLAIM = """
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 0 then return nil end
local host = redis.call('HGET', KEYS[2], 'host')
if host and host ~= '' and host ~= ARGV[5] then return nil end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
local record = redis.call('HGETALL', KEYS[2])
redis.call('HSET', KEYS[2], 'owner', ARGV[4])
return record
"""

# KEYS: lease, record. ARGV: token, ttl ms, then fields and values to write. Returns 0 if the lease is not this
# token's any more (nothing written), 2 if someone asked the source to stop, else 1.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
if redis.call('HGET', KEYS[2], 'stop_requested') == '1' then return 2 end
return 1
"""

# KEYS: lease, record. ARGV: token, then fields and values. Hands the source over: the last progress written, the
# lease deleted so that another replica claims it at once. Returns 0 if the lease was not this token's.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'owner', '', unpack(ARGV, 2))
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: lease, record, unfinished, finished. ARGV: token, id, now ms, then fields and values. The source reached a
# final state on its owner. Returns 0 if the lease was not this token's.
_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'owner', '', unpack(ARGV, 4))
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
return 1
"""

# KEYS: record, lease, unfinished, finished. ARGV: id, now ms, status JSON of the stopped source. -1: no such
# source; 0: it is stopped (or had finished); 1: its owner was asked to stop it.
_REQUEST_STOP = _IS_FINAL + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if is_final(redis.call('HGET', KEYS[1], 'state')) then return 0 end
redis.call('HSET', KEYS[1], 'stop_requested', '1')
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
redis.call('HSET', KEYS[1], 'state', 'stopped', 'status', ARGV[3], 'owner', '')
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return 0
"""


@dataclass
class StoredSource:
    """A source as Redis keeps it: what to run (location holds any camera credentials, as the replica that runs it
    must reopen it), where it stands, and who runs it."""

    source_id: str
    location: str
    realtime: bool
    status: dict[str, Any]  # SourceStatus as JSON: the state and counts last written by its owner
    next_sequence: int
    continue_at_ms: float | None
    owner: str
    stop_requested: bool
    leased: bool = False
    host: str = ""  # the machine whose device it reads, the only one where it may run; empty: any replica's

    @classmethod
    def from_hash(cls, fields: dict[str, str], leased: bool = False) -> StoredSource:
        continue_at = fields.get("continue_at_ms", "")
        return cls(
            source_id=fields["source_id"],
            location=fields["location"],
            realtime=fields.get("realtime") == "1",
            status=json.loads(fields["status"]),
            next_sequence=int(fields.get("next_sequence") or 0),
            continue_at_ms=float(continue_at) if continue_at else None,
            owner=fields.get("owner", ""),
            stop_requested=fields.get("stop_requested") == "1",
            leased=leased,
            host=fields.get("host", ""),
        )


def progress_fields(status: dict[str, Any], next_sequence: int, continue_at_ms: float | None) -> list[str]:
    """The record's fields an owner writes as the source goes, flattened as the scripts take them."""
    values = {
        "state": status["state"],
        "status": json.dumps(status),
        "next_sequence": str(next_sequence),
        "continue_at_ms": "" if continue_at_ms is None else repr(continue_at_ms),
    }
    return [item for pair in values.items() for item in pair]


class SourceStore:
    """The sources of the deployment in Redis (a synchronous client made by classpulse_store.redis_clients,
    decoding responses): what every replica reads, and the lease operations of the replicas that run them, held by
    `replicas` Redis replicas before they count (0: at once)."""

    def __init__(self, client: redis.Redis, finished_kept: int, replicas: int = 0, replica_timeout_ms: int = 2000) -> None:
        self.client = client
        self.finished_kept = finished_kept
        self.replicas = replicas
        self.replica_timeout_ms = replica_timeout_ms
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._finish = client.register_script(_FINISH)
        self._request_stop = client.register_script(_REQUEST_STOP)

    @staticmethod
    def new_token(owner: str) -> str:
        return f"{owner}/{uuid.uuid4().hex}"

    # --- what any replica does -------------------------------------------------------------------------------

    def create(
        self,
        source_id: str,
        location: str,
        realtime: bool,
        status: dict[str, Any],
        token: str,
        ttl_ms: int,
        owner: str,
        host: str = "",
        first_sequence: int = 0,
    ) -> StoredSource | None:
        """Record a new source, leased to its creator, to be run only on `host` if given, numbering its frames from
        `first_sequence` at least; None if the id is taken by a source that has not finished."""
        fields = {
            "source_id": source_id,
            "location": location,
            "realtime": "1" if realtime else "0",
            "state": status["state"],
            "status": json.dumps(status),
            "owner": "",
            "host": host,
        }
        flat = [item for pair in fields.items() for item in pair]
        keys = [record_key(source_id), ALL_KEY, UNFINISHED_KEY, FINISHED_KEY, lease_key(source_id)]
        args = [source_id, status["started_at_ms"], token, ttl_ms, owner, first_sequence, *flat]
        return _stored(self._create(keys=keys, args=args))

    def get(self, source_id: str) -> StoredSource | None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(record_key(source_id))
            pipe.exists(lease_key(source_id))
            fields, leased = pipe.execute()
        return StoredSource.from_hash(fields, bool(leased)) if fields else None

    def all(self) -> list[StoredSource]:
        """Every kept source, oldest first, in two round trips whatever their number."""
        source_ids = cast(list[str], self.client.zrange(ALL_KEY, 0, -1))  # the client decodes responses
        with self.client.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.hgetall(record_key(source_id))
                pipe.exists(lease_key(source_id))
            replies = pipe.execute()
        return [
            StoredSource.from_hash(fields, bool(leased))
            for fields, leased in zip(replies[::2], replies[1::2], strict=True)
            if fields  # forgotten between the two reads
        ]

    def request_stop(self, source_id: str, now_ms: int, stopped_status: dict[str, Any]) -> int:
        """-1: no such source; 0: stopped now (nobody ran it) or finished before; 1: its owner will stop it."""
        keys = [record_key(source_id), lease_key(source_id), UNFINISHED_KEY, FINISHED_KEY]
        return int(self._request_stop(keys=keys, args=[source_id, now_ms, json.dumps(stopped_status)]))

    def unowned(self, host: str = "") -> list[str]:
        """The sources that should run, that no replica holds and that a replica of `host` may run (two round
        trips)."""
        source_ids = sorted(cast(set[str], self.client.smembers(UNFINISHED_KEY)))
        with self.client.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.exists(lease_key(source_id))
                pipe.hget(record_key(source_id), "host")
            replies = pipe.execute()
        return [
            source_id
            for source_id, held, pinned in zip(source_ids, replies[::2], replies[1::2], strict=True)
            if not held and pinned in (None, "", host)
        ]

    # --- what the owner of a source does ---------------------------------------------------------------------

    def claim(self, source_id: str, token: str, ttl_ms: int, owner: str, host: str = "") -> StoredSource | None:
        """Take the lease of an unowned source for a replica of `host`: the source as it was (its owner: the replica
        it was taken over from, empty if none), or None if another replica holds it, it should not run, or it runs
        only on another machine. Raises ReplicasBehind if the replicas did not acknowledge it."""
        keys = [lease_key(source_id), record_key(source_id), UNFINISHED_KEY]
        with self.client.pipeline(transaction=False) as pipe:
            self._claim(keys=keys, args=[token, ttl_ms, source_id, owner, host], client=pipe)
            [claimed] = execute_replicated(pipe, self.replicas, self.replica_timeout_ms)
        return _stored(claimed)

    def renew(self, leases: list[tuple[str, str, list[str]]], ttl_ms: int) -> list[int]:
        """Renew (source id, token, progress fields) leases in one round trip: per lease 0 (lost), 1 (held) or 2
        (held, and asked to stop). Raises ReplicasBehind if the replicas did not acknowledge them: none counts as renewed."""
        with self.client.pipeline(transaction=False) as pipe:
            for source_id, token, fields in leases:
                self._renew(keys=[lease_key(source_id), record_key(source_id)], args=[token, ttl_ms, *fields], client=pipe)
            return [int(reply) for reply in execute_replicated(pipe, self.replicas, self.replica_timeout_ms)]

    def release(self, source_id: str, token: str, fields: list[str]) -> bool:
        return bool(self._release(keys=[lease_key(source_id), record_key(source_id)], args=[token, *fields]))

    def finish(self, source_id: str, token: str, now_ms: int, fields: list[str]) -> bool:
        keys = [lease_key(source_id), record_key(source_id), UNFINISHED_KEY, FINISHED_KEY]
        done = bool(self._finish(keys=keys, args=[token, source_id, now_ms, *fields]))
        if done:
            self._forget_oldest_finished()
        return done

    def _forget_oldest_finished(self) -> None:
        extra = self.client.zcard(FINISHED_KEY) - self.finished_kept
        if extra <= 0:
            return
        popped = cast(list[tuple[str, float]], self.client.zpopmin(FINISHED_KEY, extra))
        forgotten = [source_id for source_id, _score in popped]
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(ALL_KEY, *forgotten)
            pipe.delete(*(record_key(source_id) for source_id in forgotten))
            pipe.execute()


def _stored(flat: list[str] | None) -> StoredSource | None:
    """A record as a script returns it (HGETALL's flat list), leased to the caller."""
    return StoredSource.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)), True) if flat else None


LEASE_SAFETY = 0.8
"""The share of its time to live a lease is trusted for after a renewal was sent: Redis counts the time to live from
when it ran the renewal, later, so the owner stops trusting it well before any other replica may claim it."""


class Lease:
    """This replica's hold on one source, as the source's thread and the Kafka sender check it before a frame goes
    out: held until a moment on the local monotonic clock; lost once a renewal found another token (or none)."""

    def __init__(self, token: str, ttl_s: float, granted_at: float) -> None:
        self.token = token
        self.ttl_s = ttl_s
        self.lost = False
        self._valid_until = granted_at + ttl_s * LEASE_SAFETY

    def renewed(self, sent_at: float) -> None:
        self._valid_until = sent_at + self.ttl_s * LEASE_SAFETY

    def held(self) -> bool:
        return not self.lost and time.monotonic() < self._valid_until
