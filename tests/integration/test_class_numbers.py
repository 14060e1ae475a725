"""The numbers a teacher reads, against what was sent, on the real Redis Stack: presence of webcam classes, room
cameras and both; lessons read back after their raw seconds expired and months of roll-ups; the lawful switch while
results are in flight; refused writes that are never counted as duplicates."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis

from classpulse_aggregator.alerts import AlertEvaluator, AlertRule
from classpulse_aggregator.stage import AggregateResults
from classpulse_aggregator.writer import SeriesWriter, Written
from classpulse_api.app import create_app
from classpulse_api.series import SeriesReader
from classpulse_api.settings import ApiSettings
from classpulse_api.timeparams import parse_instant
from classpulse_api.xapi import LessonIndices
from classpulse_core.alerts import AlertEvent, events_key
from classpulse_core.labels import EMOTIONS
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import StorageSettings
from classpulse_core.share_correction import ShareCorrection
from classpulse_core.timeseries import Resolution, series_key
from classpulse_store.classkeys import alert_state_key, class_presence_key
from classpulse_store.registry import ClassDirectory, ClassRecord, class_key
from classpulse_stream import metrics
from classpulse_stream.stage import Delivery, Reject
from classpulse_web.auth import new_key

pytestmark = pytest.mark.integration

HAPPY = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
ADMIN_KEY = new_key()[1]
WINDOW_MS = 12_000
SNAPSHOT_MS = 5_000


def frame(
    class_id: str, source: str, sequence: int, at_ms: int, faces: int, camera: str, emotions: bool = True,
    face: list[float] = HAPPY,
) -> FrameResult:
    return FrameResult(
        class_id=class_id, source_id=source, frame_id=f"{source}:{sequence}", sequence=sequence, captured_at_ms=at_ms,
        camera_kind=camera, completed_at_ms=at_ms + 50, boxes=[[10 * i, 0, 10, 10] for i in range(faces)],
        probabilities=[face] * faces if emotions else None,
    )


def webcam_snapshots(class_id: str, student: int, start_ms: int, seconds: range, face: bool = True) -> list[FrameResult]:
    """One student page: a snapshot every 5 s over `seconds` (offsets from start), staggered per student."""
    source = f"student-{student}"
    return [
        frame(class_id, source, at // 1000, start_ms + at + 317 * student, 1 if face else 0, "personal")
        for at in range(seconds.start * 1000, seconds.stop * 1000, SNAPSHOT_MS)
    ]


def make_writer(redis_client, **storage) -> SeriesWriter:
    return SeriesWriter(redis_client, StorageSettings(**storage).resolutions(), 3600, WINDOW_MS)


@asynccontextmanager
async def api_client(infra, **storage):
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=ADMIN_KEY, **storage)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as client:
            yield client


def write_all(writer: SeriesWriter, results: list[FrameResult]) -> None:
    writes = writer.write(sorted(results, key=lambda r: r.captured_at_ms))
    assert {w.outcome for w in writes} == {Written.NEW}, writes


def seconds_ago(seconds: int) -> int:
    return (int(time.time()) - seconds) // 10 * 10_000


async def bucket_presence(client, class_id: str, start: int, end: int) -> dict[int, float]:
    series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": end, "bucket": "10s"})).json()
    return {(p["t"] - start) // 1000: p["presence"] for p in series["points"]}


def frame_delivery(class_id: str, source: str, kind: str, n: int, at_ms: int, image: np.ndarray) -> Delivery:
    """A picture as the detector consumes it: a JPEG frame of `kind`'s camera, the `n`th of its source."""
    import cv2

    from classpulse_core.schemas import Frame

    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    message = Frame(class_id=class_id, source_id=source, frame_id=f"{source}:{n}", sequence=n, captured_at_ms=at_ms,
                    published_at_ms=at_ms, width=image.shape[1], height=image.shape[0], jpeg=jpeg, camera_kind=kind)
    return Delivery("classpulse.frames", 0, n, message.key, message.encode(), message)


def aggregate_all(redis_client, results: list[FrameResult]) -> None:
    """The aggregator stage over `results`, each written (none refused)."""
    aggregate = AggregateResults(make_writer(redis_client), AlertEvaluator(redis_client, ClassDirectory(redis_client), ()), 60_000)
    assert aggregate([Delivery("classpulse.predictions", 0, n, None, b"", r) for n, r in enumerate(results)]) == []


def detect_faces(redis_client, **settings: object):
    """The detector stage with the service's default settings (or those given): a finder per camera kind."""
    from classpulse_core.settings import KafkaSettings
    from classpulse_detector.settings import DetectorSettings
    from classpulse_detector.stage import DetectFaces

    return DetectFaces(DetectorSettings(**settings).tracking_detectors(), ClassDirectory(redis_client), KafkaSettings(), True)


