"""Live views shared by their viewers: in each API process, one feed per class reads Redis for all its viewers.

Every second a class's feed reads the sums of the latest window (one pipelined read for every window its viewers asked,
see SeriesReader.window_totals) and, in between, waits for the class's new alert events (one blocking XREAD at a
time); each viewer gets what it asked for from the same reads. So a class costs Redis the same with one viewer or
a thousand. A feed starts with its class's first viewer and stops with its last. A Redis error (a failover) skips
a tick: the viewers' streams stay open and carry on with the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from classpulse_api.events import EventLog
from classpulse_api.series import SeriesReader, Sums
from classpulse_core.alerts import AlertEvent

log = logging.getLogger(__name__)

TICK_S = 1.0
PENDING_UPDATES = 30
"""Updates kept for a viewer that reads slower than they come; past that its oldest are dropped (its alerts stay
listed at /events)."""


@dataclass(frozen=True)
class LiveUpdate:
    at_ms: int
    events: tuple[AlertEvent, ...] = ()
    totals: Sums | None = None
    """The sums of the viewer's window; None in an update that only brings alert events."""


@dataclass(eq=False)
class Viewer:
    window_s: int
    updates: asyncio.Queue[LiveUpdate] = field(default_factory=lambda: asyncio.Queue(PENDING_UPDATES))

    def deliver(self, update: LiveUpdate) -> None:
        if self.updates.full():
            self.updates.get_nowait()
        self.updates.put_nowait(update)


class ClassFeed:
    def __init__(self, class_id: str, reader: SeriesReader, events: EventLog) -> None:
        self.class_id = class_id
        self.reader = reader
        self.events = events
        self.viewers: set[Viewer] = set()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        last_event_id = None
        next_tick = time.monotonic()
        while True:
            try:
                wait_ms = max(1, int((next_tick - time.monotonic()) * 1000))
                new, last_event_id = await self.events.wait_new(self.class_id, last_event_id, block_ms=wait_ms)
                if new:
                    self._deliver(functools.partial(_events_update, tuple(new)))
                if time.monotonic() < next_tick:
                    continue
                next_tick = max(next_tick + TICK_S, time.monotonic())
                now = _now_ms()
                # The viewers of this read: one who joins while it runs (with a window it did not read) gets the next.
                reading = list(self.viewers)
                totals = await self.reader.window_totals(self.class_id, now - now % 1000, {viewer.window_s for viewer in reading})
                self._deliver(functools.partial(_totals_update, now, totals), [v for v in reading if v in self.viewers])
            except Exception as exc:  # noqa: BLE001 - a feed that died would leave its viewers waiting for ever
                if isinstance(exc, aioredis.RedisError):
                    log.warning("live feed: Redis unavailable, skipping a tick", extra={"class_id": self.class_id, "error": repr(exc)})
                else:
                    log.exception("live feed: tick failed", extra={"class_id": self.class_id})
                await asyncio.sleep(TICK_S)
                next_tick = time.monotonic()

    def _deliver(self, update_for: Callable[[Viewer], LiveUpdate], viewers: list[Viewer] | None = None) -> None:
        for viewer in list(self.viewers) if viewers is None else viewers:
            viewer.deliver(update_for(viewer))


class LiveBroadcaster:
    def __init__(self, reader: SeriesReader, events: EventLog) -> None:
        self.reader = reader
        self.events = events
        self.feeds: dict[str, ClassFeed] = {}

    @contextlib.asynccontextmanager
    async def watch(self, class_id: str, window_s: int) -> AsyncIterator[asyncio.Queue[LiveUpdate]]:
        """The updates of a class for a viewer of the latest `window_s` seconds, while the block runs."""
        feed = self.feeds.get(class_id)
        if feed is None:
            feed = self.feeds[class_id] = ClassFeed(class_id, self.reader, self.events)
        viewer = Viewer(window_s)
        feed.viewers.add(viewer)
        if feed.task is None:
            feed.task = asyncio.create_task(feed.run(), name=f"live feed {class_id}")
        try:
            yield viewer.updates
        finally:
            feed.viewers.discard(viewer)
            if not feed.viewers:
                # Not awaited: the viewer's own task may be being cancelled (its client went away), and the feed's
                # cancellation needs nothing from it.
                del self.feeds[class_id]
                feed.task.cancel()

    async def close(self) -> None:
        for feed in list(self.feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.task
        self.feeds.clear()


def _events_update(events: tuple[AlertEvent, ...], _viewer: Viewer) -> LiveUpdate:
    return LiveUpdate(_now_ms(), events=events)


def _totals_update(at_ms: int, totals: dict[int, Sums], viewer: Viewer) -> LiveUpdate:
    return LiveUpdate(at_ms, totals=totals[viewer.window_s])


def _now_ms() -> int:
    return int(time.time() * 1000)
