"""What the API keeps besides the time series: classes and their sessions (lessons), in Redis."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis
from pydantic import BaseModel

from classpulse_store.classkeys import OUTBOX_CURSORS, cursor_fields, fixed_keys, keys_index, session_key, sessions_key
from classpulse_store.registry import CLASS_INDEX, ClassRecord, class_key, hash_fields
from classpulse_web.auth import now_ms

DELETE_CHUNK = 1000
"""Keys per DEL command when a class is deleted (a class with many sources has thousands of dedup sets)."""

_CLASS_KEY_PREFIX, _CLASS_KEY_SUFFIX = class_key("\0").split("\0")

# A page of classes in one round trip. KEYS: 1 the class index. ARGV: 1, 2 the class key around the id, 3 a teacher
# id ('': every class), 4 offset, 5 limit. Returns the number of classes listed in all, then each class's hash on
# the page as a flat field/value list. For a teacher, every class's `teacher` field is read (one HGET each, in
# Redis): thousands of classes take a millisecond or so.
_CLASS_PAGE = """
local prefix, suffix, teacher = ARGV[1], ARGV[2], ARGV[3]
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local reply = {0}
if teacher == '' then
  reply[1] = redis.call('ZCARD', KEYS[1])
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], offset, offset + limit - 1)) do
    local fields = redis.call('HGETALL', prefix .. id .. suffix)
    if #fields > 0 then table.insert(reply, fields) end
  end
  return reply
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = prefix .. id .. suffix
  if redis.call('HGET', key, 'teacher') == teacher then
    if reply[1] >= offset and reply[1] < offset + limit then table.insert(reply, redis.call('HGETALL', key)) end
    reply[1] = reply[1] + 1
  end
end
return reply
"""

# A class's named fields changed in one step with the check that it still exists: a class deleted meanwhile is not
# made again (without its index entry: a class no list shows), and the fields another request changes meanwhile are
# kept. KEYS: 1 the class's hash. ARGV: field, value, ... Returns the class's hash as it is now; nil: no such class.
_UPDATE_CLASS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGETALL', KEYS[1])
"""

# A lesson ended, and its "ended" event added, in one step with the check that it is running: of two End requests at
# once one ends it, and the lesson has one end and one "ended" event. KEYS: 1 the session's hash, 2 the lessons'
# stream. ARGV: 1 its end (ms), 2 the stream's approximate length, then the event's field, value, ... Returns 1 when
# it ended it; 0 when the lesson is not running (ended already, or gone with its class).
_END_SESSION = """
if redis.call('HEXISTS', KEYS[1], 'started_at_ms') == 0 or redis.call('HSETNX', KEYS[1], 'ended_at_ms', ARGV[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
"""

# A class registered in one step: its hash whole and its index entry, or nothing when the id is taken. In steps, a
# deletion between them left a hash without its fields or made the class again after it. KEYS: 1 the class's hash, 2
# the class index. ARGV: 1 the class id, 2 its creation (ms), then field, value, ... Returns 1 when it registered it.
_CREATE_CLASS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# A lesson started, indexed and its "started" event added in one step with the check that its class exists: a class
# deleted meanwhile gets no session keys after its deletion (which nothing would ever remove). KEYS: 1 the class's
# hash, 2 the session's hash, 3 the class's sessions index, 4 the lessons' stream. ARGV: 1 the session id, 2 its
# start (ms), 3 the stream's approximate length, 4 the number of the session's fields and values, then those, then
# the event's field, value, ... Returns 1 when it started it; 0: no such class.
_START_SESSION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fields = tonumber(ARGV[4])
redis.call('HSET', KEYS[2], unpack(ARGV, 5, 4 + fields))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 5 + fields))
return 1
"""

# A cursor of a class's exports (classkeys.OUTBOX_CURSORS) moved only while the class exists: a dispatcher turn that
# read the class before its deletion wrote it after, a field nothing would remove. KEYS: 1 the class's hash, 2 the
# cursors' hash. ARGV: 1 the field, 2 its value.
_SET_CURSOR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


def _from_flat(flat: Sequence[bytes | str]) -> dict[bytes | str, bytes | str]:
    """A hash as a script returns it (field, value, ...)."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _flat(fields: Mapping[str, str | int]) -> list[str | int]:
    """A hash as a script takes it (field, value, ...)."""
    return [item for field in fields.items() for item in field]


