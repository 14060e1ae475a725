"""Aggregator writes and API reads against the real Redis Stack: counts exact, redelivery ignored, compactions right."""

import time
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as aioredis

from classpulse_aggregator.alerts import AlertEvaluator, AlertRule
from classpulse_aggregator.writer import SeriesWriter, Written
from classpulse_api.app import create_app
from classpulse_api.events import EventLog
from classpulse_api.settings import ApiSettings
from classpulse_core.alerts import AlertEvent, events_key
from classpulse_core.labels import EMOTIONS
from classpulse_core.schemas import MAX_FACES, FrameResult
from classpulse_core.settings import StorageSettings
from classpulse_core.timeseries import series_key
from classpulse_store.registry import ClassDirectory, ClassRecord, class_key
from classpulse_web.auth import new_key

pytestmark = pytest.mark.integration

HAPPY = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
SPLIT = [0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0]


def result(class_id: str, sequence: int, at_ms: int, faces: list[list[float]] | None, boxes: int | None = None) -> FrameResult:
    count = boxes if boxes is not None else len(faces)
    return FrameResult(
        class_id=class_id, source_id="cam", frame_id=f"cam:{sequence}", sequence=sequence, captured_at_ms=at_ms,
        completed_at_ms=at_ms + 50, boxes=[[10 * i, 0, 10, 10] for i in range(count)], probabilities=faces,
    )


def hour_writer(redis_client) -> SeriesWriter:
    """A writer keeping raw points for an hour."""
    return SeriesWriter(redis_client, StorageSettings(raw_retention_ms=3_600_000).resolutions(), dedup_window_s=600)


def applied(writes) -> int:
    """How many frames of a batch were counted now (not redeliveries, not refused)."""
    return sum(write.outcome is Written.NEW for write in writes)


def register(redis_client, class_id: str, **fields) -> None:
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id, **fields).to_hash())


ADMIN_KEY = new_key()[1]


@pytest.fixture
def api(infra):
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=ADMIN_KEY)
    app = create_app(settings)
    return app


@asynccontextmanager
async def class_created(app, class_id: str, expected_students: int):
    """An admin's client of the API, with the class made."""
    async with admin_client(app) as client:
        created = await client.post("/v1/classes", json={"class_id": class_id, "expected_students": expected_students})
        assert created.status_code == 201, created.text
        yield client


@asynccontextmanager
async def admin_client(app):
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as client:
            yield client


def test_writes_are_idempotent_and_sums_exact(redis_client, class_id):
    writer = hour_writer(redis_client)
    register(redis_client, class_id)
    now = int(time.time() * 1000) // 1000 * 1000 - 60_000
    batch = [
        result(class_id, 0, now + 100, [HAPPY, SPLIT]),
        result(class_id, 1, now + 600, [HAPPY]),  # same second: sums add up
        result(class_id, 2, now + 1500, []),  # nobody on camera is still a frame
    ]
    assert applied(writer.write(batch)) == 3
    assert [w.outcome for w in writer.write(batch)] == [Written.DUPLICATE] * 3  # redelivery changes nothing
    assert applied(writer.write([batch[1], result(class_id, 3, now + 2100, [SPLIT])])) == 1
    ts = redis_client.ts()
    assert ts.range(series_key(class_id, "frames"), "-", "+") == [(now, 2.0), (now + 1000, 1.0), (now + 2000, 1.0)]
    assert ts.range(series_key(class_id, "faces"), "-", "+") == [(now, 3.0), (now + 1000, 0.0), (now + 2000, 1.0)]
    assert ts.range(series_key(class_id, "emotion.happy"), "-", "+")[0] == (now, 2.5)
    # Labels are for operators' own TS.MRANGE (the services read series by name): every series of the class carries
    # them, at every resolution.
    for resolution in ("1s", "10s", "1m", "1h"):
        found = redis_client.execute_command("TS.QUERYINDEX", "app=classpulse", f"class_id={class_id}", "metric=frames", f"resolution={resolution}")
        assert found == [series_key(class_id, "frames", resolution)]