@pytest.mark.anyio
async def test_a_webcam_class_reads_the_students_on_camera(redis_client, infra, class_id):
    """8 students on their own webcams, a snapshot every 5 s: presence 1.0; then 4 turn their cameras off and one
    turns away: 3 of 8 once the window of their last snapshots has run out."""
    start = seconds_ago(400)
    sent = [r for student in range(8) for r in webcam_snapshots(class_id, student, start, range(0, 60))]
    sent += webcam_snapshots(class_id, 4, start, range(60, 120), face=False)  # camera on, nobody in front of it
    sent += [r for student in (5, 6, 7) for r in webcam_snapshots(class_id, student, start, range(60, 120))]
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 8})).status_code == 201
        write_all(make_writer(redis_client), sent)
        whole = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 59_999})).json()
        assert whole["presence"] == pytest.approx(1.0, abs=0.02) and whole["on_camera"] == pytest.approx(8, abs=0.2)
        presence = await bucket_presence(client, class_id, start, start + 119_999)
        assert all(presence[second] == pytest.approx(1.0, abs=0.05) for second in (10, 20, 30, 40, 50))
        # Cameras off at 60 s still count until their last snapshot's window runs out (55-59 s + 12 s).
        assert all(presence[second] == pytest.approx(3 / 8, abs=0.01) for second in (80, 90, 100, 110))
        # The summary's denominator is the watched time: a partial last bucket weighs what it lasted.
        later = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start + 80_000, "to": start + 119_999})).json()
        assert later["presence"] == pytest.approx(3 / 8, abs=0.01) and later["faces"] == 24


@pytest.mark.anyio
async def test_room_cameras_count_every_face_and_add_up_with_webcams(redis_client, infra, class_id):
    start = seconds_ago(300)
    room = [frame(class_id, "room-cam", n, start + n * 500, 5, "room") for n in range(120)]  # 2 frames/s, 60 s
    webcams = [r for student in range(3) for r in webcam_snapshots(class_id, student, start, range(0, 60))]
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 10})).status_code == 201
        write_all(make_writer(redis_client), room + webcams)
        presence = await bucket_presence(client, class_id, start, start + 59_999)
        assert all(presence[second] == pytest.approx(0.8, abs=0.03) for second in (10, 20, 30, 40, 50))
        assert (await client.patch(f"/v1/classes/{class_id}", json={"expected_students": 6})).status_code == 200
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start + 10_000, "to": start + 49_999})).json()
        assert summary["presence"] == 1.0 and summary["on_camera"] == pytest.approx(8, abs=0.25)


@pytest.mark.anyio
async def test_the_live_view_reads_zero_once_every_camera_is_gone(redis_client, infra, class_id):
    now_s = int(time.time())
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 4})).status_code == 201
        writer = make_writer(redis_client)
        # Four webcams up to a minute ago, then nothing: gone, not "no data".
        write_all(writer, [r for s in range(4) for r in webcam_snapshots(class_id, s, (now_s - 120) * 1000, range(0, 60))])
        gone = (await client.get(f"/v1/classes/{class_id}/live", params={"window": 10})).json()
        assert (gone["presence"], gone["on_camera"]) == (0.0, 0.0)
        # A snapshot 6 s ago counts for 12 s: the whole latest 5-s window sees the student.
        write_all(writer, [frame(class_id, "student-9", 1, (int(time.time()) - 6) * 1000, 1, "personal")])
        back = (await client.get(f"/v1/classes/{class_id}/live", params={"window": 5})).json()
        assert (back["on_camera"], back["presence"]) == (1.0, 0.25)


@pytest.mark.anyio
async def test_a_lesson_reads_the_same_after_its_raw_seconds_expired(redis_client, infra, class_id):
    """Raw seconds kept 60 s: read back four minutes later, the lesson comes from the 10-s roll-up, its last
    (still open) bucket included, with the same frames and faces."""
    start = seconds_ago(300) + 3_000
    lesson = [frame(class_id, "cam", n, start + n * 500, 1 + n % 3, "room") for n in range(73)]  # ends mid-bucket
    async with api_client(infra, raw_retention_ms=60_000) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 3})).status_code == 201
        write_all(make_writer(redis_client, raw_retention_ms=60_000), lesson)
        summary = await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 36_000})
        assert summary.status_code == 200, summary.text
        body = summary.json()
        assert (body["frames"], body["faces"]) == (73, sum(len(r.boxes) for r in lesson))
        assert body["coverage"]["bucket_ms"] == 10_000 and body["coverage"]["resolutions"] == ["10s"]
        series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 36_000, "bucket": "1s"})).json()
        assert series["bucket"] == "10s" and sum(p["frames"] for p in series["points"]) == 73
    async with api_client(infra) as client:  # the same lesson where the raw seconds still hold it
        fresh = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 36_000})).json()
        assert fresh["coverage"]["resolutions"] == ["1s"] and (fresh["frames"], fresh["faces"]) == (body["frames"], body["faces"])


@pytest.mark.anyio
async def test_a_lesson_that_just_ended_reads_its_whole_presence_at_the_edge_of_the_raw_seconds(redis_client, infra, class_id):
    """RedisTimeSeries trims a series behind its own newest sample, and `present` and `observed` run a presence
    window ahead of the last frame: raw seconds kept 60 s hold them only from 48 s before now. A lesson that ended
    a moment ago, read with its start past the raw retention, read its presence without its seconds from 60 to 48 s
    ago (a room camera showing 1, 3, then 1 face read 1.25 to 1.48 students on camera, by the second, for 1.5)."""
    start = seconds_ago(80)
    faces = [1] * 40 + [3] * 40 + [1] * 80  # a frame every 500 ms for 80 s: 20 s of 1 face, 20 s of 3, 40 s of 1
    lesson = [frame(class_id, "cam", n, start + n * 500, count, "room") for n, count in enumerate(faces)]
    async with api_client(infra, raw_retention_ms=60_000) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 3})).status_code == 201
        write_all(make_writer(redis_client, raw_retention_ms=60_000), lesson)
        body = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 79_999})).json()
    assert (body["frames"], body["faces"]) == (160, 240)
    assert body["on_camera"] == pytest.approx((20 * 1 + 20 * 3 + 40 * 1) / 80), body["coverage"]


