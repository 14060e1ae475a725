"""Sources started, watched and stopped through the ingest service's HTTP API, with their state in the API and in
/metrics; only admins may do it, and only with URLs, cameras, or files inside the media folder."""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import uuid
from collections import Counter
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from classpulse_core.lifecycle import StopSignal
from classpulse_ingest import publish
from classpulse_ingest.app import create_app
from classpulse_ingest.publisher import RUN_SEQUENCE_BLOCK
from classpulse_ingest.source_store import lease_key
from classpulse_store.classkeys import sequence_key
from classpulse_web.auth import Role, new_key
from ingest_support import (
    VideoServer,
    ingest_settings,
    make_class,  # noqa: F401 (a fixture)
    metric,
    read_frames,
    write_video,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN = {"Authorization": f"Bearer {new_key()[1]}"}


@pytest.fixture
def ingest(infra, kafka_bootstrap, topic_factory, tmp_path):
    @asynccontextmanager
    async def running(**overrides: object):
        topic = topic_factory(3)
        app = create_app(ingest_settings(infra, kafka_bootstrap, topic, media_dir=tmp_path / "media", **overrides))
        async with app.router.lifespan_context(app):
            await app.state.keys.install(ADMIN["Authorization"][7:], Role.ADMIN, "test admin")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
                yield app, client, topic

    return running


async def wait_for_state(client, source_id: str, wanted: str, timeout_s: float = 20) -> dict:
    for _ in range(int(timeout_s * 5)):
        status = (await client.get(f"/v1/sources/{source_id}", headers=ADMIN)).json()
        if status["state"] == wanted:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"source {source_id} is {status['state']}, not {wanted}: {status}")