def test_compaction_sums_closed_buckets(redis_client, class_id):
    writer = hour_writer(redis_client)
    register(redis_client, class_id)
    start = (int(time.time() * 1000) // 60_000 - 5) * 60_000
    writer.write([result(class_id, i, start + i * 1000, [HAPPY]) for i in range(25)])
    compacted = redis_client.ts().range(series_key(class_id, "faces", "10s"), "-", "+")
    # Buckets [0,10) and [10,20) are closed by the later samples; [20,25) is still open.
    assert compacted == [(start, 10.0), (start + 10_000, 10.0)]


def test_presence_only_frames_create_no_emotion_series(redis_client, class_id):
    writer = hour_writer(redis_client)
    register(redis_client, class_id)
    writer.write([result(class_id, 0, int(time.time() * 1000) - 5000, None, boxes=3)])
    keys = {key.decode() for key in redis_client.scan_iter(match=f"*{{{class_id}}}*")}
    assert series_key(class_id, "faces") in keys
    assert not any("emotion" in key for key in keys)


@pytest.mark.anyio
async def test_api_reports_what_was_written(redis_client, class_id, api):
    writer = hour_writer(redis_client)
    start = (int(time.time() * 1000) // 10_000 - 30) * 10_000
    async with class_created(api, class_id, 4) as client:
        writer.write([result(class_id, i, start + i * 1000, [HAPPY, SPLIT] if i < 20 else [SPLIT]) for i in range(30)])
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start})).json()
        # One room camera, a frame a second: 2 faces for 20 s, 1 for 9 s until the last frame, whose face is then
        # held for the presence window.
        window_s = writer.presence_window_ms / 1000
        assert summary["on_camera"] == pytest.approx((40 + 9 + window_s) / (29 + window_s))
        assert summary["presence"] == pytest.approx(summary["on_camera"] / 4)
        # Default range: from the class's registration, which came after these samples.
        assert (await client.get(f"/v1/classes/{class_id}/summary")).json()["frames"] == 0
        assert (summary["frames"], summary["faces"]) == (30, 50)
        # The raw mean of the probabilities is exact; `emotions` corrects it (test_share_correction_api.py).
        assert summary["emotions_raw"]["happy"] == pytest.approx((20 * 1.5 + 10 * 0.5) / 50)
        assert summary["emotions_raw"]["sad"] == pytest.approx((20 * 0.5 + 10 * 0.5) / 50)
        assert summary["dominant_emotion"] == "happy" and summary["emotion_enabled"] is True
        assert sum(summary["emotions"][e] for e in EMOTIONS) == pytest.approx(1.0)

        window = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start + 20_000, "to": start + 29_999})).json()
        assert (window["frames"], window["faces"]) == (10, 10)
        assert window["emotions_raw"]["happy"] == pytest.approx(0.5)

        series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 29_999, "bucket": "10s"})).json()
        assert [(p["t"], p["frames"], p["faces"]) for p in series["points"]] == [
            (start, 10, 20), (start + 10_000, 10, 20), (start + 20_000, 10, 10)
        ]
        assert series["points"][2]["emotions_raw"]["sad"] == pytest.approx(0.5)

        chosen = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 29_999, "metrics": "faces,mood_index"})).json()
        assert [set(p) for p in chosen["points"]] == [{"t", "time", "faces", "mood_index"}] * 3
        assert [p["faces"] for p in chosen["points"]] == [20, 20, 10]
        unknown = await client.get(f"/v1/classes/{class_id}/timeseries", params={"metrics": "faces,happiness"})
        assert unknown.status_code == 422 and "happiness" in unknown.json()["error"]["message"]

        missing = await client.get("/v1/classes/nobody-here/summary")
        assert missing.status_code == 404 and missing.json()["error"]["status"] == 404
        bad = await client.get(f"/v1/classes/{class_id}/summary", params={"from": "last tuesday"})
        assert bad.status_code == 422 and "ISO 8601" in bad.json()["error"]["message"]
        assert (await client.get("/v1/classes/bad%20id/summary")).status_code == 422
        assert (await client.get("/readyz")).status_code == 200


