"""Reading a class's alert events (a Redis stream) page by page, and waiting for new ones."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast

import redis.asyncio as aioredis

from classpulse_core.alerts import AlertEvent, events_key

Entry = tuple[str, dict[str, str]]
"""A stream entry as the API's clients read it: they decode responses (str; redis-py's types also allow bytes)."""


class EventLog:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def page(self, class_id: str, offset: int, limit: int) -> tuple[list[AlertEvent], int]:
        key = events_key(class_id)
        entries = cast(list[Entry], await self.client.xrevrange(key, count=offset + limit))
        total = await self.client.xlen(key)
        return [_event(entry_id, fields) for entry_id, fields in entries[offset:]], total

    async def wait_new(self, class_id: str, after_id: str | None, block_ms: int) -> tuple[list[AlertEvent], str]:
        """Events after `after_id` (None: from now on), waiting up to `block_ms`; and the id to continue from."""
        after_id = after_id or f"{int(time.time() * 1000)}-0"
        reply = await self.client.xread({events_key(class_id): after_id}, block=block_ms, count=100)
        entries = [entry for _stream, batch in _streams(reply) for entry in batch]
        events = [_event(entry_id, fields) for entry_id, fields in entries]
        return events, (entries[-1][0] if entries else after_id)


def _streams(reply: Any) -> Iterable[tuple[str, list[Entry]]]:
    # RESP3 answers a map {stream: [entries]}, RESP2 a list of [stream, entries].
    streams: Iterable[tuple[str, list[Entry]]] = reply.items() if isinstance(reply, dict) else (reply or [])
    return streams


def _event(entry_id: str, fields: dict[str, str]) -> AlertEvent:
    return AlertEvent.model_validate({**fields, "event_id": entry_id})
