"""The integrations' fan-out on the real Redis Stack (which alert events become outbox messages, for whom), an
attempt's time limit against a receiver that answers a byte at a time, and where a webhook's connection goes: to the
address its host was checked at, over TLS verified against the host name."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from address_support import resolving_to, silent_addresses
from classpulse_api import dispatcher as dispatcher_module
from classpulse_api import store as store_module
from classpulse_api.dispatcher import SUMMARY_LAG_MS, Dispatcher
from classpulse_api.outbox import QUEUE, Message, Outbox
from classpulse_api.series import SeriesReader
from classpulse_api.settings import ApiSettings
from classpulse_api.store import ClassStore
from classpulse_api.timeparams import iso
from classpulse_api.webhooks import SendResult, StoredWebhook, WebhookCreate, WebhookSender, WebhookStore, new_secret
from classpulse_api.xapi import TARGET as XAPI_TARGET
from classpulse_api.xapi import XAPI_IRI, LessonIndices, XapiExport, XapiSender, XapiStatements, statement_class
from classpulse_core.alerts import AlertEvent, events_key
from classpulse_core.share_correction import ShareCorrection
from classpulse_store.classkeys import LESSONS_CURSOR_FIELD, OUTBOX_CURSORS, alert_cursor_field
from classpulse_store.registry import ClassRecord
from classpulse_web.happy_eyeballs import CONNECT_STAGGER_S
from outbox_support import deliver_queued
from tls_support import CertificateAuthority

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


@contextlib.asynccontextmanager
async def _lesson_export(
    redis_url: str, class_id: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[aioredis.Redis, ClassStore, Dispatcher, list[int]]]:
    """A class, and a dispatcher whose xAPI export (on before any lesson) summarises each 10 s of a lesson, read from
    the real time series; the clock of the dispatcher and of the lessons is the list's one value, moved by the test."""
    settings = ApiSettings()
    clock = [int(time.time() * 1000)]
    for module in (dispatcher_module, store_module):
        monkeypatch.setattr(module, "now_ms", lambda: clock[0])
    async with (aioredis.Redis.from_url(redis_url, decode_responses=True) as client,
                aioredis.Redis.from_url(redis_url, decode_responses=True, protocol=3) as series_client):
        classes = ClassStore(client, ["1s"])
        await classes.create(ClassRecord(class_id=class_id, expected_students=10))
        reader = SeriesReader(series_client, settings.resolutions(), settings.newest_sample_lead_ms())
        export = XapiExport(
            XapiStatements("https://classpulse.school.example", True),
            LessonIndices(reader, ShareCorrection.load(settings.quantification_path(), settings.model_signature)),
            XapiSender("https://lrs.example/xAPI", "u", SecretStr("p"), 1.0), 10_000,
        )
        dispatcher = Dispatcher(client, Outbox(client), WebhookStore(client), classes, WebhookSender([], ["https"], 1.0), 3, 1.0, 1.0, export)
        await dispatcher.fan_out()
        yield client, classes, dispatcher, clock
        await export.sender.aclose()


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
async def test_a_lessons_end_waits_for_its_last_frames_and_comes_after_its_last_summary(redis_url, class_id, monkeypatch):
    """A lesson's end was queued at the first fan-out after it, its indices read while its last frames (SUMMARY_LAG_MS
    behind, as a summary waits for them) were still on their way; and the summary of its last interval, due after
    the end, was never sent. The end now waits the summaries' lag, and goes after the lesson's last summaries."""
    async with _lesson_export(redis_url, class_id, monkeypatch) as (client, classes, dispatcher, clock):
        lesson = await classes.start_session(class_id, "Fractions")
        clock[0] += 12_000  # a lesson of one whole interval and 2 s
        await classes.end_session(lesson)

        async def queued_types() -> list[str]:
            return [m.type for m in await _queued(client) if m.target == XAPI_TARGET and statement_class(m) == class_id]

        clock[0] += SUMMARY_LAG_MS - 1
        await dispatcher.fan_out()
        assert await queued_types() == ["lesson.started"]
        clock[0] += 1
        await dispatcher.fan_out()
        assert await queued_types() == ["lesson.started", "summary", "lesson.ended"]