@pytest.mark.anyio
async def test_deleting_a_class_removes_everything_kept_about_it(redis_client, class_id, api):
    writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
    async with admin_client(api) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id})).status_code == 201
        writer.write([result(class_id, i, int(time.time() * 1000) - 5000 + i * 1000, [HAPPY]) for i in range(3)])
        await client.post(f"/v1/classes/{class_id}/sessions", json={"name": "lesson"})
        redis_client.xadd(events_key(class_id), AlertEvent(class_id=class_id, kind="started", index="presence", value=0.1, threshold=0.5, t=1).to_fields())
        events = (await client.get(f"/v1/classes/{class_id}/events")).json()
        assert events["total"] == 1 and events["items"][0]["index"] == "presence"
        assert len(list(redis_client.scan_iter(match=f"*{{{class_id}}}*"))) > 10

        assert (await client.delete(f"/v1/classes/{class_id}")).status_code == 204
        assert list(redis_client.scan_iter(match=f"*{{{class_id}}}*")) == []
        assert redis_client.zscore("classes", class_id) is None
        assert (await client.get(f"/v1/classes/{class_id}/summary")).status_code == 404


def test_an_index_past_its_threshold_long_enough_raises_then_ends_an_alert(redis_client, class_id):
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id, expected_students=6).to_hash())
    writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
    rule = AlertRule(index="presence", direction="below", threshold=0.5, for_s=20)
    alerts = AlertEvaluator(redis_client, ClassDirectory(redis_client), (rule,), window_s=5, interval_s=1)
    start = (int(time.time() * 1000) // 1000 - 120) * 1000
    events = []
    for second in range(60):
        faces = 1 if second < 40 else 6  # most of the class away for 40 s, then back
        writer.write([result(class_id, second, start + second * 1000, [HAPPY] * faces)])
        events += alerts.observe({class_id: start + second * 1000})
    assert [(e.kind, e.index) for e in events] == [("started", "presence"), ("ended", "presence")]
    started, ended = events
    assert started.value == pytest.approx(1 / 6) and 20_000 <= started.t - start <= 26_000
    assert 40_000 <= ended.t - start <= 46_000
    stored = redis_client.xrange(events_key(class_id))
    assert [fields[b"kind"] for _id, fields in stored] == [b"started", b"ended"]


def posed(class_id: str, source: str, sequence: int, at_ms: int, facing: list[bool | None] | None, kind: str = "room",
          sides: list[int] | None = None) -> FrameResult:
    """A presence-only frame whose faces (of `sides` px, default 10) carry these facing flags."""
    sides = sides or [10] * len(facing or [])
    return FrameResult(
        class_id=class_id, source_id=source, frame_id=f"{source}:{sequence}", sequence=sequence, captured_at_ms=at_ms,
        completed_at_ms=at_ms + 50, boxes=[[20 * i, 0, side, side] for i, side in enumerate(sides)], facing=facing,
        camera_kind=kind,
    )


@pytest.mark.anyio
async def test_the_share_facing_the_screen_is_stored_and_served_like_presence(redis_client, class_id, api):
    writer = hour_writer(redis_client)
    now = int(time.time() * 1000)
    start = (now // 10_000 - 2) * 10_000
    async with admin_client(api) as client:
        created = await client.post(
            "/v1/classes", json={"class_id": class_id, "expected_students": 3, "emotion_enabled": False}
        )
        assert created.status_code == 201, created.text
        # Before the lesson, a minute back: Haar faces only (no landmarks) and a producer from before head pose.
        early = start - 60_000
        writes = writer.write(
            [posed(class_id, "cam", i, early + i * 1000, [None, None]) for i in range(5)]
            + [posed(class_id, "old", i, early + i * 1000, None, sides=[10]) for i in range(5)]
        )
        assert applied(writes) == 10
        # The lesson: a room camera whose three faces are facing, turned away and without a pose (Haar would give
        # that mix with a BlazeFace room: here the flags are what the detector sent); one student's own webcam
        # showing the student (large, facing for 10 s, then turned away) and someone small passing behind.
        frames = []
        for i in range(20):
            frames.append(posed(class_id, "cam", 100 + i, start + i * 1000, [True, False, None]))
            frames.append(posed(class_id, "webcam", i, start + i * 1000, [i < 10, False], "personal", sides=[150, 40]))
        assert applied(writer.write(frames)) == 40
        assert applied(writer.write(frames)) == 0  # redelivered: nothing moves

        before = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": early, "to": early + 4_999})).json()
        assert before["on_camera"] > 0 and before["facing_screen"] is None  # faces, but none with a pose

        series = (await client.get(
            f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 19_999, "bucket": "10s"}
        )).json()
        # Room: 1 facing of 2 with a pose; webcam: its student (the largest face) facing, then not.
        assert [p["facing_screen"] for p in series["points"]] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
        assert series["emotion_enabled"] is False and all(p["emotions"] is None for p in series["points"])

        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 19_999})).json()
        assert summary["facing_screen"] == pytest.approx(0.5)
        assert summary["on_camera"] == pytest.approx(4)  # 3 room faces + 1 student on a personal camera

        live = (await client.get(f"/v1/classes/{class_id}/live")).json()  # held: the webcam's student still turned away
        assert live["facing_screen"] == pytest.approx(1 / 3)
        assert redis_client.exists(series_key(class_id, "facing"), series_key(class_id, "posed")) == 2


