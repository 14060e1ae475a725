"""The outbox: messages ClassPulse sends to other systems (webhook subscribers, a learning record store), kept in Redis
until each is delivered or given up, so that a restart or a crash of the process sending them loses none.

- `{outbox}:queue`, a stream read by the consumer group `senders`: a message ready to be sent. Several API replicas
  share it; an entry a dead replica had claimed is taken over after CLAIM_IDLE_MS.
- `{outbox}:retry`, a sorted set by due time: a message whose last attempt failed, moved back to the queue when due.
- `{outbox}:log:<target>`, the newest LOG_LENGTH attempts per target (a webhook subscription, `xapi`), and
  `{outbox}:dead:<target>`, the newest LOG_LENGTH messages given up after their last attempt (the dead letters),
  each with that attempt; a replayed one goes back to the queue as new (its every attempt again).
- `{outbox}:seen:<target>:<message id>`: a message is queued once per target whoever offers it again (at-least-once
  readers upstream), and `{outbox}:sent:...`: one delivered is not sent again if its entry comes back after a crash.

Every change of state is one Lua script (acknowledge and reschedule, acknowledge and record), so a message is never
both gone from the queue and missing from the retry set.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, cast

import redis.asyncio as aioredis
import redis.exceptions
from pydantic import BaseModel, Field

QUEUE = "{outbox}:queue"
RETRY = "{outbox}:retry"
GROUP = "senders"
CLAIM_IDLE_MS = 120_000
"""Twice the longest attempt (CLASSPULSE_WEBHOOK_TIMEOUT_S, at most 60 s): an entry still being sent is not taken over."""
LOG_LENGTH = 1000
MARKER_TTL_S = 7 * 86_400


def _log_key(target: str) -> str:
    return f"{{outbox}}:log:{target}"


def _dead_key(target: str) -> str:
    return f"{{outbox}}:dead:{target}"


def _sent_key(target: str, message_id: str) -> str:
    return f"{{outbox}}:sent:{target}:{message_id}"


class Message(BaseModel):
    target: str = Field(description="webhook:<subscription id>, or xapi")
    message_id: str = Field(description="the same on every attempt: receivers drop what they already have by it")
    type: str
    body: str = Field(description="the JSON sent, the same on every attempt")
    attempt: int = 1


class Attempt(BaseModel):
    message_id: str
    type: str
    attempt: int
    outcome: str = Field(description="delivered, retrying (next_attempt_at_ms says when) or dead (given up)")
    http_status: int | None = None
    error: str | None = None
    at_ms: int
    next_attempt_at_ms: int | None = None


class DeadLetter(BaseModel):
    message: Message
    last_attempt: Attempt = Field(description="why it was given up: the receiver's HTTP status, or the error")


_ENQUEUE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'message', ARGV[2])
  return 1
end
return 0
"""
_DELIVERED = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, ARGV[5] - 1)
"""
_RESCHEDULED = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('LPUSH', KEYS[3], ARGV[5])
redis.call('LTRIM', KEYS[3], 0, ARGV[6] - 1)
"""
_DEAD = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, ARGV[5] - 1)
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, ARGV[5] - 1)
"""
_REPLAYED = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'message', ARGV[2])
  return 1
end
return 0
"""
_DROPPED = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
"""
_DEFERRED = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
"""
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, message in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'message', message)
  redis.call('ZREM', KEYS[1], message)
