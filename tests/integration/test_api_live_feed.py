"""A class's live feed on the real Redis Stack: a viewer who joins while the feed reads (asking a window the read
did not ask for) gets the next tick, and the viewers already there get this one."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from classpulse_aggregator.writer import SeriesWriter
from classpulse_api.events import EventLog
from classpulse_api.live import LiveBroadcaster
from classpulse_api.series import SeriesReader
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import StorageSettings
from classpulse_store.registry import ClassRecord, class_key

pytestmark = pytest.mark.integration


class HeldReader(SeriesReader):
    """The real reader, whose first read of window totals waits until the test lets it return."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def window_totals(self, class_id, last_second_ms, windows_s):
        totals = await super().window_totals(class_id, last_second_ms, windows_s)
        if not self.release.is_set():
            self.reading.set()
            await self.release.wait()
        return totals


@pytest.mark.anyio
async def test_a_viewer_joining_during_a_read_gets_the_next_tick_and_the_others_this_one(redis_client, redis_url, class_id, caplog):
    """The feed read the windows of the viewers there before its read and looked up every viewer's after it: one who
    joined in between (a window not read) failed the tick for everyone (a KeyError, logged, and a second lost)."""
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id, expected_students=2).to_hash())
    now_s = int(time.time())
    writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
    writer.write([
        FrameResult(class_id=class_id, source_id="cam", frame_id=f"cam:{n}", sequence=n, captured_at_ms=(now_s - 5 + n) * 1000,
                    completed_at_ms=(now_s - 5 + n) * 1000, boxes=[[0, 0, 10, 10]] * 2)
        for n in range(5)
    ])
    settings = StorageSettings()
    async with aioredis.Redis.from_url(redis_url) as client:
        reader = HeldReader(client, settings.resolutions(), settings.newest_sample_lead_ms())
        live = LiveBroadcaster(reader, EventLog(client))
        try:
            async with live.watch(class_id, 10) as first:
                await asyncio.wait_for(reader.reading.wait(), 10)
                async with live.watch(class_id, 30) as joined:
                    reader.release.set()
                    update = await asyncio.wait_for(first.get(), 10)
                    assert update.totals is not None and update.totals["frames"] == 5
                    later = await asyncio.wait_for(joined.get(), 10)
                    assert later.totals is not None and later.totals["frames"] == 5 and later.at_ms > update.at_ms
        finally:
            await live.close()
    assert not [r for r in caplog.records if r.name == "classpulse_api.live" and r.levelname == "ERROR"]