@pytest.mark.anyio
async def test_a_hall_counts_the_faces_beyond_those_a_message_carries_present_with_no_emotion(redis_client, class_id, api):
    """A frame of more faces than a message carries counted only the MAX_FACES largest: a hall of 300 read 256."""
    writer = hour_writer(redis_client)
    start = (int(time.time() * 1000) // 10_000 - 2) * 10_000
    async with class_created(api, class_id, 320) as client:
        hall = [result(class_id, i, start + i * 1000, [HAPPY] * MAX_FACES).model_copy(update={"faces_beyond": 44})
                for i in range(10)]
        assert applied(writer.write(hall)) == 10
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 9_999})).json()
    assert summary["faces"] == 3000 and summary["on_camera"] == pytest.approx(300)
    assert summary["classified_faces"] == 2560 and summary["classified_share"] == pytest.approx(256 / 300)
    assert summary["emotions_raw"]["happy"] == pytest.approx(1.0)


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", [2, 3])
async def test_the_live_feed_reads_every_new_alert_event_under_either_redis_protocol(redis_client, redis_url, class_id, protocol):
    # The API's clients speak RESP3, where redis-py wraps each stream's entries in a list of one: reading that as
    # RESP2's pairs failed every tick an event was waiting, and the live page never got its alerts.
    client = aioredis.from_url(redis_url, decode_responses=True, protocol=protocol)
    try:
        log = EventLog(client)
        events = [AlertEvent(class_id=class_id, kind=kind, index="presence", value=0.2, threshold=0.5, t=1000 + n)
                  for n, kind in enumerate(("started", "ended"))]
        for event in events:
            redis_client.xadd(events_key(class_id), event.to_fields())
        new, last_id = await log.wait_new(class_id, "0-0", block_ms=100)
        assert [(e.kind, e.t) for e in new] == [("started", 1000), ("ended", 1001)]
        assert last_id == new[-1].event_id
        assert await log.wait_new(class_id, last_id, block_ms=50) == ([], last_id)
    finally:
        await client.aclose()