end
return #due
"""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Outbox:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.consumer = consumer_name()

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(QUEUE, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, message: Message) -> bool:
        """Queues a message once per (target, id); False when it was queued before."""
        seen = f"{{outbox}}:seen:{message.target}:{message.message_id}"
        return bool(await self.client.eval(_ENQUEUE, 2, seen, QUEUE, MARKER_TTL_S, message.model_dump_json()))

    async def claim(self, count: int, block_ms: int) -> list[tuple[str, Message]]:
        """Entries for this process: any a dead process left claimed, and new ones (waiting up to block_ms when there
        is nothing else). New entries are read on every turn: a backlog a dead replica left (say, to receivers that
        time out) must not hold back what is happening now."""
        _next, stale, *_deleted = await self.client.xautoclaim(QUEUE, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=count)
        # RESP2, decoded: [[stream, [(id, fields), ...]]], or None when nothing came.
        reply = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]] | None, await self.client.xreadgroup(
            GROUP, self.consumer, {QUEUE: ">"}, count=count, block=None if stale else block_ms
        ))
        entries = [*stale, *(entry for _stream, batch in reply or [] for entry in batch)]
        return [(entry_id, Message.model_validate_json(fields["message"])) for entry_id, fields in entries if fields]

    async def already_sent(self, message: Message) -> bool:
        return bool(await self.client.exists(_sent_key(message.target, message.message_id)))

    async def delivered(self, entry_id: str, message: Message, attempt: Attempt) -> None:
        await self.client.eval(
            _DELIVERED, 3, QUEUE, _sent_key(message.target, message.message_id), _log_key(message.target),
            GROUP, entry_id, MARKER_TTL_S, attempt.model_dump_json(), LOG_LENGTH,
        )

    async def reschedule(self, entry_id: str, message: Message, due_ms: int, attempt: Attempt) -> None:
        again = message.model_copy(update={"attempt": message.attempt + 1})
        await self.client.eval(
            _RESCHEDULED, 3, QUEUE, RETRY, _log_key(message.target),
            GROUP, entry_id, due_ms, again.model_dump_json(), attempt.model_dump_json(), LOG_LENGTH,
        )

    async def defer(self, entry_id: str, message: Message, due_ms: int) -> None:
        """Back to the retry schedule untried (its target is busy here): no attempt counted, none logged."""
        await self.client.eval(_DEFERRED, 2, QUEUE, RETRY, GROUP, entry_id, due_ms, message.model_dump_json())

    async def dead_letter(self, entry_id: str, message: Message, attempt: Attempt) -> None:
        letter = DeadLetter(message=message, last_attempt=attempt)
        await self.client.eval(
            _DEAD, 3, QUEUE, _dead_key(message.target), _log_key(message.target),
            GROUP, entry_id, letter.model_dump_json(), attempt.model_dump_json(), LOG_LENGTH,
        )

    async def replay(self, target: str, message_id: str | None = None) -> int:
        """Moves a target's dead letters (all, or the one of `message_id`) back to the queue, each as a new message: it
        gets CLASSPULSE_WEBHOOK_MAX_ATTEMPTS attempts again. Returns how many: a letter replayed at the same time by
        another request, or dead-lettered again meanwhile, goes back once."""
        replayed = 0
        for stored in await self.client.lrange(_dead_key(target), 0, -1):
            letter = DeadLetter.model_validate_json(stored)
            if message_id in (None, letter.message.message_id):
                again = letter.message.model_copy(update={"attempt": 1})
                replayed += int(await self.client.eval(_REPLAYED, 2, _dead_key(target), QUEUE, stored, again.model_dump_json()))
        return replayed

    async def drop(self, entry_id: str) -> None:
        """A message whose target is gone (a deleted subscription), or that may not leave any more (its class deleted
        or presence-only since it was queued): nothing to send."""
        await self.client.eval(_DROPPED, 1, QUEUE, GROUP, entry_id)

    async def move_due(self, now_ms: int) -> int:
        return int(await self.client.eval(_MOVE_DUE, 2, RETRY, QUEUE, now_ms))

    async def _page(self, key: str, offset: int, limit: int) -> tuple[list[str], int]:
        """`limit` entries of a list from `offset`, and how many it holds, read at one moment (a transaction): an entry
        pushed in between would count in the total but not on the page."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(key, offset, offset + limit - 1)
            pipe.llen(key)
            raw, total = await pipe.execute()
        return raw, total

    async def attempts(self, target: str, offset: int, limit: int) -> tuple[list[Attempt], int]:
        raw, total = await self._page(_log_key(target), offset, limit)
        return [Attempt.model_validate_json(item) for item in raw], total

    async def dead_letters(self, target: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A page of a target's dead letters, newest first, and how many it has (at most LOG_LENGTH)."""
        raw, total = await self._page(_dead_key(target), offset, limit)
        return [json.loads(item) for item in raw], total

    async def forget(self, target: str) -> None:
        await self.client.delete(_log_key(target), _dead_key(target))
