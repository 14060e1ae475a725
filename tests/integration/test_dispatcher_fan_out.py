"""The integrations' fan-out on the real Redis Stack (which alert events become outbox messages, for whom), and an
attempt's time limit against a receiver that answers a byte at a time."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from classpulse_api.dispatcher import Dispatcher
from classpulse_api.outbox import QUEUE, Message, Outbox
from classpulse_api.settings import ApiSettings
from classpulse_api.store import ClassStore
from classpulse_api.webhooks import StoredWebhook, WebhookCreate, WebhookSender, WebhookStore, new_secret
from classpulse_api.xapi import TARGET as XAPI_TARGET
from classpulse_api.xapi import XapiExport, XapiSender, XapiStatements
from classpulse_core.alerts import AlertEvent, events_key
from classpulse_store.registry import ClassRecord

# The outbox and its cursors are the deployment's: a database of the module's own.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]


def _dispatcher(client: aioredis.Redis, xapi: bool) -> Dispatcher:
    settings = ApiSettings()
    export = XapiExport(
        XapiStatements("https://classpulse.school.example", True), None,  # type: ignore[arg-type]  # no interval summaries here
        XapiSender("https://lrs.example/xAPI", "u", SecretStr("p"), 1.0), 300_000,
    ) if xapi else None
    sender = WebhookSender(settings.webhook_allowed_networks, settings.webhook_allowed_schemes, 1.0)
    return Dispatcher(client, Outbox(client), WebhookStore(client), ClassStore(client, ["1s"]), sender, 3, 1.0, 1.0, export)


async def _queued(client: aioredis.Redis) -> list[Message]:
    return [Message.model_validate_json(fields["message"]) for _id, fields in await client.xrange(QUEUE)]


async def _raise(client: aioredis.Redis, class_id: str, index: str) -> None:
    event = AlertEvent(class_id=class_id, kind="started", index=index, value=0.1, threshold=0.5, t=int(time.time() * 1000))
    await client.xadd(events_key(class_id), event.to_fields())


@pytest.mark.anyio
async def test_an_alert_raised_while_no_api_ran_still_reaches_the_lrs(redis_url, class_id):
    """The LRS's cut-off was each API process's own start: an alert raised between one process's last fan-out and
    the next one's start was passed over for good. It is now when the export was switched on, kept in Redis."""
    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
        await ClassStore(client, ["1s"]).create(ClassRecord(class_id=class_id, expected_students=10))
        first = _dispatcher(client, xapi=True)
        await first.outbox.ensure_group()
        await first.fan_out()
        await _raise(client, class_id, "presence")  # the API is down meanwhile
        await asyncio.sleep(0.01)  # the next process starts after the event
        restarted = _dispatcher(client, xapi=True)
        assert await restarted.fan_out() == 1
        [statement] = [m for m in await _queued(client) if m.target == XAPI_TARGET]
        assert json.loads(statement.body)["verb"]["id"].endswith("raised-alert")


@pytest.mark.anyio
async def test_a_presence_only_class_sends_no_alert_of_an_emotion_index_and_a_former_teachers_webhook_nothing(redis_url, class_id):
    """Webhooks were sent every alert of a class, mood and attention at risk too, whatever its mode; and a class's
    webhook made by its teacher kept receiving its alerts after the class was given to another."""
    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
        classes = ClassStore(client, ["1s"])
        await classes.create(ClassRecord(class_id=class_id, expected_students=10, teacher="ann", emotion_enabled=False))
        dispatcher = _dispatcher(client, xapi=False)
        await dispatcher.outbox.ensure_group()
        hook = await dispatcher.hooks.create(WebhookCreate(url="https://hooks.example/ann", class_id=class_id), owner_teacher="ann")
        for index in ("mood_index", "attention_risk", "presence"):
            await _raise(client, class_id, index)
        assert await dispatcher.fan_out() == 1
        [sent] = [message for message in await _queued(client) if message.target == hook.target]
        assert json.loads(sent.body)["data"]["index"] == "presence"
        await classes.update(ClassRecord(class_id=class_id, expected_students=10, teacher="bob", emotion_enabled=False))
        await _raise(client, class_id, "presence")
        assert await dispatcher.fan_out() == 0


@pytest.mark.anyio
async def test_a_receiver_trickling_its_answer_is_given_up_on_at_the_attempts_limit():
    """httpx's timeout bounds each read: a receiver sending a byte of its answer every 0.3 s kept one attempt (and
    its delivery slot) open as long as it went on; the attempt now ends at CLASSPULSE_WEBHOOK_TIMEOUT_S in all."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.3)

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = WebhookSender([ipaddress.ip_network("127.0.0.0/8")], ["http"], 1.0)
    hook = StoredWebhook(webhook_id="wh_slow", url=f"http://127.0.0.1:{port}/hook", class_id="c", created_at_ms=0, secret=new_secret())
    try:
        started = time.monotonic()
        result = await sender.send(hook, "msg_1", "{}")
        took = time.monotonic() - started
    finally:
        await sender.aclose()
        server.close()
    assert not result.ok and "in time" in (result.error or "") and took < 3