@pytest.mark.anyio
async def test_a_range_ends_with_the_whole_bucket_it_ends_in_whichever_series_serves_it(redis_client, infra, class_id):
    """A roll-up's sample holds its whole bucket, so a range read from one counts up to that bucket's end: the reply
    says so, as it says a range starts with the whole bucket it starts in. Before, it said the range ended where it
    was asked to while counting to the bucket's end, only where a roll-up served it: a 36-s range read 36 frames
    from the raw seconds, 60 from the 1-min roll-up and 300 from the hourly one, each reply ending at 35.5 s."""
    hour = 3_600_000
    lesson_start = (int(time.time() * 1000) // hour - 1) * hour + 600_000  # 10 min into the last whole hour
    lesson = [frame(class_id, "cam", n, lesson_start + n * 1000, 1, "room") for n in range(300)]
    asked = {"from": lesson_start, "to": lesson_start + 35_500}
    served_by = {  # the finest series still holding the range, as a deployment keeping less would read it
        "1s": {}, "10s": {"raw_retention_ms": 60_000},
        "1m": {"raw_retention_ms": 60_000, "retention_10s_ms": 60_000},
        "1h": {"raw_retention_ms": 60_000, "retention_10s_ms": 60_000, "retention_1m_ms": 60_000},
    }
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 1})).status_code == 201
    write_all(make_writer(redis_client), lesson)
    counted = {}
    for name, storage in served_by.items():
        async with api_client(infra, **storage) as client:
            body = (await client.get(f"/v1/classes/{class_id}/summary", params=asked)).json()
        start, end, bucket = parse_instant(body["start"]), parse_instant(body["end"]), body["coverage"]["bucket_ms"]
        assert body["coverage"]["resolutions"] == [name], body["coverage"]
        assert start <= asked["from"] and end >= asked["to"] and (end + 1) % bucket == 0 and start % bucket == 0
        assert body["frames"] == sum(start <= r.captured_at_ms <= end for r in lesson), (name, body["start"], body["end"])
        counted[name] = body["frames"]
    assert counted == {"1s": 36, "10s": 40, "1m": 60, "1h": 300}


@pytest.mark.anyio
async def test_a_timeseries_of_exactly_the_point_cap_keeps_its_first_bucket_and_one_more_is_refused(redis_client, infra, class_id):
    """With CLASSPULSE_MAX_POINTS 10, 10 s buckets from 0 to 100 s are 11 (the end is included): that range is
    refused, where it used to come back as the last 10 buckets under a start that named the first."""
    start = seconds_ago(300)
    async with api_client(infra, max_points=10) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 1})).status_code == 201
        write_all(make_writer(redis_client), [frame(class_id, "cam", n, start + n * 10_000, 1, "room") for n in range(11)])
        ten = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 99_999, "bucket": "10s"})).json()
        assert [p["t"] - start for p in ten["points"]] == [n * 10_000 for n in range(10)]
        assert parse_instant(ten["start"]) == start and sum(p["frames"] for p in ten["points"]) == 10
        eleven = await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 100_000, "bucket": "10s"})
        assert eleven.status_code == 422 and "more than 10 buckets" in eleven.json()["error"]["message"]


@pytest.mark.anyio
async def test_a_lessons_back_to_back_xapi_intervals_count_each_second_once(redis_client, infra, class_id):
    """The LRS's interval summaries of a lesson add up to the lesson: two 5-min intervals of a frame a second read
    300 frames each. Read from start to start + interval, both ends included, they read 301 each, the second on
    their boundary in both."""
    start = seconds_ago(900)
    lesson = [frame(class_id, "cam", n, start + n * 1000, 1, "room") for n in range(600)]
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0")
    record = ClassRecord(class_id=class_id, expected_students=1)
    redis_client.hset(class_key(class_id), mapping=record.to_hash())
    write_all(make_writer(redis_client), lesson)
    async with aioredis.Redis.from_url(settings.redis_url.get_secret_value()) as client:
        reader = SeriesReader(client, settings.resolutions(), settings.newest_sample_lead_ms())
        indices = LessonIndices(reader, ShareCorrection.load(settings.quantification_path(), settings.model_signature))
        first, second = [await indices.interval(record, start + n * 300_000, 300_000) for n in range(2)]
        whole = await indices.over(record, start, start + 599_999)
    assert (first["frames"], second["frames"], whole["frames"]) == (300, 300, 600)


