"""Running the integrations' delivery worker in the test's own process (test_dispatcher_fan_out.py, test_xapi.py), and
dead letters made and read page by page (test_xapi.py, test_webhooks.py)."""

from __future__ import annotations

import asyncio
import time

import httpx
import redis.asyncio as aioredis

from classpulse_api.dispatcher import Dispatcher
from classpulse_api.outbox import QUEUE, Attempt, Message, Outbox


async def deliver_queued(dispatcher: Dispatcher, timeout_s: float = 20.0) -> None:
    """Runs the worker until its queue is empty: each message sent, dropped, dead-lettered or scheduled for a retry."""
    stop = asyncio.Event()
    worker = asyncio.create_task(dispatcher.run(stop))
    try:
        deadline = time.monotonic() + timeout_s
        while await dispatcher.client.xlen(QUEUE):
            assert time.monotonic() < deadline, f"the outbox's queue not emptied within {timeout_s:.0f} s"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker


def give_up(redis_url: str, messages: list[Message]) -> None:
    """Dead-letters `messages` in this order (the last is the newest) as the worker does after a last attempt that
    could not reach the receiver, their queue entries long gone."""

    async def dead_letter_each() -> None:
        async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
            outbox = Outbox(client)
            for message in messages:
                last_attempt = Attempt(message_id=message.message_id, type=message.type, attempt=message.attempt,
                                       outcome="dead", error="ConnectError reaching the receiver", at_ms=int(time.time() * 1000))
                await outbox.dead_letter("0-1", message, last_attempt)

    asyncio.run(dead_letter_each())


def read_pages(client: httpx.Client, path: str, limit: int, count: int) -> list[tuple[list[dict], str | None]]:
    """The pages of a dead-letter list of `count` letters, read `limit` at a time by offset up to the first offset past
    the end: each page's letters and its total header."""
    pages = []
    for offset in range(0, count + limit, limit):
        page = client.get(path, params={"offset": offset, "limit": limit})
        assert page.status_code == 200, page.text
        pages.append((page.json(), page.headers.get("X-Total-Count")))
    return pages
