"""Reading a class's alert events (a Redis stream) page by page, and waiting for new ones."""

from __future__ import annotations

import time
from typing import Any, cast

import redis.asyncio as aioredis

from classpulse_core.alerts import AlertEvent, events_key

Entry = tuple[str, dict[str, str]]
"""A stream entry as the API's clients read it: they decode responses (str; redis-py's types also allow bytes)."""


class EventLog:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def page(self, class_id: str, offset: int, limit: int, emotions_on: bool = True) -> tuple[list[AlertEvent], int]:
        """Newest first; for a class whose emotions are off, without the alerts of indices read from emotions (the
        whole capped stream is read then, to count and page what is left)."""
        key = events_key(class_id)
        if emotions_on:
            entries = cast(list[Entry], await self.client.xrevrange(key, count=offset + limit))
            total = await self.client.xlen(key)
            return [_event(entry_id, fields) for entry_id, fields in entries[offset:]], total
        entries = cast(list[Entry], await self.client.xrevrange(key))
        shown = [event for event in (_event(entry_id, fields) for entry_id, fields in entries) if event.shown_for(False)]
        return shown[offset : offset + limit], len(shown)

    async def wait_new(self, class_id: str, after_id: str | None, block_ms: int) -> tuple[list[AlertEvent], str]:
        """Events after `after_id` (None: from now on), waiting up to `block_ms`; and the id to continue from."""
        after_id = after_id or f"{int(time.time() * 1000)}-0"
        reply = await self.client.xread({events_key(class_id): after_id}, block=block_ms, count=100)
        entries = _entries(reply)
        events = [_event(entry_id, fields) for entry_id, fields in entries]
        return events, (entries[-1][0] if entries else after_id)


def _entries(reply: Any) -> list[Entry]:
    # redis-py answers XREAD under RESP3 with {stream: [entries]}, the entry list wrapped in a list of one
    # (parse_xread_resp3), and under RESP2 with [[stream, entries], ...].
    if isinstance(reply, dict):
        return [entry for wrapped in reply.values() for batch in wrapped for entry in batch]
    return [entry for _stream, batch in reply or [] for entry in batch]


def _event(entry_id: str, fields: dict[str, str]) -> AlertEvent:
    return AlertEvent.model_validate({**fields, "event_id": entry_id})
