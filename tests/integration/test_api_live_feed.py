"""A class's live feed on the real Redis Stack: a viewer who joins while the feed reads (asking a window the read
did not ask for) gets the next tick, and the viewers already there get this one; an open stream asks again what its
key may read: the class switched to presence-only shows no emotion from then on, and a revoked key's stream ends."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis.asyncio as aioredis

from classpulse_aggregator.writer import SeriesWriter
from classpulse_api.app import create_app
from classpulse_api.events import EventLog
from classpulse_api.live import LiveBroadcaster
from classpulse_api.routes import metrics as metric_routes
from classpulse_api.series import SeriesReader
from classpulse_api.settings import ApiSettings
from classpulse_core.alerts import AlertEvent, events_key
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import StorageSettings
from classpulse_store.registry import ClassRecord, class_key
from classpulse_web.auth import new_key

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


def _events(body: str) -> list[tuple[str, dict]]:
    import json

    events, name = [], None
    for line in body.splitlines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events


@pytest.mark.anyio
async def test_an_open_stream_follows_a_switch_to_presence_only_and_ends_when_its_key_is_revoked(
    redis_client, redis_url, class_id, monkeypatch
):
    """A stream checked its key and class once, when it opened: after the class was switched to presence-only it
    kept sending emotion shares and mood (and alerts of them), and after its key was revoked it kept streaming."""
    monkeypatch.setattr(metric_routes, "STREAM_RECHECK_S", 1.0)
    admin_key = new_key()[1]
    app = create_app(ApiSettings(redis_url=redis_url, admin_api_key=admin_key, integrations_worker=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as admin:
        created = await admin.post("/v1/classes", json={"class_id": class_id, "expected_students": 2, "teacher": "ann"})
        assert created.status_code == 201, created.text
        teacher = (await admin.post("/v1/keys", json={"role": "teacher", "teacher_id": "ann"})).json()
        now_s = int(time.time())
        SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600).write([
            FrameResult(class_id=class_id, source_id="cam", frame_id=f"cam:{n}", sequence=n, captured_at_ms=(now_s - 20 + n) * 1000,
                        completed_at_ms=(now_s - 20 + n) * 1000, boxes=[[0, 0, 10, 10]], probabilities=[[0, 0, 0, 1.0, 0, 0, 0]])
            for n in range(20)
        ])

        async def switch_then_revoke() -> None:
            await asyncio.sleep(2.5)
            assert (await admin.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": False})).status_code == 200
            await asyncio.sleep(2.5)
            mood = AlertEvent(class_id=class_id, kind="started", index="mood_index", value=-0.5, threshold=-0.3, t=int(time.time() * 1000))
            redis_client.xadd(events_key(class_id), mood.to_fields())
            await asyncio.sleep(1.5)
            assert (await admin.delete(f"/v1/keys/{teacher['key_id']}")).status_code == 204

        changes = asyncio.create_task(switch_then_revoke())
        streamed = await asyncio.wait_for(admin.get(
            f"/v1/classes/{class_id}/stream", params={"window": 60}, headers={"Authorization": f"Bearer {teacher['api_key']}"}
        ), 20)  # returns only once the stream has ended
        await changes
    live = [data for name, data in _events(streamed.text) if name == "live"]
    assert live[0]["emotions"] is not None and live[0]["mood_index"] is not None
    assert live[-1]["emotions"] is None and live[-1]["mood_index"] is None and live[-1]["frames"] == 20
    assert not [data for name, data in _events(streamed.text) if name == "alert"]  # the mood alert after the switch