@pytest.mark.anyio
async def test_months_of_roll_ups_are_served_and_older_ranges_refused(redis_client, infra, class_id):
    hour = 3_600_000
    now_ms = int(time.time() * 1000)
    first_hour = (now_ms - 100 * 24 * hour) // hour * hour
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 2})).status_code == 201
        write_all(make_writer(redis_client), [frame(class_id, "cam", 0, now_ms - 60_000, 2, "room")])
        # Months of lessons as the hourly roll-up holds them (the finer roll-ups keep 30 days at most): one lesson hour
        # a day for 60 days, from 100 to 41 days ago.
        for day in range(60):
            at = first_hour + day * 24 * hour
            for metric, value in (("frames", 7200), ("faces", 14_400), ("present", 7000), ("observed", 3600), ("emotion.happy", 14_400)):
                redis_client.execute_command("TS.ADD", series_key(class_id, metric, "1h"), at, value)
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": first_hour, "to": now_ms})).json()
        assert summary["frames"] == 60 * 7200 + 1 and summary["faces"] == 60 * 14_400 + 2
        assert summary["coverage"]["bucket_ms"] == hour and "1h" in summary["coverage"]["resolutions"]
        assert summary["presence"] == pytest.approx((60 * 7000 + 12) / (60 * 3600 + 12) / 2, rel=1e-3)
        series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": first_hour, "to": now_ms, "bucket": "1m"})).json()
        assert series["bucket"] == "1h" and len(series["points"]) == 61
        # From the beginning of time: clipped to what the longest retention keeps, and the point cap still holds.
        everything = await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": 0, "bucket": "1h"})
        assert everything.status_code == 200, everything.text
        start, held = parse_instant(everything.json()["start"]), parse_instant(everything.json()["coverage"]["held_from"])
        assert 0 <= start - held < hour  # the first hour held whole
        too_many = await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": now_ms - 20 * 24 * hour, "bucket": "1s"})
        assert too_many.status_code == 422 and "more than 10000 buckets" in too_many.json()["error"]["message"]
        gone = await client.get(f"/v1/classes/{class_id}/summary", params={"from": 0, "to": now_ms - 500 * 24 * hour})
        assert gone.status_code == 422 and "kept" in gone.json()["error"]["message"]


@pytest.mark.anyio
async def test_shares_come_back_corrected_for_the_models_errors_beside_the_raw_mean(redis_client, infra, class_id):
    """Faces that read like the model's average neutral face for 10 s, then like its average happy face: the raw mean
    says about half neutral, the corrected shares all neutral, then all happy, in every view."""
    matrix = ShareCorrection.load(ApiSettings().quantification_path(), "emotion_single_pass").matrix
    neutral, happy = (matrix[EMOTIONS.index(name)].tolist() for name in ("neutral", "happy"))
    start = seconds_ago(200)
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 3})).status_code == 201
        write_all(make_writer(redis_client), [
            frame(class_id, "cam", n, start + n * 1000, 3, "room", face=neutral if n < 10 else happy) for n in range(20)
        ])
        series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start, "to": start + 19_999})).json()
        first, second = series["points"]
        assert first["emotions_raw"] == pytest.approx(dict(zip(EMOTIONS, neutral, strict=True)), abs=1e-5)  # sent as float32
        assert first["emotions_raw"]["neutral"] < 0.6
        assert first["emotions"]["neutral"] == pytest.approx(1.0, abs=1e-3)
        assert second["emotions"]["happy"] == pytest.approx(1.0, abs=1e-3) and second["emotions_raw"]["happy"] < 0.8
        # Indices are computed from the corrected shares.
        assert (first["dominant_emotion"], second["dominant_emotion"]) == ("neutral", "happy")
        assert second["mood_index"] == pytest.approx(1.0, abs=1e-3)
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": start + 19_999, "phases": 2})).json()
        assert (summary["emotions"]["neutral"], summary["emotions"]["happy"]) == pytest.approx((0.5, 0.5), abs=1e-3)
        assert summary["emotions_raw"] == pytest.approx({name: (a + b) / 2 for name, a, b in zip(EMOTIONS, neutral, happy, strict=True)}, abs=1e-5)
        assert [phase["dominant_emotion"] for phase in summary["phases"]] == ["neutral", "happy"]
        live = (await client.get(f"/v1/classes/{class_id}/live", params={"window": 3600})).json()
        assert live["emotions"] == pytest.approx(summary["emotions"], abs=1e-6)
        assert live["emotions_raw"] == pytest.approx(summary["emotions_raw"])


@pytest.mark.anyio
async def test_a_presence_only_class_lists_no_alert_of_an_emotion_index_even_from_before_its_switch(redis_client, infra, class_id):
    """`/events` listed a class's mood and attention alerts after it was switched to presence-only."""
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 4})).status_code == 201
        for n, index in enumerate(("mood_index", "presence", "attention_risk", "presence")):
            event = AlertEvent(class_id=class_id, kind="started", index=index, value=0.1, threshold=0.5, t=1_000 + n)
            redis_client.xadd(events_key(class_id), event.to_fields())
        everything = (await client.get(f"/v1/classes/{class_id}/events")).json()
        assert everything["total"] == 4
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": False})).status_code == 200
        shown = (await client.get(f"/v1/classes/{class_id}/events", params={"limit": 1, "offset": 1})).json()
    assert shown["total"] == 2 and [(e["index"], e["t"]) for e in shown["items"]] == [("presence", 1_001)]