@pytest.mark.anyio
async def test_a_lessons_end_handled_twice_queues_none_of_its_summaries_again(redis_url, class_id, monkeypatch):
    """A lesson's end removes its summaries' cursor; handled again (a turn failed after the end and before the lessons'
    cursor moved) its summaries were started afresh from the clock, intervals overlapping those sent, under new ids:
    sent twice. They are now the lesson's own back-to-back intervals from its start, so one summarised again has the
    id it had and is queued once."""
    async with _lesson_export(redis_url, class_id, monkeypatch) as (client, classes, dispatcher, clock):
        lesson = await classes.start_session(class_id, "Fractions")
        started_ms = lesson.started_at_ms
        clock[0] += 47_000
        await dispatcher.fan_out()  # the export's first look at it: an interval or two back
        before_the_end = await client.hget(OUTBOX_CURSORS, LESSONS_CURSOR_FIELD)
        await classes.end_session(lesson)
        clock[0] += SUMMARY_LAG_MS
        await dispatcher.fan_out()
        await client.hset(OUTBOX_CURSORS, LESSONS_CURSOR_FIELD, before_the_end)  # a turn that failed before its cursor moved
        assert await dispatcher.fan_out() == 0

        ours = [m for m in await _queued(client) if m.target == XAPI_TARGET and statement_class(m) == class_id]
        summaries = [json.loads(m.body)["context"]["extensions"] for m in ours if m.type == "summary"]
        starts = [summary[f"{XAPI_IRI}/extensions/interval-start"] for summary in summaries]
        assert [m.type for m in ours] == ["lesson.started", "summary", "lesson.ended"], starts
        assert starts == [iso(started_ms + 30_000)]


@pytest.mark.anyio
async def test_a_lesson_ended_during_a_turn_gets_no_summary_after_its_end(redis_url, class_id, monkeypatch):
    """A turn read the running lessons before it handled the lessons' ends: a lesson that ended meanwhile, its end
    handled in that turn (a long turn: many lessons ended at once, each with its indices read), was then summarised as
    still running, an interval past its end sent, and its summaries' cursor written again, kept for good."""
    async with _lesson_export(redis_url, class_id, monkeypatch) as (client, classes, dispatcher, clock):
        lesson = await classes.start_session(class_id, "Fractions")
        clock[0] += 15_000
        await dispatcher.fan_out()  # its first interval
        handle_lessons = dispatcher._fan_out_lessons

        async def ended_while_lessons_are_handled(xapi: XapiExport, *turn: object) -> int:
            await classes.end_session(lesson)
            clock[0] += SUMMARY_LAG_MS + 10_000  # the lessons' events before its end take that long
            return await handle_lessons(xapi, *turn)

        monkeypatch.setattr(dispatcher, "_fan_out_lessons", ended_while_lessons_are_handled)
        await dispatcher.fan_out()
        ended_at_ms = lesson.started_at_ms + 15_000

        ours = [m for m in await _queued(client) if m.target == XAPI_TARGET and statement_class(m) == class_id]
        ends = [json.loads(m.body)["context"]["extensions"][f"{XAPI_IRI}/extensions/interval-end"] for m in ours if m.type == "summary"]
        assert [m.type for m in ours] == ["lesson.started", "summary", "lesson.ended"], ends
        assert all(end <= iso(ended_at_ms) for end in ends), ends
        assert not [field for field in await client.hkeys(OUTBOX_CURSORS) if field.startswith("summary:")]


@pytest.mark.anyio
async def test_deleting_a_class_removes_its_cursors(redis_url, class_id, monkeypatch):
    """The fan-out's cursors over a class's alerts and its running lessons' summaries are fields of one hash every
    class shares, which deleting a class, its keys named by classkeys.py, left behind: one pair for every class ever
    deleted, read and kept for good."""
    async with _lesson_export(redis_url, class_id, monkeypatch) as (client, classes, dispatcher, clock):
        await classes.start_session(class_id, "Fractions")
        await _raise(client, class_id, "presence")
        clock[0] += 15_000
        await dispatcher.fan_out()  # the alert and the lesson's first interval
        ours = {alert_cursor_field(class_id), *(field for field in await client.hkeys(OUTBOX_CURSORS) if class_id in field)}
        assert len(ours) == 2 and ours <= set(await client.hkeys(OUTBOX_CURSORS))
        await classes.delete(class_id)
        assert ours.isdisjoint(await client.hkeys(OUTBOX_CURSORS))


