"""What the API keeps besides the time series: classes and their sessions (lessons), in Redis."""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis
from pydantic import BaseModel

from classpulse_common.auth import now_ms
from classpulse_common.registry import CLASS_INDEX, ClassRecord, class_key
from classpulse_common.timeseries import class_key_pattern


LESSONS = "{outbox}:lessons"
"""Lessons started and ended, in order, for the exports that report them (classpulse_api.dispatcher)."""
LESSONS_MAXLEN = 10_000


class Session(BaseModel):
    session_id: str
    class_id: str
    name: str = ""
    started_at_ms: int
    ended_at_ms: int | None = None


def _sessions_key(class_id: str) -> str:
    return f"sessions:{{{class_id}}}"


def _session_key(class_id: str, session_id: str) -> str:
    return f"session:{{{class_id}}}:{session_id}"


class ClassStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def create(self, record: ClassRecord) -> bool:
        """False when the id is taken."""
        record = record.model_copy(update={"created_at_ms": now_ms()})
        if not await self.client.hsetnx(class_key(record.class_id), "class_id", record.class_id):
            return False
        await self.client.hset(class_key(record.class_id), mapping=record.to_hash())
        await self.client.zadd(CLASS_INDEX, {record.class_id: record.created_at_ms})
        return True

    async def get(self, class_id: str) -> ClassRecord | None:
        fields = await self.client.hgetall(class_key(class_id))
        return ClassRecord.from_hash(fields) if fields else None

    async def update(self, record: ClassRecord) -> None:
        await self.client.hset(class_key(record.class_id), mapping=record.to_hash())

    async def page(self, offset: int, limit: int) -> tuple[list[ClassRecord], int]:
        ids = await self.client.zrange(CLASS_INDEX, offset, offset + limit - 1)
        total = await self.client.zcard(CLASS_INDEX)
        records = [await self.get(class_id) for class_id in ids]
        return [r for r in records if r is not None], total

    async def all(self) -> list[ClassRecord]:
        records = [await self.get(class_id) for class_id in await self.client.zrange(CLASS_INDEX, 0, -1)]
        return [r for r in records if r is not None]

    async def delete(self, class_id: str) -> int:
        """The class and everything kept about it: registry entry, series, sessions, events. Returns keys removed."""
        removed = 0
        async for key in self.client.scan_iter(match=class_key_pattern(class_id), count=1000):
            removed += await self.client.delete(key)
        await self.client.zrem(CLASS_INDEX, class_id)
        return removed

    async def start_session(self, class_id: str, name: str) -> Session:
        session = Session(session_id=secrets.token_hex(6), class_id=class_id, name=name, started_at_ms=now_ms())
        await self.client.hset(_session_key(class_id, session.session_id), mapping=session.model_dump(mode="json", exclude_none=True))
        await self.client.zadd(_sessions_key(class_id), {session.session_id: session.started_at_ms})
        await self._lesson_event(session)
        return session

    async def get_session(self, class_id: str, session_id: str) -> Session | None:
        fields = await self.client.hgetall(_session_key(class_id, session_id))
        return Session.model_validate(fields) if fields else None

    async def end_session(self, session: Session) -> Session:
        ended = session.model_copy(update={"ended_at_ms": now_ms()})
        await self.client.hset(_session_key(session.class_id, session.session_id), "ended_at_ms", ended.ended_at_ms)
        await self._lesson_event(ended)
        return ended

    async def _lesson_event(self, session: Session) -> None:
        fields = {"class_id": session.class_id, "session_id": session.session_id, "ended": int(session.ended_at_ms is not None)}
        await self.client.xadd(LESSONS, fields, maxlen=LESSONS_MAXLEN, approximate=True)

    async def sessions(self, class_id: str, offset: int, limit: int) -> tuple[list[Session], int]:
        ids = await self.client.zrevrange(_sessions_key(class_id), offset, offset + limit - 1)
        total = await self.client.zcard(_sessions_key(class_id))
        sessions = [await self.get_session(class_id, sid) for sid in ids]
        return [s for s in sessions if s is not None], total