@pytest.mark.anyio
async def test_switching_a_class_to_presence_only_holds_for_results_in_flight(redis_client, infra, class_id):
    start = seconds_ago(200)
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 2})).status_code == 201
        writer = make_writer(redis_client)
        write_all(writer, [frame(class_id, "cam", n, start + n * 1000, 2, "room") for n in range(10)])
        assert (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start})).json()["dominant_emotion"] == "happy"
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": False})).status_code == 200
        # Results classified before the switch, counted after it: their faces count, their emotions do not.
        in_flight = writer.write([frame(class_id, "cam", n, start + n * 1000, 2, "room") for n in range(10, 20)])
        assert [(w.outcome, w.reason) for w in in_flight] == [(Written.NEW, "emotions off")] * 10
        happy = redis_client.execute_command("TS.RANGE", series_key(class_id, "emotion.happy"), "-", "+", "AGGREGATION", "sum", 3_600_000)
        assert sum(float(v) for _, v in happy) == 20.0
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start})).json()
        assert summary["faces"] == 40 and summary["emotion_enabled"] is False
        assert summary["emotions"] is None and summary["emotions_raw"] is None
        assert summary["dominant_emotion"] is None and summary["mood_index"] is None
        series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={"from": start})).json()
        assert series["points"] and all(
            p.get("emotions") is None and p.get("emotions_raw") is None and p.get("mood_index") is None for p in series["points"]
        )
        live = (await client.get(f"/v1/classes/{class_id}/live", params={"window": 3600})).json()
        assert live["emotions"] is None and live["emotions_raw"] is None


@pytest.mark.anyio
async def test_a_lesson_presence_only_for_a_while_says_how_many_faces_its_shares_were_read_from(redis_client, infra, class_id):
    """A room camera shows 2 faces a second for 30 s. Emotions are on for 0-9 s, off for 10-19 s (the first two of
    those frames classified before the switch, counted after it), on again for 20-29 s (the first two of those
    detected while it was off: seen, never classified). 36 of the 60 faces were classified: every answer says so."""
    start = seconds_ago(200)
    writer = make_writer(redis_client)

    def seconds(first: int, last: int, emotions: bool) -> list[FrameResult]:
        return [frame(class_id, "cam", n, start + n * 1000, 2, "room", emotions=emotions) for n in range(first, last)]

    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 2})).status_code == 201
        write_all(writer, seconds(0, 10, emotions=True))
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": False})).status_code == 200
        write_all(writer, seconds(10, 12, emotions=True) + seconds(12, 20, emotions=False))
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": True})).status_code == 200
        write_all(writer, seconds(20, 22, emotions=False) + seconds(22, 30, emotions=True))
        lesson = {"from": start, "to": start + 29_999}
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={**lesson, "phases": 3})).json()
        assert summary["emotion_status"] == "on" and summary["emotions"]["happy"] == pytest.approx(1.0, abs=1e-3)
        assert (summary["faces"], summary["classified_faces"]) == (60, 36)
        assert summary["classified_share"] == pytest.approx(0.6)
        assert [(p["faces"], p["classified_faces"], p["classified_share"]) for p in summary["phases"]] == [
            (20, 20, pytest.approx(1.0)), (20, 0, 0.0), (20, 16, pytest.approx(0.8))
        ]
        series = (await client.get(f"/v1/classes/{class_id}/timeseries", params={**lesson, "bucket": "10s"})).json()
        assert [(p["classified_faces"], p["classified_share"]) for p in series["points"]] == [
            (20, pytest.approx(1.0)), (0, 0.0), (16, pytest.approx(0.8))
        ]
        picked = (await client.get(
            f"/v1/classes/{class_id}/timeseries", params={**lesson, "bucket": "10s", "metrics": "classified_share"}
        )).json()
        assert [set(p) for p in picked["points"]] == [{"t", "time", "classified_share"}] * 3
        live = (await client.get(f"/v1/classes/{class_id}/live", params={"window": 3600})).json()
        assert (live["classified_faces"], live["classified_share"]) == (36, pytest.approx(0.6))
        # Presence-only again: no share is shown, so neither is what it would be read from.
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": False})).status_code == 200
        off = (await client.get(f"/v1/classes/{class_id}/summary", params=lesson)).json()
        assert (off["faces"], off["classified_faces"], off["classified_share"], off["emotions"]) == (60, None, None, None)


@pytest.mark.anyio
async def test_the_classifier_reads_each_class_switch_the_moment_it_is_made(redis_client, infra, class_id):
    directory = ClassDirectory(redis_client, ttl_s=3600)  # a long cache: the switch must not depend on it
    async with api_client(infra) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id})).status_code == 201
        assert directory.get(class_id).emotion_enabled is True
        assert directory.emotion_allowed_now({class_id, "no-such-class"}) == {class_id}
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": False})).status_code == 200
        assert directory.emotion_allowed_now({class_id}) == set()
        assert (await client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": True})).status_code == 200
        assert directory.emotion_allowed_now({class_id}) == {class_id}


def test_the_seconds_a_class_was_watched_do_not_depend_on_the_order_its_cameras_frames_arrive_in(redis_client, class_id):
    """`observed` was a high-water mark: a webcam's snapshot captured 4 s before another's that was counted first
    left those 4 s unwatched while counting its student present there (2.67 students on camera of 2), and a
    recording read after a live camera counted 5 minutes present and none watched. Written in either order, the
    same frames now give the same sums."""
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id, expected_students=2).to_hash())
    start = seconds_ago(1800)
    late_upload = [frame(class_id, "student-a", 1, start + 4_000, 1, "personal"), frame(class_id, "student-b", 1, start, 1, "personal")]
    recording = [frame(class_id, "room", n, start + 60_000 + n * 1000, 3, "room") for n in range(300)]
    live = frame(class_id, "student-a", 2, start + 360_000, 1, "personal")
    writer = make_writer(redis_client)
    for batch in ([late_upload[0]], [late_upload[1]], [live], recording):
        write_all(writer, batch)

    def summed(metric: str, first_ms: int, last_ms: int) -> float:
        samples = redis_client.execute_command("TS.RANGE", series_key(class_id, metric), first_ms, last_ms - 1)
        return sum(float(v) for _, v in samples)

    # b held 12 s from +0, a 12 s from +4: the class was watched from +0 to +16 s.
    assert summed("observed", start, start + 16_000) == 16
    assert summed("present", start, start + 16_000) == pytest.approx(12 + 12)
    # The recording's 5 minutes (3 faces), read after the live frame that came later in capture time.
    assert summed("observed", start + 60_000, start + 360_000) == 300
    assert summed("present", start + 60_000, start + 360_000) == pytest.approx(900)
    # A class watched until +500 s under the former state (a high-water mark alone): taken as covered up to there.
    redis_client.delete(class_presence_key(class_id))
    redis_client.hset(class_presence_key(class_id), "until", start + 500_000)
    write_all(writer, [frame(class_id, "student-b", 2, start + 490_000, 1, "personal")])
    assert summed("observed", start + 490_000, start + 510_000) == 2
    assert redis_client.hkeys(class_presence_key(class_id)) == [b"covered"]