@pytest.mark.anyio
async def test_a_class_deleted_during_a_turn_gets_no_cursor_written_after_its_deletion(redis_url, class_id, monkeypatch):
    """A turn reads the classes, then their new alerts, queues them and moves each class's cursor: a class deleted
    meanwhile (its cursors removed with it) had its cursor written again after, a field nothing would remove."""
    async with _lesson_export(redis_url, class_id, monkeypatch) as (client, classes, dispatcher, clock):
        await _raise(client, class_id, "presence")
        enqueue = dispatcher.outbox.enqueue

        async def deleted_while_queued(message: Message) -> int:
            await classes.delete(class_id)
            return await enqueue(message)

        monkeypatch.setattr(dispatcher.outbox, "enqueue", deleted_while_queued)
        assert await dispatcher.fan_out() == 1
        assert [field for field in await client.hkeys(OUTBOX_CURSORS) if class_id in field] == []


@pytest.mark.anyio
@pytest.mark.parametrize("first_turn_after_the_upgrade", [False, True])
async def test_a_class_named_lessons_keeps_its_alerts_cursor_apart_from_the_lessons_one(redis_url, monkeypatch, first_turn_after_the_upgrade):
    """A class's alert cursor is the field named by its id in the hash where the dispatcher kept its own cursor over the
    lessons stream, named `lessons`: a class of that id (a valid id) shared it, its alert's position in its events
    stream taken as the lessons' position, and a lesson started before that alert was never sent to the LRS. The same
    in the first turn after the upgrade, where the field of before, read once the turn's alerts were handled, held that
    alert's position."""
    async with _lesson_export(redis_url, "lessons", monkeypatch) as (client, classes, dispatcher, _clock):
        try:
            if first_turn_after_the_upgrade:
                await client.hdel(OUTBOX_CURSORS, LESSONS_CURSOR_FIELD)
            earlier = len(await _queued(client))  # the queue is the database's, other tests' class `lessons` too
            await classes.start_session("lessons", "Fractions")
            await _raise(client, "lessons", "presence")
            await dispatcher.fan_out()
            ours = [m.type for m in (await _queued(client))[earlier:] if m.target == XAPI_TARGET and statement_class(m) == "lessons"]
            assert sorted(ours) == ["alert.started", "lesson.started"]
            await classes.delete("lessons")
            assert await client.hget(OUTBOX_CURSORS, LESSONS_CURSOR_FIELD) is not None
        finally:
            await classes.delete("lessons")


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
        await classes.update(class_id, {"teacher": "bob", "emotion_enabled": False})
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