LESSONS = "{outbox}:lessons"
"""Lessons started and ended, in order, for the exports that report them (classpulse_api.dispatcher)."""
LESSONS_MAXLEN = 10_000


class Session(BaseModel):
    session_id: str
    class_id: str
    name: str = ""
    started_at_ms: int
    ended_at_ms: int | None = None


def _lesson_event(session: Session) -> dict[str, str | int]:
    """The fields of a lesson's event in LESSONS: it started, or it ended."""
    return {"class_id": session.class_id, "session_id": session.session_id, "ended": int(session.ended_at_ms is not None)}


class ClassStore:
    def __init__(self, client: aioredis.Redis, resolutions: Sequence[str]) -> None:
        """`resolutions`: the names of the series' resolutions (raw and compactions), whose keys a deletion removes."""
        self.client = client
        self.resolutions = tuple(resolutions)
        self._page = client.register_script(_CLASS_PAGE)
        self._update = client.register_script(_UPDATE_CLASS)
        self._end_session = client.register_script(_END_SESSION)
        self._create = client.register_script(_CREATE_CLASS)
        self._start_session = client.register_script(_START_SESSION)
        self._set_cursor = client.register_script(_SET_CURSOR)

    async def create(self, record: ClassRecord) -> bool:
        """False when the id is taken."""
        record = record.model_copy(update={"created_at_ms": now_ms()})
        fields = _flat(record.to_hash())
        created = await self._create(keys=[class_key(record.class_id), CLASS_INDEX], args=[record.class_id, record.created_at_ms, *fields])
        return bool(created)

    async def get(self, class_id: str) -> ClassRecord | None:
        fields = await self.client.hgetall(class_key(class_id))
        return ClassRecord.from_hash(fields) if fields else None

    async def update(self, class_id: str, changes: Mapping[str, object]) -> ClassRecord | None:
        """The class with `changes` (field -> value) made, only those fields written; None when there is no such class
        (deleted, maybe meanwhile: it is not made again)."""
        fields = await self._update(keys=[class_key(class_id)], args=_flat(hash_fields(changes)))
        return None if fields is None else ClassRecord.from_hash(_from_flat(fields))

    async def page(self, offset: int, limit: int, teacher: str | None = None) -> tuple[list[ClassRecord], int]:
        """A page of the classes in creation order (only `teacher`'s, if given), and how many there are in all; one
        round trip whatever the page's size."""
        total, *hashes = await self._page(
            keys=[CLASS_INDEX], args=[_CLASS_KEY_PREFIX, _CLASS_KEY_SUFFIX, teacher or "", offset, limit]
        )
        records = [ClassRecord.from_hash(_from_flat(flat)) for flat in hashes]
        return records, int(total)

    async def all(self) -> list[ClassRecord]:
        """Every class, in one round trip (the integrations' fan-out reads them each second)."""
        records, _ = await self.page(0, 2**31 - 1)
        return records

    async def delete(self, class_id: str) -> int:
        """The class and everything kept about it: registry entry, series, sessions, events, the per-source state
        of the pipeline, the integrations' cursors. Returns keys removed. No keyspace scan: every key is named by
        classkeys.py (fixed names, the sessions index, the key index)."""
        # The record goes first: the aggregator refuses a class that does not exist before it writes anything, so
        # no key of the class appears after the index is read.
        first = self.client.pipeline(transaction=True)
        first.delete(class_key(class_id))
        first.zrem(CLASS_INDEX, class_id)
        first.zrange(keys_index(class_id), 0, -1)
        first.zrange(sessions_key(class_id), 0, -1)
        removed, _, indexed, session_ids = await first.execute()
        # Not the record again: a class registered since the first step is a new one, kept whole with its index entry.
        keys = [
            *(key for key in fixed_keys(class_id, self.resolutions) if key != class_key(class_id)),
            *indexed,
            *(session_key(class_id, session_id) for session_id in session_ids),
        ]
        pipeline = self.client.pipeline(transaction=False)
        pipeline.hdel(OUTBOX_CURSORS, *cursor_fields(class_id, session_ids))
        for start in range(0, len(keys), DELETE_CHUNK):
            pipeline.delete(*keys[start : start + DELETE_CHUNK])
        _cursors, *deleted = await pipeline.execute()
        removed_in_all: int = removed + sum(deleted)
        return removed_in_all

    async def set_cursor(self, class_id: str, field: str, value: str | int) -> None:
        """The cursor `field` of the class's exports set to `value`, unless the class is gone (its deletion removed its
        cursors)."""
        await self._set_cursor(keys=[class_key(class_id), OUTBOX_CURSORS], args=[field, value])

    async def start_session(self, class_id: str, name: str) -> Session | None:
        """The lesson started now; None when there is no such class (deleted, maybe meanwhile)."""
        session = Session(session_id=secrets.token_hex(6), class_id=class_id, name=name, started_at_ms=now_ms())
        fields = _flat(session.model_dump(mode="json", exclude_none=True))
        keys = [class_key(class_id), session_key(class_id, session.session_id), sessions_key(class_id), LESSONS]
        args = [session.session_id, session.started_at_ms, LESSONS_MAXLEN, len(fields), *fields, *_flat(_lesson_event(session))]
        return session if await self._start_session(keys=keys, args=args) else None

    async def get_session(self, class_id: str, session_id: str) -> Session | None:
        fields = await self.client.hgetall(session_key(class_id, session_id))
        return Session.model_validate(fields) if fields else None

    async def end_session(self, session: Session) -> Session | None:
        """`session` ended now; None when it is not running (ended already, by another request maybe, or gone with
        its class)."""
        ended_at_ms = now_ms()
        ended = session.model_copy(update={"ended_at_ms": ended_at_ms})
        keys = [session_key(session.class_id, session.session_id), LESSONS]
        if not await self._end_session(keys=keys, args=[ended_at_ms, LESSONS_MAXLEN, *_flat(_lesson_event(ended))]):
            return None
        return ended

    async def running_sessions(self, class_ids: Sequence[str]) -> dict[str, Session]:
        """The lesson each class is in, for the classes in a lesson: two round trips whatever their number."""
        pipeline = self.client.pipeline(transaction=False)
        for class_id in class_ids:
            pipeline.zrevrange(sessions_key(class_id), 0, 0)
        latest = [(class_id, ids[0]) for class_id, ids in zip(class_ids, await pipeline.execute(), strict=True) if ids]
        pipeline = self.client.pipeline(transaction=False)
        for class_id, session_id in latest:
            pipeline.hgetall(session_key(class_id, session_id))
        sessions = [Session.model_validate(fields) for fields in await pipeline.execute() if fields] if latest else []
        return {session.class_id: session for session in sessions if session.ended_at_ms is None}

    async def sessions(self, class_id: str, offset: int, limit: int) -> tuple[list[Session], int]:
        pipeline = self.client.pipeline(transaction=False)
        pipeline.zrevrange(sessions_key(class_id), offset, offset + limit - 1)
        pipeline.zcard(sessions_key(class_id))
        ids, total = await pipeline.execute()
        pipeline = self.client.pipeline(transaction=False)
        for session_id in ids:
            pipeline.hgetall(session_key(class_id, session_id))
        sessions = [Session.model_validate(fields) for fields in await pipeline.execute() if fields]
        return sessions, total