def _alerted_lessons(redis_client, classes: dict[str, tuple[int, Callable[[int], int]]], seconds: int, start_ms: int, **evaluator):
    """The aggregator stage over `seconds` of capture time: each class (its partition, how many of its four webcams
    are on at a second) gets a snapshot a second from each camera on; the alert events its stream holds then, as
    (class, kind, seconds from start, value)."""
    rule = AlertRule(index="presence", direction="below", threshold=0.5, for_s=30)
    alerts = AlertEvaluator(redis_client, ClassDirectory(redis_client), (rule,), window_s=10, interval_s=1, **evaluator)
    stage = AggregateResults(make_writer(redis_client), alerts, 60_000)
    for second in range(seconds):
        deliveries = [
            Delivery("classpulse.predictions", partition, second, None, b"",
                     frame(class_id, f"student-{n}", second, start_ms + second * 1000 + 100 * n, 1, "personal"))
            for class_id, (partition, cameras_on) in classes.items() for n in range(cameras_on(second))
        ]
        if deliveries:
            assert stage(deliveries) == []
    return [
        (class_id, fields[b"kind"].decode(), (int(fields[b"t"]) - start_ms) // 1000,
         float(fields[b"value"]) if b"value" in fields else None)
        for class_id in classes for _id, fields in redis_client.xrange(events_key(class_id))
    ]


def test_a_lessons_alerts_end_once_it_is_over_and_the_next_lesson_starts_clean(redis_client, class_id):
    """Three of four students leave at 60 s (presence 0.25: the alert starts), the lesson ends at 120 s (every camera
    off: no frame comes to evaluate the class on, and a silent class raises nothing: a full class's lesson ends that
    way too, and alerts nobody). The alert stayed active for
    ever, its pending state carried over to the next lesson ("started" at its first frame). Now, measured on the
    partition's other frames, it ends (value null) once the class has been idle CLASSPULSE_ALERT_IDLE_S, and the next
    lesson starts clean; a class alone on its partition keeps its alert until its own next frame ends it."""
    other, alone, full = f"{class_id}-b", f"{class_id}-c", f"{class_id}-d"
    for name in (class_id, other, alone, full):
        redis_client.hset(class_key(name), mapping=ClassRecord(class_id=name, expected_students=4).to_hash())
    start = seconds_ago(900)

    def lessons(second: int) -> int:  # a lesson, three leaving at 60 s, over at 120 s; the next from 300 s
        return 4 if second < 60 or second >= 300 else 1 if second < 120 else 0

    classes = {
        class_id: (0, lessons), other: (0, lambda second: 4), alone: (1, lambda second: lessons(second) if second < 300 else 0),
        full: (0, lambda second: 4 if second < 120 else 0),  # everyone there until the lesson ends: no alert after it
    }
    events = _alerted_lessons(redis_client, classes, 400, start, idle_s=120)
    mine = [(kind, t, value) for name, kind, t, value in events if name == class_id]
    (started, t_started, value), (ended, t_ended, last) = mine
    assert (started, ended, last) == ("started", "ended", None) and value == pytest.approx(0.25)
    assert 60 + 30 <= t_started <= 60 + 12 + 10 + 30  # 30 s past the window's fall under 0.5 (a snapshot holds 12 s)
    assert t_ended == 119 + 120  # idle 120 s after its last frame; nothing at the next lesson (300-400 s)
    assert [(kind, value) for name, kind, _t, value in events if name == alone] == [("started", pytest.approx(0.25))]
    assert not [e for e in events if e[0] in (other, full)]


def test_a_stale_alert_state_left_by_a_stopped_aggregator_is_ended_at_the_next_lesson(redis_client, class_id):
    """An aggregator stopped while a class's presence alert was active: the next lesson's first frame ends it (at
    the moment the class went idle, value null) and raises nothing new for a full class."""
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id, expected_students=4).to_hash())
    start = seconds_ago(900)
    rule_name = AlertRule(index="presence", direction="below", threshold=0.5, for_s=30).name
    redis_client.hset(alert_state_key(class_id), mapping={rule_name: f"{start - 600_000}|1", "evaluated": start - 500_000})
    events = _alerted_lessons(redis_client, {class_id: (0, lambda second: 4)}, 60, start, idle_s=120)
    assert events == [(class_id, "ended", -500 + 120, None)]


