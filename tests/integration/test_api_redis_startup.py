"""The API started while Redis is away (restarting, failing over), with the real application and a Redis of the test's
own started after it: the API starts not ready instead of exiting, installs its bootstrap admin key and sends webhooks
once Redis answers; the integrations worker outlives its queue being deleted; readiness tells when the worker stopped,
and shutting down raises nothing whatever became of it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from classpulse_api.app import create_app
from classpulse_api.outbox import QUEUE, Message, Outbox
from classpulse_api.settings import ApiSettings
from classpulse_devstack.stack import Stack
from classpulse_web.auth import new_key
from free_ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

REDIS_AWAY_S = 1.5
"""Long enough for the worker's first turns and the key's first tries to fail (each fails at once: connection refused)."""


@pytest.fixture
def later_redis(devstack: Stack, tmp_path) -> Iterator[Stack]:
    """A Redis of this test's own (a free port, data under tmp_path), not started: `start_redis` starts it."""
    stack = Stack(dataclasses.replace(devstack.config, run_dir=tmp_path, redis_port=free_port()))
    yield stack
    stack.down(stack.select("redis"))


async def start_redis(stack: Stack) -> None:
    await asyncio.to_thread(stack.up, stack.select("redis"))


def redis_url(stack: Stack) -> str:
    return f"redis://127.0.0.1:{stack.config.redis_port}/0"


@asynccontextmanager
async def running_api(settings: ApiSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            yield app, client


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        await asyncio.sleep(0.2)


async def readiness(client: httpx.AsyncClient) -> tuple[int, str]:
    answer = await client.get("/readyz")
    return answer.status_code, answer.json()["detail"]


async def queue_a_message_sent_at_once(stack: Stack) -> Callable[[], Awaitable[bool]]:
    """A message queued for a webhook subscription deleted since: the worker that claims it drops it from the queue.
    Returns the check that the queue is empty again."""
    async with aioredis.Redis.from_url(redis_url(stack), decode_responses=True) as client:
        assert await Outbox(client).enqueue(Message(target="webhook:wh_gone", message_id=f"msg_{uuid.uuid4().hex}", type="test", body="{}"))

    async def sent() -> bool:
        async with aioredis.Redis.from_url(redis_url(stack), decode_responses=True) as client:
            return await client.xlen(QUEUE) == 0

    return sent


async def test_an_api_started_before_redis_installs_its_admin_key_once_redis_answers_and_is_ready_only_then(later_redis):
    """The key's install was awaited at start: with Redis away the start-up raised, uvicorn exited, and the pod went
    into a crash loop (its backoff growing to minutes) however soon Redis came back."""
    admin_key = new_key()[1]
    settings = ApiSettings(redis_url=redis_url(later_redis), admin_api_key=admin_key, integrations_worker=False)
    async with running_api(settings) as (_app, client):
        await asyncio.sleep(REDIS_AWAY_S)
        assert (await readiness(client))[0] == 503
        await start_redis(later_redis)
        await eventually(lambda: _ready(client), "ready once Redis answers")
        keys = await client.get("/v1/keys", headers={"Authorization": f"Bearer {admin_key}"})
        assert keys.status_code == 200 and [key["name"] for key in keys.json()] == ["bootstrap admin"]


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await readiness(client))[0] == 200


async def test_an_api_started_before_redis_sends_its_outbox_once_redis_answers(later_redis):
    """The worker's first call (making the queue's consumer group) came before its retried loop: with Redis away it
    raised, the worker was gone for good, and the API, ready once Redis answered, never sent a webhook again."""
    async with running_api(ApiSettings(redis_url=redis_url(later_redis))) as (_app, client):
        await asyncio.sleep(REDIS_AWAY_S)
        await start_redis(later_redis)
        await eventually(lambda: _ready(client), "ready once Redis answers")
        await eventually(await queue_a_message_sent_at_once(later_redis), "a message queued after the start is sent")
        assert await _ready(client)


async def test_the_worker_outlives_its_queue_deleted_and_readiness_tells_once_it_stopped(later_redis):
    """A deleted queue (a FLUSHDB, a backup restored from before it was made) left the worker failing every turn with
    NOGROUP, only logged; a worker that stopped left the API ready all the same, and its shutdown then raised."""
    await start_redis(later_redis)
    async with running_api(ApiSettings(redis_url=redis_url(later_redis))) as (_app, client):
        await eventually(await queue_a_message_sent_at_once(later_redis), "the first message is sent")
        async with aioredis.Redis.from_url(redis_url(later_redis)) as redis_client:
            assert await redis_client.delete(QUEUE) == 1
        await eventually(await queue_a_message_sent_at_once(later_redis), "a message queued after the queue was deleted")

        [worker] = [task for task in asyncio.all_tasks() if task.get_coro().__qualname__ == "Dispatcher.run"]
        worker.cancel()
        await eventually(lambda: _stopped(client), "not ready once the worker stopped")


async def _stopped(client: httpx.AsyncClient) -> bool:
    status, detail = await readiness(client)
    return status == 503 and detail == "the integrations worker stopped: cancelled"