async def test_a_stream_started_over_http_runs_reports_its_state_and_stops(ingest, make_class, kafka_bootstrap, tmp_path):
    server = VideoServer(tmp_path, stream_fps=10).start()
    class_id = make_class()
    try:
        async with ingest() as (_app, client, topic):
            body = {"url": f"{server.url}/stream.mjpg", "fps": 4, "source_id": "room-12-camera", "session_id": "s-9"}
            started = await client.post(f"/v1/classes/{class_id}/sources", json=body, headers=ADMIN)
            assert started.status_code == 201, started.text
            live = await wait_for_state(client, "room-12-camera", "live")
            listed = (await client.get("/v1/sources", params={"class_id": class_id}, headers=ADMIN)).json()
            duplicate = await client.post(f"/v1/classes/{class_id}/sources", json=body, headers=ADMIN)
            await asyncio.sleep(1.5)
            metrics = (await client.get("/metrics")).text
            stopped = await client.delete("/v1/sources/room-12-camera", headers=ADMIN)
            after_stop = (await client.get("/v1/sources/room-12-camera", headers=ADMIN)).json()
    finally:
        server.stop()
    assert live["kind"] == "stream" and live["class_id"] == class_id and live["session_id"] == "s-9"
    assert [s["source_id"] for s in listed] == ["room-12-camera"] and duplicate.status_code == 409
    states = {
        sample.labels["classpulse_ingest_source_state"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "classpulse_ingest_source_state"
        for sample in family.samples
        if sample.labels["source_id"] == "room-12-camera"
    }
    assert states["live"] == 1 and sum(states.values()) == 1, (states, after_stop)
    assert stopped.status_code == 200 and stopped.json()["state"] == after_stop["state"] == "stopped"
    frames = read_frames(kafka_bootstrap, topic)
    assert len(frames) == after_stop["frames_published"] >= 4
    assert {f.source_id for f in frames} == {"room-12-camera"} and {f.session_id for f in frames} == {"s-9"}


async def test_files_only_from_the_media_folder_and_only_for_admins(ingest, make_class, tmp_path):
    class_id = make_class()
    (tmp_path / "media").mkdir()
    inside = write_video(tmp_path / "media" / "lesson.avi", "MJPG", frames=6, fps=6)
    outside = write_video(tmp_path / "elsewhere.avi", "MJPG", frames=6, fps=6)
    async with ingest(max_sources=1) as (app, client, _topic):
        url = f"/v1/classes/{class_id}/sources"
        from_media = await client.post(url, json={"url": str(inside), "fps": 6, "realtime": False}, headers=ADMIN)
        ended = await wait_for_state(client, from_media.json()["source_id"], "ended")
        refusals = {
            "outside media dir": await client.post(url, json={"url": str(outside)}, headers=ADMIN),
            "escaping media dir": await client.post(url, json={"url": str(tmp_path / "media" / ".." / "elsewhere.avi")}, headers=ADMIN),
            "file url": await client.post(url, json={"url": "file:///etc/passwd"}, headers=ADMIN),
            "ffmpeg protocol": await client.post(url, json={"url": "concat://a|b"}, headers=ADMIN),
            # Relative locations are FFmpeg's protocol syntax, whatever folder they would name.
            "ffmpeg concat": await client.post(url, json={"url": f"concat:{inside}|{outside}"}, headers=ADMIN),
            "ffmpeg subfile": await client.post(url, json={"url": f"subfile,,start,0,end,0,,:{inside}"}, headers=ADMIN),
            "too fast": await client.post(url, json={"url": "rtsp://127.0.0.1:1/x", "fps": 500}, headers=ADMIN),
        }
        unknown_class = await client.post("/v1/classes/no-such-class/sources", json={"url": "rtsp://127.0.0.1:1/x"}, headers=ADMIN)
        first = await client.post(url, json={"url": "rtsp://127.0.0.1:1/x", "fps": 1}, headers=ADMIN)
        over_capacity = await client.post(url, json={"url": "rtsp://127.0.0.1:1/y", "fps": 1}, headers=ADMIN)
        await client.delete(f"/v1/sources/{first.json()['source_id']}", headers=ADMIN)
        keys = {role: (await app.state.keys.create(role, "t", teacher_id="t", class_id=class_id))[1] for role in (Role.TEACHER, Role.SERVICE, Role.STUDENT)}
        forbidden = {
            (role.value, method, path): (await client.request(method, path, json={"url": "rtsp://127.0.0.1:1/x"}, headers={"Authorization": f"Bearer {key}"})).status_code
            for role, key in keys.items()
            for method, path in (("POST", url), ("GET", "/v1/sources"), ("GET", "/v1/sources/x"), ("DELETE", "/v1/sources/x"))
        }
    assert from_media.status_code == 201 and ended["frames_published"] == 6
    assert {name: answer.status_code for name, answer in refusals.items()} == dict.fromkeys(refusals, 422)
    assert "only by their absolute path" in refusals["outside media dir"].json()["error"]["message"]
    assert "unsupported URL scheme" in refusals["file url"].json()["error"]["message"]
    assert unknown_class.status_code == 404
    assert first.status_code == 201 and over_capacity.status_code == 503
    assert set(forbidden.values()) == {403}, forbidden


async def test_publish_refuses_the_id_of_a_source_the_service_runs_for_the_class(
    ingest, make_class, infra, kafka_bootstrap, tmp_path, redis_client
):
    """A source id is one camera: under one id, a run and a source of the service would overwrite each other's count
    of students on camera in the aggregator, frame after frame."""
    class_id, other_class = make_class(), make_class()
    (tmp_path / "media").mkdir()
    lesson = write_video(tmp_path / "media" / "lesson.avi", "MJPG", frames=6, fps=6)
    source_id = f"room-{uuid.uuid4().hex[:8]}"
    async with ingest() as (_app, client, topic):
        body = {"url": str(lesson), "fps": 6, "realtime": False, "source_id": source_id}
        started = await client.post(f"/v1/classes/{class_id}/sources", json=body, headers=ADMIN)
        await wait_for_state(client, source_id, "ended")  # ended, it may be started again and go on with its numbers
    parser = argparse.ArgumentParser()
    publish.add_arguments(parser)

    def publish_under_its_id(into_class: str):
        args = parser.parse_args(["--class", into_class, "--source", str(lesson), "--fps", "6", "--no-realtime", "--source-id", source_id])
        return publish.publish_source(ingest_settings(infra, kafka_bootstrap, topic), args, StopSignal())

    refusal = f"--source-id '{source_id}' is a source of class '{class_id}' that the ingest service runs (state: ended)"
    with pytest.raises(SystemExit, match=re.escape(refusal)):
        publish_under_its_id(class_id)
    elsewhere = publish_under_its_id(other_class)  # another class's frames are numbered apart
    assert started.status_code == 201, started.text
    # The refused run took no numbers: the counter holds the service source's block alone.
    assert elsewhere.frames_published == 6 and int(redis_client.get(sequence_key(class_id, source_id))) == RUN_SEQUENCE_BLOCK
    frames = read_frames(kafka_bootstrap, topic, expected=12)
    assert Counter(f.class_id for f in frames) == {class_id: 6, other_class: 6}


async def test_a_source_the_service_runs_numbers_its_frames_after_those_publish_took_under_its_id(
    ingest, make_class, infra, kafka_bootstrap, tmp_path
):
    """It numbered its frames from 0 whatever `publish` had sent under the same id that minute: the aggregator
    counted each of its frames as a duplicate of publish's."""
    class_id = make_class()
    (tmp_path / "media").mkdir()
    lesson = write_video(tmp_path / "media" / "lesson.avi", "MJPG", frames=6, fps=6)
    source_id = f"room-{uuid.uuid4().hex[:8]}"
    async with ingest() as (_app, client, topic):
        parser = argparse.ArgumentParser()
        publish.add_arguments(parser)
        args = parser.parse_args(["--class", class_id, "--source", str(lesson), "--fps", "6", "--no-realtime", "--source-id", source_id])
        assert publish.publish_source(ingest_settings(infra, kafka_bootstrap, topic), args, StopSignal()).frames_published == 6
        body = {"url": str(lesson), "fps": 6, "realtime": False, "source_id": source_id}
        started = await client.post(f"/v1/classes/{class_id}/sources", json=body, headers=ADMIN)
        assert started.status_code == 201, started.text
        await wait_for_state(client, source_id, "ended")
    frames = read_frames(kafka_bootstrap, topic, expected=12)
    numbers = sorted(frame.sequence for frame in frames)
    assert numbers == list(range(6)) + list(range(RUN_SEQUENCE_BLOCK, RUN_SEQUENCE_BLOCK + 6))


async def test_stream_sources_reach_only_the_allowed_camera_networks(ingest, make_class):
    class_id = make_class()
    url = f"/v1/classes/{class_id}/sources"
    async with ingest(source_allowed_networks=["0.0.0.0/0", "::/0"]) as (_app, client, _topic):
        refused = {
            location: await client.post(url, json={"url": location}, headers=ADMIN)
            for location in (
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                "http://[::ffff:169.254.169.254]/latest/meta-data/",
                "http://100.100.100.200/latest/meta-data/",
                "http://127.0.0.1:8001/metrics",
                "rtsp://localhost/live",
                "http://[::1]:6379/",
                "http://0.0.0.0:9092/",
                "ftp://192.0.2.1/lesson.mp4",
                "http://no-such-host.invalid/x.mjpg",
            )
        }
        public = await client.post(url, json={"url": "rtsp://192.0.2.10/live", "source_id": "public-cam"}, headers=ADMIN)
        await client.delete("/v1/sources/public-cam", headers=ADMIN)
    async with ingest(source_allowed_networks=[]) as (_app, client, _topic):
        none_listed = await client.post(url, json={"url": "rtsp://10.1.2.3/live"}, headers=ADMIN)
    async with ingest(source_allowed_networks=["10.0.0.0/8"], source_allowed_schemes=["rtsps"]) as (_app, client, _topic):
        plain_rtsp = await client.post(url, json={"url": "rtsp://10.1.2.3/live"}, headers=ADMIN)
    assert {location: answer.status_code for location, answer in refused.items()} == dict.fromkeys(refused, 422)
    # Loopback and metadata addresses need an entry of their own: 0.0.0.0/0 and ::/0 do not let them in.
    assert "outside the networks" in refused["http://127.0.0.1:8001/metrics"].json()["error"]["message"]
    assert "does not resolve" in refused["http://no-such-host.invalid/x.mjpg"].json()["error"]["message"]
    assert public.status_code == 201, public.text
    assert none_listed.status_code == 422 and "CLASSPULSE_SOURCE_ALLOWED_NETWORKS" in none_listed.json()["error"]["message"]
    assert plain_rtsp.status_code == 422 and "use rtsps" in plain_rtsp.json()["error"]["message"]


async def test_stream_credentials_never_show_in_answers_or_logs(ingest, make_class, caplog):
    class_id = make_class()
    location = "rtsp://admin:cam-secret@127.0.0.1:1/live?user=admin&password=query-secret&token=tok-secret"
    caplog.set_level("DEBUG")
    async with ingest(reconnect_attempts=1) as (_app, client, _topic):
        started = await client.post(
            f"/v1/classes/{class_id}/sources", json={"url": location, "source_id": "secret-cam"}, headers=ADMIN
        )
        failed = await wait_for_state(client, "secret-cam", "failed")
        listed = (await client.get("/v1/sources", headers=ADMIN)).text
    assert started.status_code == 201
    assert failed["location"] == "rtsp://***@127.0.0.1:1/live?user=***&password=***&token=***"
    for text in (started.text, str(failed), listed, caplog.text):
        assert not any(secret in text for secret in ("cam-secret", "query-secret", "tok-secret")), text[:500]
    assert "did not open as a video stream" in failed["reason"]


async def test_a_replica_that_lost_a_source_to_another_stops_publishing_it(ingest, make_class, tmp_path, redis_client):
    """Fencing: once a renewal finds another replica's token in the lease, this replica sends none of its frames."""
    class_id = make_class()
    (tmp_path / "media").mkdir()
    lesson = write_video(tmp_path / "media" / "lesson.mp4", "mp4v", frames=300, fps=10)
    async with ingest(source_claim_interval_s=0.2) as (_app, client, _topic):
        started = await client.post(f"/v1/classes/{class_id}/sources", json={"url": str(lesson), "fps": 5}, headers=ADMIN)
        source_id = started.json()["source_id"]
        await wait_for_state(client, source_id, "live")
        losses_before = metric("classpulse_ingest_source_lease_losses_total")
        redis_client.set(lease_key(source_id), "another-replica/1", px=60_000)  # another replica holds it now
        await asyncio.sleep(1.5)  # a few renewal rounds
        published_when_lost = metric("classpulse_ingest_frames_published_total", source_kind="file")
        await asyncio.sleep(2.0)
        published_later = metric("classpulse_ingest_frames_published_total", source_kind="file")
        owned_here = metric("classpulse_ingest_sources_owned")
        redis_client.delete(lease_key(source_id))
        stopped = await client.delete(f"/v1/sources/{source_id}", headers=ADMIN)  # nobody holds it: stopped at once
    assert metric("classpulse_ingest_source_lease_losses_total") == losses_before + 1
    assert 0 < published_when_lost == published_later and owned_here == 0
    assert stopped.json()["state"] == "stopped"


async def test_a_source_stopped_while_blocked_in_a_read_is_recorded_stopped(ingest, make_class):
    """A camera that accepts the connection and never answers holds its reader past the stop wait: the source is
    recorded stopped all the same (not left "starting" for ever), everywhere."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        async with ingest(source_allowed_networks=["127.0.0.0/8"], stream_open_timeout_ms=20_000) as (_app, client, _topic):
            url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/live"
            started = await client.post(f"/v1/classes/{make_class()}/sources", json={"url": url}, headers=ADMIN)
            stopped = await client.delete(f"/v1/sources/{started.json()['source_id']}", headers=ADMIN)
            listed = {s["source_id"]: s for s in (await client.get("/v1/sources", headers=ADMIN)).json()}
    finally:
        silent.close()
    assert started.status_code == 201 and stopped.json()["state"] == "stopped", stopped.text
    assert listed[started.json()["source_id"]]["state"] == "stopped"