def test_a_rules_move_and_its_event_are_recorded_once_whoever_else_moved_it(redis_client, class_id):
    """Two aggregators evaluating a class at once (a rebalance), or a batch retried after a failure between the
    event and the state: both saw the rule pending and both recorded "started". The move is now one script that
    holds only if the state is still the one it was read as."""
    rule = AlertRule(index="presence", direction="below", threshold=0.5, for_s=30)
    replicas = [AlertEvaluator(redis_client, ClassDirectory(redis_client), (rule,)) for _ in range(2)]
    redis_client.hset(alert_state_key(class_id), rule.name, "1000|0")
    started = AlertEvent(class_id=class_id, kind="started", index="presence", value=0.2, threshold=0.5, t=31_000)
    moved = [replica.transition(class_id, rule, b"1000|0", b"1000|1", started) for replica in replicas]
    assert [len(events) for events in moved] == [1, 0]
    assert redis_client.hget(alert_state_key(class_id), rule.name) == b"1000|1"
    [(event_id, fields)] = redis_client.xrange(events_key(class_id))
    assert event_id == moved[0][0].event_id.encode() and fields[b"kind"] == b"started"


def test_a_refused_write_is_dead_lettered_and_never_counted_as_a_duplicate(redis_client, class_id):
    redis_client.hset(f"class:{{{class_id}}}", mapping={"class_id": class_id, "expected_students": "1"})
    writer = make_writer(redis_client, raw_retention_ms=60_000)
    now_ms = int(time.time() * 1000)
    write_all(writer, [frame(class_id, "cam", 1, now_ms - 1_000, 1, "room")])
    # Older than the raw retention behind the series' newest sample: TS.ADD would refuse it inside the script.
    stale = frame(class_id, "cam", 2, now_ms - 1_000 - 61_000 - 12_000, 1, "room")
    [refused] = writer.write([stale])
    assert refused.outcome is Written.REFUSED and "older than retention" in refused.reason
    minute = stale.captured_at_ms // 60_000
    assert not redis_client.sismember(f"dedup:{{{class_id}}}:cam:{minute}", 2)
    frames = redis_client.execute_command("TS.RANGE", series_key(class_id, "frames"), "-", "+")
    assert sum(float(v) for _, v in frames) == 1.0

    stage = AggregateResults(writer, AlertEvaluator(redis_client, ClassDirectory(redis_client), ()), max_capture_ahead_ms=60_000)
    future = frame(class_id, "cam", 3, now_ms + 10 * 60_000, 1, "room")
    deliveries = [Delivery("classpulse.predictions", 0, n, None, b"", result) for n, result in enumerate((stale, future))]
    before = metrics.CAPTURE_TIMES_REFUSED.labels("aggregator", "capture_time_future")._value.get()
    outcomes = stage(deliveries)
    assert all(isinstance(outcome, Reject) for outcome in outcomes)
    reasons = sorted(outcome.reason for outcome in outcomes)
    assert reasons[0].startswith("capture_time_future: capture time") and "in the future" in reasons[0]
    assert reasons[1].startswith("capture_time_too_old") or reasons[1].startswith("older than retention")
    assert metrics.CAPTURE_TIMES_REFUSED.labels("aggregator", "capture_time_future")._value.get() == before + 1
    assert sum(float(v) for _, v in redis_client.execute_command("TS.RANGE", series_key(class_id, "frames"), "-", "+")) == 1.0


