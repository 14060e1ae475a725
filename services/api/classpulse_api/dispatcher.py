"""The delivery worker of the outbox, run inside each API process (CLASSPULSE_INTEGRATIONS_WORKER).

Why in the API: the API already owns what it needs (classes, subscriptions, sessions, Redis), so no other image,
Deployment or Secret is needed; its replicas share the queue through a Redis consumer group, and one of them at a
time (a lease in Redis) turns new alert events into messages. The state is all in Redis (classpulse_api.outbox), so a
restarted or scaled-down API loses nothing: a message is sent at least once, with the same id every time.

Two loops:
- fan-out: reads each class's alert stream (`events:{class}`, written by the aggregator) from a cursor kept in Redis
  and queues one message per event and target (each webhook subscription covering the class; the LRS when xAPI
  export is on); only events after a subscription was made are sent to it. For xAPI also the lessons started and
  ended (the API's `{outbox}:lessons` stream) and the summary of each whole interval of a running lesson, each
  interval and each lesson's end SUMMARY_LAG_MS after it (its last frames are still on their way), a lesson's end
  after its last summaries;
- delivery: claims queued messages, checks each again against its class as it is now (deleted, presence-only since:
  dropped), sends them, and records the attempt: delivered, retried after an exponential backoff
  (CLASSPULSE_WEBHOOK_RETRY_INITIAL_S doubling up to _RETRY_MAX_S), or dead-lettered after
  CLASSPULSE_WEBHOOK_MAX_ATTEMPTS (at once when the receiver refused it for good: SendResult.refused). Each delivery
  runs on its own, IN_FLIGHT at most per process, of them at most half to one target and only
  IN_FLIGHT_PER_FAILING_TARGET to a target whose last attempt failed: a message claimed while
  its target has that many in flight goes back to the retry schedule untried. So a receiver that times out (or a
  backlog of messages to it) holds a few slots for its timeout and every other target's messages go out meanwhile,
  while a healthy LRS that takes every class's statements gets the slots it needs; a batch no longer waits for its
  slowest delivery before the next claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as aioredis
import redis.exceptions
from prometheus_client import Counter

from classpulse_api.events import Entry
from classpulse_api.outbox import Attempt, Message, Outbox
from classpulse_api.store import LESSONS, ClassStore, Session
from classpulse_api.timeparams import iso
from classpulse_api.webhooks import SendResult, WebhookSender, WebhookStore
from classpulse_api.xapi import TARGET as XAPI_TARGET
from classpulse_api.xapi import XapiExport, statement_class
from classpulse_core.alerts import AlertEvent, events_key
from classpulse_store.classkeys import (
    LESSONS_CURSOR_FIELD,
    LESSONS_CURSOR_FIELD_BEFORE,
    OUTBOX_CURSORS,
    alert_cursor_field,
    summary_cursor_field,
)
from classpulse_store.registry import ClassRecord
from classpulse_web.auth import now_ms

log = logging.getLogger(__name__)

ATTEMPTS = Counter("classpulse_outbox_attempts_total", "Attempts to deliver an outbox message", ["target", "outcome"])
LEASE = "{outbox}:fan-out-lease"
XAPI_SINCE = "{outbox}:xapi-export-since"
LEASE_MS = 10_000
FAN_OUT_EVERY_S = 1.0
SUMMARY_LAG_MS = 5_000
"""An interval is summarised this long after it ends: the last frames of it are still on their way."""
IN_FLIGHT = 64
"""Deliveries one process runs at once; half of them at most to one target (a webhook subscription, the LRS)."""
IN_FLIGHT_PER_FAILING_TARGET = 4
"""To a target whose last attempt failed (refused, timed out, unreachable): a silent receiver holds no more slots."""


def alert_message(target: str, event: AlertEvent) -> Message:
    body = {"type": f"alert.{event.kind}", "timestamp": iso(event.t), "data": event.model_dump()}
    return Message(
        target=target, message_id=f"msg_{event.class_id}_{event.event_id}", type=body["type"], body=json.dumps(body)
    )


def alert_message_class(message_id: str) -> str:
    """The class of an alert message, by its id (`alert_message`'s msg_<class>_<event id>: an event id, a stream entry
    id, has no '_')."""
    return message_id.removeprefix("msg_").rpartition("_")[0]


class Dispatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        outbox: Outbox,
        hooks: WebhookStore,
        classes: ClassStore,
        webhook_sender: WebhookSender,
        max_attempts: int,
        retry_initial_s: float,
        retry_max_s: float,
        xapi: XapiExport | None = None,
        emotion_enabled: bool = True,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.hooks = hooks
        self.classes = classes
        self.webhook_sender = webhook_sender
        self.max_attempts = max_attempts
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.xapi = xapi
        self.emotion_enabled = emotion_enabled
        self._xapi_since_ms: int | None = None
        self._xapi_off_noted = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._in_flight_to: Tally[str] = Tally()
        self._failing: set[str] = set()

    def backoff_s(self, attempt: int) -> float:
        return min(self.retry_max_s, self.retry_initial_s * 2.0 ** (attempt - 1))

    async def run(self, stop: asyncio.Event) -> None:
        """Both loops until `stop` is set. Whatever Redis does meanwhile (away at the start, restarted, failed over,
        emptied) a turn fails and is tried again: the worker stops only when told to."""
        await asyncio.gather(self._loop(stop, self._fan_out_turn), self._loop(stop, self._delivery_turn))
        await asyncio.gather(*self._in_flight, return_exceptions=True)  # each delivery started gets its attempt recorded
        with contextlib.suppress(redis.exceptions.RedisError):  # Redis away: the lease lapses by itself
            if await self.client.get(LEASE) == self.outbox.consumer:
                await self.client.delete(LEASE)  # the next replica need not wait for it to lapse

    async def _loop(self, stop: asyncio.Event, turn: Callable[[], Awaitable[None]]) -> None:
        while not stop.is_set():
            try:
                await turn()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("outbox: redis unavailable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
            except Exception:
                # Whatever it was, the worker carries on: what it was doing is still in Redis, to be tried again.
                log.exception("outbox: turn failed")
                await asyncio.sleep(1.0)

    async def _fan_out_turn(self) -> None:
        if await self._hold_lease():
            await self.fan_out()
        await asyncio.sleep(FAN_OUT_EVERY_S)

    async def _hold_lease(self) -> bool:
        me = self.outbox.consumer
        if await self.client.set(LEASE, me, nx=True, px=LEASE_MS):
            return True
        return await self.client.get(LEASE) == me and bool(await self.client.pexpire(LEASE, LEASE_MS))

    async def fan_out(self) -> int:
        """Queues the messages of alert events (and, for xAPI, lessons and interval summaries) not yet seen; returns
        how many were queued."""
        xapi_since_ms = await self._xapi_export_since()
        hooks = await self.hooks.all()
        if not hooks and self.xapi is None:
            return 0
        queued = 0
        records = await self.classes.all()
        # Read before the alerts' cursors are written: the field of before may be a class's (`lessons`) alert cursor.
        lessons_cursors = cast(list[str | None], await self.client.hmget(OUTBOX_CURSORS, [LESSONS_CURSOR_FIELD, LESSONS_CURSOR_FIELD_BEFORE]))
        watched: list[tuple[ClassRecord, list[tuple[str, int]]]] = []
        for record in records:
            targets = [(hook.target, hook.created_at_ms) for hook in hooks if hook.covers(record)]
            if xapi_since_ms is not None:
                targets.append((XAPI_TARGET, xapi_since_ms))
            if targets:
                watched.append((record, targets))
        # A platform holds thousands of classes: their cursors and new events are read in two round trips, not two a class.
        # The dispatcher's client decodes responses: str, where redis-py's types also allow bytes.
        cursors = cast(list[str | None], await self.client.hmget(OUTBOX_CURSORS, [alert_cursor_field(record.class_id) for record, _ in watched]) if watched else [])
        pipeline = self.client.pipeline(transaction=False)
        for (record, targets), cursor in zip(watched, cursors, strict=True):
            start = cursor or f"{min(at for _, at in targets) - 1}-0"
            pipeline.xrange(events_key(record.class_id), min=f"({start}", count=500)
        new_events = cast(list[list[Entry]], await pipeline.execute() if watched else [])
        for (record, targets), entries in zip(watched, new_events, strict=True):
            for entry_id, fields in entries:
                event = AlertEvent.model_validate({**fields, "event_id": entry_id})
                happened_ms = int(entry_id.split("-")[0])
                for target, since_ms in targets:
                    message = self._alert_message(target, record, event) if happened_ms >= since_ms else None
                    if message is not None:
                        queued += await self.outbox.enqueue(message)
            if entries:
                await self.classes.set_cursor(record.class_id, alert_cursor_field(record.class_id), entries[-1][0])
        if self.xapi is not None:
            queued += await self._fan_out_lessons(self.xapi, lessons_cursors, records)
            # Read after the lessons' ends are handled: a lesson read running before its end was handled (in a long
            # turn) would be summarised past its end, its summaries' cursor written again after its end removed it.
            running = await self.classes.running_sessions([record.class_id for record in records])
            for record in records:
                if record.class_id in running:
                    queued += await self._fan_out_summaries(self.xapi, record, running[record.class_id])
        return queued

    async def _xapi_export_since(self) -> int | None:
        """When the deployment's xAPI export was switched on, kept in Redis: a restarted API (or another replica
        taking the lease) sends the events raised while none ran, not only those after its own start. An API with
        the export off forgets it, so switching it on again later does not send what happened in between."""
        if self.xapi is None:
            if not self._xapi_off_noted:
                await self.client.delete(XAPI_SINCE)
                self._xapi_off_noted = True
            return None
        if self._xapi_since_ms is None:
            await self.client.set(XAPI_SINCE, now_ms(), nx=True)
            self._xapi_since_ms = int(cast(str, await self.client.get(XAPI_SINCE)))
        return self._xapi_since_ms

    def _alert_message(self, target: str, record: ClassRecord, event: AlertEvent) -> Message | None:
        if target == XAPI_TARGET:
            return self.xapi.statements.alert(record, event) if self.xapi is not None else None
        # A presence-only class (or deployment) sends no alert of an index read from emotions, even one raised before.
        return alert_message(target, event) if event.shown_for(self._emotions_on(record)) else None

    def _emotions_on(self, record: ClassRecord) -> bool:
        return self.emotion_enabled and record.emotion_enabled

    async def _fan_out_lessons(self, xapi: XapiExport, stored: list[str | None], records: list[ClassRecord]) -> int:
        """`stored`: the lessons' cursor and its field of before, as the turn began."""
        before = stored[1]
        if any(record.class_id == LESSONS_CURSOR_FIELD_BEFORE for record in records):
            # That field was also this class's alert cursor: which position it holds is unknown. From the export's
            # start instead: a statement queued before is dropped as a repeat, one skipped would be lost.
            before = None
        cursor = stored[0] or before or f"{(self._xapi_since_ms or now_ms()) - 1}-0"
        entries = cast(list[Entry], await self.client.xrange(LESSONS, min=f"({cursor}", count=500))
        queued = 0
        done: str | None = None
        for entry_id, fields in entries:
            statements = await self._lesson_statements(xapi, fields)
            if statements is None:
                break  # in the order they happened: the lessons' events after it wait for it, a few seconds at most
            queued += statements
            done = entry_id
        if done is not None or stored[0] is None:
            # Written at the first turn, events or not: the field of before is read once, not while no lesson comes.
            await self.client.hset(OUTBOX_CURSORS, LESSONS_CURSOR_FIELD, done or cursor)
        return queued

    async def _lesson_statements(self, xapi: XapiExport, fields: dict[str, str]) -> int | None:
        """Queues the statement of a lesson's start or end; None: it ended less than SUMMARY_LAG_MS ago, its last
        frames (and so its numbers) are still on their way, as those of an interval's summary."""
        record = await self.classes.get(fields["class_id"])
        session = await self.classes.get_session(fields["class_id"], fields["session_id"]) if record else None
        if record is None or session is None:
            return 0  # the class was deleted since
        # The store writes a session's end before its "ended" event.
        ended_at_ms = session.ended_at_ms if fields["ended"] == "1" else None
        if ended_at_ms is None:
            return int(await self.outbox.enqueue(xapi.statements.lesson(record, session, False, None)))
        if now_ms() < ended_at_ms + SUMMARY_LAG_MS:
            return None
        # Its whole intervals not yet summarised first (the last one may have ended within the lag), then the whole lesson.
        queued = await self._fan_out_summaries(xapi, record, session)
        indices = await xapi.indices.over(record, session.started_at_ms, ended_at_ms)
        queued += await self.outbox.enqueue(xapi.statements.lesson(record, session, True, indices))
        await self.client.hdel(OUTBOX_CURSORS, summary_cursor_field(record.class_id, session.session_id))
        return queued

    async def _fan_out_summaries(self, xapi: XapiExport, record: ClassRecord, session: Session) -> int:
        """A statement for each whole interval of the lesson that ended (plus a lag) since the last one, up to the
        lesson's end once it ended."""
        interval = xapi.summary_interval_ms
        field = summary_cursor_field(record.class_id, session.session_id)
        # A lesson first seen long after it began (the export just switched on) is summarised from an interval or two
        # back, not from its start: the LRS gets what is happening, not a flood of the past. On the lesson's own
        # intervals (whole ones from its start): summarised again once its cursor is gone (its end handled twice: a turn
        # failed before the lessons' cursor moved), an interval has the id it had, and is queued once.
        behind = max(0, now_ms() - SUMMARY_LAG_MS - 2 * interval - session.started_at_ms)
        first = session.started_at_ms - (-behind // interval) * interval
        start = int(await self.client.hget(OUTBOX_CURSORS, field) or first)
        queued = 0
        while start + interval <= min(now_ms() - SUMMARY_LAG_MS, session.ended_at_ms or now_ms()):
            indices = await xapi.indices.interval(record, start, interval)
            queued += await self.outbox.enqueue(xapi.statements.summary(record, session, start, start + interval, indices))
            start += interval
            await self.classes.set_cursor(record.class_id, field, start)
        return queued

    async def _delivery_turn(self) -> None:
        await self.outbox.move_due(now_ms())
        free = IN_FLIGHT - len(self._in_flight)
        if free <= 0:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            return
        try:
            claimed = await self.outbox.claim(count=free, block_ms=1000)
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # No queue or no group of senders: the first start on this Redis, or deleted since (a FLUSHDB, a restore
            # of a backup from before). Made in the turn, which is retried whatever fails, so that it never stops the
            # worker; the group reads the queue from its start, messages queued meanwhile included.
            await self.outbox.ensure_group()
            return
        for entry_id, message in claimed:
            limit = IN_FLIGHT_PER_FAILING_TARGET if message.target in self._failing else IN_FLIGHT // 2
            if self._in_flight_to[message.target] >= limit:
                # Tried again once one of those may have ended (one attempt's time limit), behind no other target.
                await self.outbox.defer(entry_id, message, now_ms() + int(self.webhook_sender.timeout_s * 1000))
                continue
            self._in_flight_to[message.target] += 1
            delivery = asyncio.create_task(self._deliver(entry_id, message))
            self._in_flight.add(delivery)
            delivery.add_done_callback(functools.partial(self._delivery_done, target=message.target))

    def _delivery_done(self, delivery: asyncio.Task[None], target: str) -> None:
        self._in_flight.discard(delivery)
        self._in_flight_to[target] -= 1
        if not self._in_flight_to[target]:
            del self._in_flight_to[target]
        if not delivery.cancelled() and delivery.exception() is not None:
            # What it was doing is still in Redis (its entry pending here), to be taken over and tried again.
            log.error("outbox: delivery failed", exc_info=delivery.exception())

    async def _send(self, message: Message) -> SendResult | None:
        """None: nothing to send it to, or nothing of it may leave now. What was queued is checked again against its
        class as it is now: a message waits for its retries for as long as its receiver is down, and meanwhile its
        class may have been deleted or switched to presence-only ("off from that moment at every stage")."""
        if message.target == XAPI_TARGET:
            if self.xapi is None:
                return None
            statement = self.xapi.statements.as_sent_now(message, await self.classes.get(statement_class(message)))
            return None if statement is None else await self.xapi.sender.send(statement)
        hook = await self.hooks.get(message.target.removeprefix("webhook:"))
        if hook is None:
            return None
        record = await self.classes.get(alert_message_class(message.message_id))
        event = AlertEvent.model_validate(json.loads(message.body)["data"])
        if record is None or not event.shown_for(self._emotions_on(record)):
            return None
        return await self.webhook_sender.send(hook, message.message_id, message.body)

    async def _deliver(self, entry_id: str, message: Message) -> None:
        if await self.outbox.already_sent(message):
            await self.outbox.drop(entry_id)  # a crash came between sending and recording it
            return
        result = await self._send(message)
        kind = message.target.split(":", 1)[0]
        if result is None:
            await self.outbox.drop(entry_id)
            ATTEMPTS.labels(kind, "dropped").inc()
            return
        # A refusal is an answer: the receiver is up, its other messages need not wait.
        (self._failing.discard if result.ok or result.refused else self._failing.add)(message.target)
        at = now_ms()
        attempt = Attempt(
            message_id=message.message_id, type=message.type, attempt=message.attempt, outcome="delivered",
            http_status=result.http_status, error=result.error, at_ms=at,
        )
        if result.ok:
            await self.outbox.delivered(entry_id, message, attempt)
        elif result.refused or message.attempt >= self.max_attempts:
            attempt = attempt.model_copy(update={"outcome": "dead"})
            await self.outbox.dead_letter(entry_id, message, attempt)
            log.warning("outbox: message dead-lettered", extra={
                "target": message.target, "message_id": message.message_id, "http_status": result.http_status, "error": result.error,
            })
        else:
            due = at + int(self.backoff_s(message.attempt) * 1000)
            attempt = attempt.model_copy(update={"outcome": "retrying", "next_attempt_at_ms": due})
            await self.outbox.reschedule(entry_id, message, due, attempt)
        ATTEMPTS.labels(kind, attempt.outcome).inc()