class Answering:
    """An HTTP receiver on `host`: records each request's head (and the TLS server name asked for) and answers 200,
    closing the connection (the next message opens another)."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.server_names: list[str | None] = []

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = next(int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length:"))
        await reader.readexactly(length)
        self.heads.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def serve(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> asyncio.Server:
        if tls is not None:
            tls.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
        return await asyncio.start_server(self.answer, host, port, ssl=tls)


async def _sent(sender: WebhookSender, urls: list[str], servers: list[asyncio.Server]) -> list[SendResult]:
    """A message to each URL in turn; the sender and the receivers closed after."""
    try:
        return [
            await sender.send(StoredWebhook(webhook_id="wh_pinned", url=url, class_id="c", created_at_ms=0, secret=new_secret()), f"msg_{n}", "{}")
            for n, url in enumerate(urls)
        ]
    finally:
        await sender.aclose()
        for server in servers:
            server.close()


@pytest.mark.anyio
async def test_a_webhook_connects_to_the_address_its_host_was_checked_at(monkeypatch):
    """The host was resolved and judged, then resolved again by httpx to connect: a name answering an allowed address
    to the check and 127.0.0.2 (in earnest the metadata service, the pod's loopback) to the connection reached
    127.0.0.2. The connection now goes to the address judged; a name answering 127.0.0.2 when connected to is refused."""
    allowed, internal = Answering(), Answering()
    allowed_server = await allowed.serve("127.0.0.1", 0)
    port = allowed_server.sockets[0].getsockname()[1]
    internal_server = await internal.serve("127.0.0.2", port)
    resolving_to(monkeypatch, "hooks.test", None, "127.0.0.1", later=["127.0.0.2"])
    sender = WebhookSender([ipaddress.ip_network("127.0.0.1/32")], ["http"], 1.0)
    first, rebound = await _sent(sender, [f"http://hooks.test:{port}/hook"] * 2, [allowed_server, internal_server])
    assert internal.heads == []
    assert first.ok and len(allowed.heads) == 1 and f"host: hooks.test:{port}\r\n" in allowed.heads[0].lower()
    assert not rebound.ok and "outside the networks" in (rebound.error or "")


@pytest.mark.anyio
async def test_a_webhook_host_with_silent_addresses_gets_its_delivery_at_its_live_one(monkeypatch):
    """A receiver's name with four addresses, the first three silent (a firewall dropping packets). Each was tried in
    turn with the whole timeout: the first alone used up the attempt's 2 s, and the message was never delivered. Now
    connections to them are raced, 250 ms apart: the live one has it about a stagger per silent address later."""
    receiver = Answering()
    server = await receiver.serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
    resolving_to(monkeypatch, "hooks.test", port, *silent, "127.0.0.1")
    sender = WebhookSender([ipaddress.ip_network("127.0.0.0/8")], ["http"], 2.0)
    with silent_addresses(*silent, port=port):
        started = time.monotonic()
        [delivery] = await _sent(sender, [f"http://hooks.test:{port}/hook"], [server])
        delivered_after_s = time.monotonic() - started
    assert delivery.ok, delivery
    assert len(receiver.heads) == 1 and delivered_after_s < len(silent) * CONNECT_STAGGER_S + 0.5, delivered_after_s


@pytest.mark.anyio
async def test_an_https_webhook_connected_to_its_checked_address_verifies_the_certificate_against_the_host_name(monkeypatch, tmp_path):
    """Connecting to the address rather than the name must not verify TLS against the address: the receiver is asked
    for the host name (SNI) and its certificate must name it; one for another name, trusted as it is, is refused."""
    authority = CertificateAuthority.made(tmp_path)
    tls = authority.server_tls("hooks.test")  # a DNS name alone: no IP address
    receiver = Answering()
    server = await receiver.serve("127.0.0.1", 0, tls)
    port = server.sockets[0].getsockname()[1]
    for name in ("hooks.test", "other.test"):
        resolving_to(monkeypatch, name, port, "127.0.0.1")
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.path))  # the receiver's authority is the only one trusted
    sender = WebhookSender([ipaddress.ip_network("127.0.0.1/32")], ["https"], 2.0)
    named, misnamed = await _sent(sender, [f"https://hooks.test:{port}/hook", f"https://other.test:{port}/hook"], [server])
    assert named.ok, named
    assert receiver.server_names[0] == "hooks.test" and f"host: hooks.test:{port}\r\n" in receiver.heads[0].lower()
    assert not misnamed.ok and misnamed.error == f"ConnectError reaching https://other.test:{port}/hook"
    assert len(receiver.heads) == 1


@pytest.mark.anyio
async def test_an_alert_queued_before_its_class_went_presence_only_or_was_deleted_is_not_sent(redis_url, class_id):
    """A message was checked when it was queued only: an alert on the mood index waiting for its next attempt when
    its class was switched to presence-only (the privacy page: "off from that moment at every stage"), and the alerts
    of a class deleted meanwhile, were sent at that attempt. Each is now checked again against its class when sent."""
    receiver = Answering()
    server = await receiver.serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    deleted = f"{class_id}-deleted"
    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
        classes = ClassStore(client, ["1s"])
        for each in (class_id, deleted):
            await classes.create(ClassRecord(class_id=each, expected_students=10, teacher="ann"))
        sender = WebhookSender([ipaddress.ip_network("127.0.0.1/32")], ["http"], 1.0)
        dispatcher = Dispatcher(client, Outbox(client), WebhookStore(client), classes, sender, 3, 1.0, 1.0)
        await dispatcher.outbox.ensure_group()
        await dispatcher.hooks.create(WebhookCreate(url=f"http://127.0.0.1:{port}/hook", teacher_id="ann"), owner_teacher="ann")
        for each, index in ((class_id, "mood_index"), (class_id, "presence"), (deleted, "presence")):
            await _raise(client, each, index)
        assert await dispatcher.fan_out() == 3
        await classes.update(class_id, {"emotion_enabled": False})
        await classes.delete(deleted)

        try:
            await deliver_queued(dispatcher)
        finally:
            await sender.aclose()
            server.close()
        [(presence_event, _fields)] = [(entry_id, fields) for entry_id, fields in await client.xrange(events_key(class_id))
                                       if fields["index"] == "presence"]
    [head] = receiver.heads
    assert f"webhook-id: msg_{class_id}_{presence_event}\r\n" in head.lower()