def test_a_late_frame_whose_roll_up_bucket_began_before_the_raw_seconds_is_refused_not_summed_again(redis_client, class_id):
    """RedisTimeSeries sums a closed roll-up bucket again from the raw seconds when a sample lands in it: with raw
    seconds kept 120 s and 10-min roll-ups, one late frame at 595 s of a lesson of a frame a second made its first
    10-min bucket read 22 frames instead of 600 (the hourly roll-ups are kept 400 days). Now that frame is refused
    and dead-lettered; a late frame the raw seconds still cover is counted."""
    redis_client.hset(f"class:{{{class_id}}}", mapping={"class_id": class_id, "expected_students": "1"})
    resolutions = (Resolution("1s", 1000, 120_000), Resolution("10m", 600_000, 400 * 86_400_000))
    writer = SeriesWriter(redis_client, resolutions, 3600, WINDOW_MS)
    start = (int(time.time() * 1000) // 600_000 - 20) * 600_000
    write_all(writer, [frame(class_id, "cam", n, start + n * 1000, 1, "room") for n in range(700)])
    rolled_up = series_key(class_id, "frames", "10m")

    def first_bucket() -> float:
        return float(redis_client.execute_command("TS.RANGE", rolled_up, start, start)[0][1])

    assert first_bucket() == 600
    [refused] = writer.write([frame(class_id, "late-cam", 0, start + 595_000, 1, "room")])
    assert refused.outcome is Written.REFUSED and "older than its roll-up" in refused.reason, refused
    assert first_bucket() == 600
    [counted] = writer.write([frame(class_id, "late-cam", 1, start + 650_000, 1, "room")])  # the open bucket
    assert counted.outcome is Written.NEW
    assert first_bucket() == 600


@pytest.mark.anyio
async def test_facing_the_screen_from_webcam_pictures_through_detector_aggregator_and_api(redis_client, infra, class_id):
    """Real pictures through the detector (BlazeFace on students' own webcams, a room camera run with the Haar
    setting), the aggregator stage and the API, in a presence-only class: the share facing the screen is the
    detector's facing flags of the webcam students (frontal FER2013 faces: nearly all facing); the room camera's Haar
    faces have no pose and are in neither count."""
    import cv2

    from classpulse_demo.fer_csv import FerCsvNotFoundError
    from classpulse_demo.webcams import WebcamLesson, webcam_pictures

    try:
        pictures, _ = webcam_pictures(WebcamLesson(students=6, seed=3))
    except FerCsvNotFoundError as exc:
        pytest.skip(f"webcam pictures are made of FER2013 faces: {exc}")
    start = seconds_ago(100)
    frames = []
    for student, row in enumerate(pictures):
        for n, picture in enumerate(row):  # one snapshot per lesson phase
            frames.append((f"student-{student}", "personal", n, start + n * SNAPSHOT_MS + 317 * student, picture))
    room = np.concatenate([np.concatenate(pictures[0][:2], axis=1), np.concatenate(pictures[1][:2], axis=1)], axis=0)
    frames += [("room", "room", n, start + n * SNAPSHOT_MS, cv2.resize(room, (1280, 960))) for n in range(3)]

    async with api_client(infra) as client:
        created = await client.post("/v1/classes", json={"class_id": class_id, "expected_students": 6, "emotion_enabled": False})
        assert created.status_code == 201
        detect = detect_faces(redis_client, face_detector="haar")
        results = [outcome.message for outcome in detect([frame_delivery(class_id, *f) for f in sorted(frames, key=lambda f: f[3])])]
        assert all(isinstance(result, FrameResult) and result.probabilities is None for result in results)
        flags = [result.facing[0] for result in results if result.camera_kind == "personal" and result.boxes]
        assert len(flags) >= len(pictures) * len(pictures[0]) - 1 and None not in flags
        room_faces = [flag for result in results if result.camera_kind == "room" for flag in result.facing]
        assert room_faces and set(room_faces) == {None}  # Haar: faces, no pose

        aggregate_all(redis_client, results)
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start})).json()
        assert summary["facing_screen"] >= 0.8 and summary["emotions"] is None
        assert summary["on_camera"] > len(flags) / 3  # the room's faces are on camera, just not in the share
        if all(flags):  # each student's flags held over the same seconds: all facing reads exactly 1
            assert summary["facing_screen"] == pytest.approx(1.0)
        else:
            assert summary["facing_screen"] == pytest.approx(sum(flags) / len(flags), abs=0.1)
        live = (await client.get(f"/v1/classes/{class_id}/live", params={"window": 3600})).json()
        assert live["facing_screen"] == pytest.approx(summary["facing_screen"], abs=0.1)


GALLERY_PRESENCE_TOLERANCE = 0.08
"""How far a gallery's presence may read under what was sent. BlazeFace finds 0.95 of the faces bench's gallery faces
in full scans, and a face a scan missed on a still tile waits for the next full scan (10 s): on this gallery it reads
0.72-0.73 against 0.78 sent; Haar (the cheaper room setting), which misses a fifth of them, reads 0.61 (docs/face-detection.md,
"Galleries")."""


@pytest.mark.anyio
async def test_a_video_call_gallery_gets_blazeface_and_reads_the_presence_it_showed(redis_client, infra, class_id, tmp_path):
    """A gallery never tuned on (8 students at 1280x720, the demo's generator with a seed of its own: students step
    away, everybody away for a moment), one frame a second as a gallery source through the detector, the aggregator
    and the API: its faces come with landmarks (BlazeFace, whatever the room setting) and the class reads the presence the
    frames showed."""
    import json

    import cv2

    from classpulse_demo.fer_csv import FerCsvNotFoundError
    from classpulse_demo.sample_class import generate_sample_class

    try:
        paths = generate_sample_class(None, tmp_path, students=8, seconds=8, fps=1, seed=29, size=(1280, 720))
    except FerCsvNotFoundError as exc:
        pytest.skip(f"the gallery is made of FER2013 faces: {exc}")
    labels = json.loads(paths.labels.read_text())
    video = cv2.VideoCapture(str(paths.video))
    pictures = [video.read()[1] for _ in range(labels["frames"])]
    video.release()
    start = seconds_ago(100)
    async with api_client(infra) as client:
        body = {"class_id": class_id, "expected_students": labels["students"], "emotion_enabled": False}
        assert (await client.post("/v1/classes", json=body)).status_code == 201
        deliveries = [frame_delivery(class_id, "call", "gallery", n, start + n * 1000, p) for n, p in enumerate(pictures)]
        results = [outcome.message for outcome in detect_faces(redis_client)(deliveries)]
        faces = [flag for result in results for flag in result.facing]
        assert faces and None not in faces and {result.camera_kind for result in results} == {"gallery"}
        aggregate_all(redis_client, results)
        # Each frame holds its own second: the summary over those seconds is the mean share of the class shown.
        end = start + len(pictures) * 1000 - 1
        summary = (await client.get(f"/v1/classes/{class_id}/summary", params={"from": start, "to": end})).json()
    sent = sum(len(frame["faces"]) for frame in labels["per_frame"]) / (labels["frames"] * labels["students"])
    assert summary["frames"] == len(pictures) and 0.3 < sent < 1  # some away, some there: a figure that can be missed
    assert summary["presence"] == pytest.approx(sent, abs=GALLERY_PRESENCE_TOLERANCE)
