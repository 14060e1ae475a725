"""Frames posted over HTTP to the ingest service, against the real Redis and Kafka: raw and multipart bodies, service
and student keys, student tokens issued by an admin or the class's teacher, per-class quotas and per-student rates
counted in Kafka, and every kind of bad upload refused with its reason while good frames keep flowing."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from contextlib import asynccontextmanager, contextmanager

import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis
import uvicorn

from classpulse_ingest import uploads
from classpulse_ingest.app import create_app
from classpulse_reliability.flood import png_bomb
from classpulse_store.classkeys import keys_index, sequence_key
from classpulse_web.auth import Role, new_key
from classpulse_web.keystore import KeyStore
from free_ports import free_port
from ingest_support import (
    ingest_settings,
    jpeg,
    make_class,  # noqa: F401 (a fixture)
    metric,
    numbered_image,
    png,
    read_frames,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN_KEY = new_key()[1]
FRAME = jpeg(numbered_image(1))


@pytest.fixture
def topic(topic_factory) -> str:
    return topic_factory(3)


@pytest.fixture
def ingest(infra, kafka_bootstrap, topic):
    """`ingest(**settings)`: an async context with the ingest app (own topic), an HTTP client of it, and keys."""

    @asynccontextmanager
    async def running(**overrides: object):
        app = create_app(ingest_settings(infra, kafka_bootstrap, topic, **overrides))
        async with app.router.lifespan_context(app):
            await app.state.keys.install(ADMIN_KEY, Role.ADMIN, "test admin")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
                yield app, client

    return running


@pytest.fixture
def served_ingest(infra, kafka_bootstrap, topic):
    """`served_ingest(**settings)`: an async context with the ingest app served by uvicorn on 127.0.0.1 (a body that
    trickles in over a socket needs a real server), its base URL and a key store of the test's own."""

    @asynccontextmanager
    async def serving(**overrides: object):
        port = free_port()
        app = create_app(ingest_settings(infra, kafka_bootstrap, topic, **overrides))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="ingest", daemon=True)
        thread.start()
        client = aioredis.Redis(port=infra.config.redis_port, decode_responses=True)
        try:
            while not server.started:
                assert thread.is_alive(), "ingest did not start"
                await asyncio.sleep(0.05)
            yield f"http://127.0.0.1:{port}", KeyStore(client)
        finally:
            server.should_exit = True
            await asyncio.to_thread(thread.join, 30)
            await client.aclose()

    return serving


async def slow_upload(base: str, class_id: str, key: str, body: bytes, byte_every_s: float) -> int:
    """Post `body` a byte at a time over a raw socket, as a sender on a very slow link (or one doing it on purpose);
    the status of the answer, which may come before the body is all sent."""
    reader, writer = await asyncio.open_connection(*base.removeprefix("http://").split(":"))
    writer.write(
        f"POST /v1/classes/{class_id}/frames HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):  # the server answered and closed: the rest is not wanted
            for byte in body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(byte_every_s)

    sending = asyncio.create_task(trickle())
    try:
        return int((await reader.readline()).split()[1])
    finally:
        sending.cancel()
        writer.close()


@pytest.fixture
def redis_user(infra, redis_client):
    """`(name, url)`: a Redis user of the test's own, allowed everything until the test says otherwise, for an ingest to
    connect as: what Redis then refuses it, it refuses no other client."""
    name = f"ingest-{uuid.uuid4().hex[:8]}"
    redis_client.acl_setuser(name, enabled=True, passwords=[f"+{name}"], commands=["+@all"], keys=["*"], channels=["*"])
    yield name, f"redis://{name}:{name}@127.0.0.1:{infra.config.redis_port}/0"
    redis_client.acl_deluser(name)


@contextmanager
def answers_refused(redis_client, user: str):
    """Redis refuses `user` (NOPERM) every write of an upload's idempotency record, and nothing else, until the end."""
    prefix = "ingest:upload-once:"
    # An ACL lists the keys it allows (a command that reads and writes a key needs one pattern allowing both): every
    # key not under the prefix is one that differs from it at some character.
    others = [f"{prefix[:at]}[^{char}]*" for at, char in enumerate(prefix)]
    redis_client.acl_setuser(user, enabled=True, reset_keys=True, keys=[f"%R~{prefix}*", *others])
    try:
        yield
    finally:
        redis_client.acl_setuser(user, enabled=True, reset_keys=True, keys=["*"])


async def upload_on_hold(client, redis_client, class_id: str, key: str, idempotency_key: str):
    """Start posting a frame with `idempotency_key` and hold the rest of its body back once the upload holds the key:
    (the upload's task, the event that sends the rest)."""
    send_the_rest = asyncio.Event()

    async def held_body():
        yield FRAME[:100]
        await send_the_rest.wait()
        yield FRAME[100:]

    upload = asyncio.create_task(post(client, class_id, key, held_body(), **{"Idempotency-Key": idempotency_key}))
    while not redis_client.keys(f"ingest:upload-once:{{{class_id}}}:*:{idempotency_key}"):
        assert not upload.done(), upload.result().text
        await asyncio.sleep(0.01)
    return upload, send_the_rest


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key_of(app, role: Role, **fields: object) -> str:
    return (await app.state.keys.create(role, "test", **fields))[1]


def post(client, class_id: str, key: str, body: bytes, content_type: str = "image/jpeg", **headers: str):
    return client.post(f"/v1/classes/{class_id}/frames", content=body, headers={**auth(key), "Content-Type": content_type, **headers})


# --- Accepted frames ---------------------------------------------------------------------------------------------


async def test_raw_and_multipart_frames_reach_kafka_with_their_identity(ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    async with ingest() as (app, client):
        service = await new_key_of(app, Role.SERVICE)
        raw_jpeg = await post(client, class_id, service, FRAME, **{"X-Source-Id": "cam-1", "X-Session-Id": "s-1"})
        raw_png = await post(client, class_id, service, png(numbered_image(2)), "image/png", **{"X-Source-Id": "cam-1"})
        form = await client.post(
            f"/v1/classes/{class_id}/frames",
            files={"frame": ("snap.jpg", FRAME, "image/jpeg")},
            data={"note": "ignored"},
            headers={**auth(service), "X-Source-Id": "cam-1"},
        )
        form_any_name = await client.post(
            f"/v1/classes/{class_id}/frames",
            files={"upload": ("snap.png", png(numbered_image(3)), "application/octet-stream")},
            headers={**auth(ADMIN_KEY), "X-Source-Id": "cam-2", "X-Capture-Age-Ms": "1500", "X-Camera-Kind": "gallery"},
        )
    assert [r.status_code for r in (raw_jpeg, raw_png, form, form_any_name)] == [202] * 4, form.text
    assert [r.json()["frame_id"] for r in (raw_jpeg, raw_png, form)] == ["cam-1:0", "cam-1:1", "cam-1:2"]
    frames = read_frames(kafka_bootstrap, topic, expected=4)
    assert [(f.source_id, f.sequence) for f in frames] == [("cam-1", 0), ("cam-1", 1), ("cam-1", 2), ("cam-2", 0)]
    assert frames[0].session_id == "s-1" and {f.class_id for f in frames} == {class_id}
    # A service says what its camera shows (room unless told): a screen share of a video call's tiles is a gallery.
    assert [f.camera_kind for f in frames] == ["room"] * 3 + ["gallery"] and form_any_name.json()["camera_kind"] == "gallery"
    assert (frames[0].width, frames[0].height) == (320, 240)
    # The capture time is the arrival time less the age the sender reported (its clock is never trusted).
    assert form_any_name.json()["captured_at_ms"] <= frames[3].published_at_ms - 1500


async def test_sequences_continue_across_a_restart_of_ingest(ingest, make_class, kafka_bootstrap, topic, redis_client):
    class_id = make_class()
    for _restart in range(2):
        async with ingest() as (_app, client):
            assert (await post(client, class_id, ADMIN_KEY, FRAME, **{"X-Source-Id": "gateway"})).status_code == 202
    frames = read_frames(kafka_bootstrap, topic, expected=2)
    assert [f.frame_id for f in frames] == ["gateway:0", "gateway:1"]  # frame ids never repeat within a source
    # The counter is in the class's key index, so deleting the class removes it without a scan.
    counter = sequence_key(class_id, "gateway").encode()
    assert redis_client.zscore(keys_index(class_id), counter) > time.time() * 1000 and redis_client.exists(counter)


async def test_a_capture_age_is_kept_as_sent_or_refused_never_moved(ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    refused_before = metric("classpulse_ingest_uploads_rejected_total", reason="capture_age")
    async with ingest(raw_retention_ms=3_600_000) as (app, client):
        student = await new_key_of(app, Role.STUDENT, class_id=class_id)
        snapshot = await post(client, class_id, student, FRAME, **{"X-Capture-Age-Ms": "59000"})
        # Five minutes old from a student page would count the student in a past minute of the lesson.
        stale_snapshot = await post(client, class_id, student, FRAME, **{"X-Capture-Age-Ms": "300000"})
        # A gateway sending what it kept during an outage: at its own instant, as long as the raw series keep it.
        caught_up = await post(client, class_id, ADMIN_KEY, FRAME, **{"X-Source-Id": "gateway", "X-Capture-Age-Ms": "1800000"})
        too_old = await post(client, class_id, ADMIN_KEY, FRAME, **{"X-Source-Id": "gateway", "X-Capture-Age-Ms": "3600001"})
    assert stale_snapshot.status_code == too_old.status_code == 422
    assert "at most 60000 ms old" in stale_snapshot.json()["error"]["message"]
    assert "at most 3600000 ms old" in too_old.json()["error"]["message"]
    assert metric("classpulse_ingest_uploads_rejected_total", reason="capture_age") == refused_before + 2
    assert snapshot.status_code == caught_up.status_code == 202
    frames = {f.frame_id: f for f in read_frames(kafka_bootstrap, topic, expected=2)}
    for answer, age_ms in ((snapshot, 59_000), (caught_up, 1_800_000)):
        frame = frames[answer.json()["frame_id"]]
        assert frame.captured_at_ms == answer.json()["captured_at_ms"]
        assert frame.published_at_ms - age_ms - 1000 < frame.captured_at_ms <= frame.published_at_ms - age_ms


# --- Retries ------------------------------------------------------------------------------------------------------


async def test_a_retry_after_a_lost_answer_gets_the_first_answer_and_publishes_nothing(served_ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    replayed_before = metric("classpulse_ingest_uploads_replayed_total")
    async with served_ingest() as (base, keys):
        student = (await keys.create(Role.STUDENT, class_id=class_id))[1]
        reader, writer = await asyncio.open_connection(*base.removeprefix("http://").split(":"))
        writer.write(
            f"POST /v1/classes/{class_id}/frames HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer {student}\r\n"
            f"Content-Type: image/jpeg\r\nIdempotency-Key: page-1a2b-0\r\nContent-Length: {len(FRAME)}\r\n\r\n".encode()
            + FRAME
        )
        await writer.drain()
        published = await asyncio.to_thread(read_frames, kafka_bootstrap, topic, 1)
        writer.close()  # the answer is lost on the way: the page saw an error, and sends the photo again
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            retried = await post(client, class_id, student, FRAME, **{"Idempotency-Key": "page-1a2b-0"})
            next_photo = await post(client, class_id, student, FRAME, **{"Idempotency-Key": "page-1a2b-1"})
    frames = read_frames(kafka_bootstrap, topic, expected=2)
    assert [f.frame_id for f in frames] == [published[0].frame_id, next_photo.json()["frame_id"]]  # the photo once
    assert retried.status_code == 202 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["frame_id"] == published[0].frame_id
    assert next_photo.status_code == 202 and "Idempotent-Replayed" not in next_photo.headers
    assert metric("classpulse_ingest_uploads_replayed_total") == replayed_before + 1


async def test_a_retry_while_the_first_runs_waits_and_a_refused_upload_can_be_retried(ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    async with ingest() as (app, client):
        student, other_student = [await new_key_of(app, Role.STUDENT, class_id=class_id) for _ in range(2)]

        async def slow_body():
            yield FRAME[:100]
            await asyncio.sleep(1.5)
            yield FRAME[100:]

        first = asyncio.create_task(post(client, class_id, student, slow_body(), **{"Idempotency-Key": "k-1"}))
        await asyncio.sleep(0.5)
        meanwhile = await post(client, class_id, student, FRAME, **{"Idempotency-Key": "k-1"})
        first = await first
        after = await post(client, class_id, student, FRAME, **{"Idempotency-Key": "k-1"})
        # A refused upload published nothing: the same key with a good body is a new try, not a replay.
        refused = await post(client, class_id, other_student, b"not an image", **{"Idempotency-Key": "k-2"})
        retried = await post(client, class_id, other_student, FRAME, **{"Idempotency-Key": "k-2"})
        # Keys are each credential's own: another student's k-1 is another photo.
        others = await post(client, class_id, other_student, FRAME, **{"Idempotency-Key": "k-1"})
    assert meanwhile.status_code == 409 and meanwhile.headers["Retry-After"] == "1"
    assert "still in progress" in meanwhile.json()["error"]["message"]
    assert first.status_code == after.status_code == 202 and after.json() == first.json()
    assert after.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert refused.status_code == 400 and retried.status_code == others.status_code == 202
    assert "Idempotent-Replayed" not in retried.headers and "Idempotent-Replayed" not in others.headers
    assert len(read_frames(kafka_bootstrap, topic, expected=3)) == 3


async def test_an_upload_that_outlived_its_hold_on_the_key_publishes_nothing_and_its_retry_publishes_once(
    ingest, make_class, kafka_bootstrap, topic, redis_client
):
    class_id = make_class()
    async with ingest() as (app, client):
        service = await new_key_of(app, Role.SERVICE)
        first, send_the_rest = await upload_on_hold(client, redis_client, class_id, service, "photo-1")
        # Redis stalls writes for longer than a claim's time to live (uploads.CLAIM_TTL_MS; a fork, a failover): the
        # first upload's claim on the key lapses while it waits on Redis, and its page, having had no answer, sends
        # the photo again meanwhile.
        redis_client.client_pause(6000, all=False)
        send_the_rest.set()
        retried = await post(client, class_id, service, FRAME, **{"Idempotency-Key": "photo-1"})
        first = await first
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers, retried.text
    assert first.status_code == 503 and "nothing was published" in first.json()["error"]["message"], first.text
    assert [f.frame_id for f in read_frames(kafka_bootstrap, topic, expected=1)] == [retried.json()["frame_id"]]


async def test_an_answer_redis_refuses_is_recorded_once_it_takes_it_or_nothing_is_published(
    ingest, make_class, kafka_bootstrap, topic, redis_client, redis_user
):
    class_id = make_class()
    user, url = redis_user
    async with ingest(redis_url=url) as (app, client):
        service = await new_key_of(app, Role.SERVICE)
        # Refused for a moment, well within the 2 s an upload tries to record its answer.
        first, send_the_rest = await upload_on_hold(client, redis_client, class_id, service, "photo-1")
        with answers_refused(redis_client, user):
            send_the_rest.set()
            await asyncio.sleep(0.5)
        first = await first
        replayed = await post(client, class_id, service, FRAME, **{"Idempotency-Key": "photo-1"})
        # Refused for longer.
        given_up, send_the_rest = await upload_on_hold(client, redis_client, class_id, service, "photo-2")
        with answers_refused(redis_client, user):
            send_the_rest.set()
            given_up = await given_up
        gave_up_at = time.monotonic()
        # The page retries as told: the claim the upload could not let go of lapses within its time to live.
        held_back = []
        while (retried := await post(client, class_id, service, FRAME, **{"Idempotency-Key": "photo-2"})).status_code == 409:
            held_back.append(retried.headers["Retry-After"])
            await asyncio.sleep(0.25)
        waited_s = time.monotonic() - gave_up_at
    assert first.status_code == 202, first.text
    assert replayed.status_code == 202 and replayed.headers["Idempotent-Replayed"] == "true"
    assert given_up.status_code == 503 and given_up.headers["Retry-After"] == "3", given_up.text
    assert "nothing was published" in given_up.json()["error"]["message"]
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers, retried.text
    assert set(held_back) <= {"1"} and waited_s < uploads.CLAIM_TTL_MS / 1000 + 0.5
    frames = read_frames(kafka_bootstrap, topic, expected=2)
    assert [f.frame_id for f in frames] == [first.json()["frame_id"], retried.json()["frame_id"]]


async def test_a_replica_not_yet_upgraded_reads_an_upload_in_progress_as_in_progress(
    ingest, make_class, kafka_bootstrap, topic, redis_client
):
    """A replica from before the uploads' tokens takes a record reading exactly "in progress" for an upload in
    progress, and any other for an answer: during a rolling upgrade, a retry reaching one read "in progress <token>" as
    an answer, and failed with a 500."""
    class_id = make_class()
    async with ingest() as (app, client):
        service = await new_key_of(app, Role.SERVICE)
        first, send_the_rest = await upload_on_hold(client, redis_client, class_id, service, "photo-1")
        [record] = redis_client.keys(f"ingest:upload-once:{{{class_id}}}:*:photo-1")
        # Such a replica's retry: the key claimed unless taken, what took it read.
        read_by_old_replica = redis_client.set(record, uploads.IN_PROGRESS, nx=True, px=60_000, get=True)
        send_the_rest.set()
        first = await first
    assert read_by_old_replica == uploads.IN_PROGRESS.encode()
    assert first.status_code == 202, first.text
    assert [f.frame_id for f in read_frames(kafka_bootstrap, topic, expected=1)] == [first.json()["frame_id"]]


async def test_an_upload_cancelled_by_a_shutdown_while_recording_its_answer_publishes_the_frame_it_answered_for(
    ingest, make_class, kafka_bootstrap, topic, redis_client, redis_user
):
    """uvicorn cancels the requests still running once their part of a shutdown is over, then shuts the app down: an
    upload recording its answer then (Redis refusing it for a moment) recorded it, shielded, after the Kafka sender had
    closed, so its frame was never sent and its retries, on another replica, were answered for it."""
    class_id = make_class()
    user, url = redis_user
    with contextlib.ExitStack() as refusal:
        async with ingest(redis_url=url) as (app, client):
            service = await new_key_of(app, Role.SERVICE)
            upload, send_the_rest = await upload_on_hold(client, redis_client, class_id, service, "photo-1")
            refusal.enter_context(answers_refused(redis_client, user))
            send_the_rest.set()
            await asyncio.sleep(0.5)
            upload.cancel()
            # Redis takes the answer while the service shuts down, well within the 2 s the upload tries to record it.
            asyncio.get_running_loop().call_later(0.8, refusal.close)
        await asyncio.sleep(1.5)
    with contextlib.suppress(asyncio.CancelledError):
        await upload
    [record] = redis_client.keys(f"ingest:upload-once:{{{class_id}}}:*:photo-1")
    answered = uploads.FrameAccepted.model_validate_json(redis_client.get(record))
    assert [f.frame_id for f in read_frames(kafka_bootstrap, topic, expected=1, timeout_s=10)] == [answered.frame_id]


# --- Student tokens ----------------------------------------------------------------------------------------------


async def test_student_tokens_are_issued_by_an_admin_or_the_class_teacher_only(ingest, make_class):
    class_id = make_class(teacher="t-owner")
    async with ingest() as (app, client):
        keys = {
            "owner": await new_key_of(app, Role.TEACHER, teacher_id="t-owner"),
            "other": await new_key_of(app, Role.TEACHER, teacher_id="t-other"),
            "service": await new_key_of(app, Role.SERVICE),
            "student": await new_key_of(app, Role.STUDENT, class_id=class_id),
        }
        url = f"/v1/classes/{class_id}/student-tokens"
        by_admin = await client.post(url, json={"name": "row 3", "ttl_s": 3600}, headers=auth(ADMIN_KEY))
        by_owner = await client.post(url, headers=auth(keys["owner"]))
        refused = {name: (await client.post(url, headers=auth(keys[name]))).status_code for name in ("other", "service", "student")}
        unknown = await client.post("/v1/classes/no-such-class/student-tokens", headers=auth(ADMIN_KEY))
        anonymous = await client.post(url)
        stored = await app.state.keys.client.hgetall(f"apikey:{by_admin.json()['key_id']}")
        ttl = await app.state.keys.client.ttl(f"apikey:{by_admin.json()['key_id']}")
    assert by_admin.status_code == by_owner.status_code == 201
    token = by_admin.json()
    assert token["class_id"] == class_id and token["page_url"] == f"/student/{class_id}#token={token['api_key']}"
    assert refused == {"other": 403, "service": 403, "student": 403}
    assert unknown.status_code == 404 and anonymous.status_code == 401
    assert stored["role"] == "student" and stored["class_id"] == class_id and 3500 < ttl <= 3600


async def test_a_student_token_posts_to_its_own_class_only_and_expires(ingest, make_class, kafka_bootstrap, topic):
    class_id, other_class = make_class(), make_class()
    async with ingest() as (app, client):
        issued = await client.post(f"/v1/classes/{class_id}/student-tokens", headers=auth(ADMIN_KEY))
        student, key_id = issued.json()["api_key"], issued.json()["key_id"]
        own = await post(client, class_id, student, FRAME, **{"X-Source-Id": "page-ab12"})
        elsewhere = await post(client, other_class, student, FRAME)
        short_lived = (await app.state.keys.create(Role.STUDENT, class_id=class_id, ttl_s=1))[1]
        before_expiry = await post(client, class_id, short_lived, FRAME)
        await asyncio.sleep(2.2)
        after_expiry = await post(client, class_id, short_lived, FRAME)
    # One token, one student: its frames form one source whatever page id it sends, and its camera is personal.
    assert own.status_code == 202 and own.json()["source_id"] == f"student-{key_id}"
    assert own.json()["camera_kind"] == "personal"
    assert elsewhere.status_code == 403 and class_id in elsewhere.json()["error"]["message"]
    assert before_expiry.status_code == 202 and after_expiry.status_code == 401
    assert len(read_frames(kafka_bootstrap, topic, expected=2)) == 2


# --- Rates and quotas, counted in Kafka --------------------------------------------------------------------------


async def test_a_class_over_its_quota_gets_429_and_other_classes_are_unaffected(ingest, make_class, kafka_bootstrap, topic):
    busy, quiet = make_class(), make_class()
    rejected_before = metric("classpulse_ingest_uploads_rejected_total", reason="class_quota")
    async with ingest(class_max_fps=2, class_burst=3) as (_app, client):
        busy_answers = [await post(client, busy, ADMIN_KEY, FRAME) for _ in range(12)]
        quiet_answers = [await post(client, quiet, ADMIN_KEY, FRAME) for _ in range(3)]
    accepted = sum(r.status_code == 202 for r in busy_answers)
    throttled = [r for r in busy_answers if r.status_code == 429]
    assert 3 <= accepted <= 5 and len(throttled) == 12 - accepted  # the burst, plus what refilled meanwhile
    assert int(throttled[0].headers["Retry-After"]) >= 1 and "quota" in throttled[0].json()["error"]["message"]
    assert [r.status_code for r in quiet_answers] == [202] * 3
    frames = read_frames(kafka_bootstrap, topic, expected=accepted + 3)
    assert sum(f.class_id == busy for f in frames) == accepted and sum(f.class_id == quiet for f in frames) == 3
    assert metric("classpulse_ingest_uploads_rejected_total", reason="class_quota") == rejected_before + len(throttled)


async def test_a_student_page_posting_too_fast_is_slowed_down(ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    async with ingest(upload_source_max_fps=0.5, upload_source_burst=2) as (app, client):
        student = await new_key_of(app, Role.STUDENT, class_id=class_id)
        answers = [await post(client, class_id, student, FRAME, **{"X-Source-Id": "page-1"}) for _ in range(5)]
        another_page = await post(client, class_id, student, FRAME, **{"X-Source-Id": "page-2"})
    assert [r.status_code for r in answers] == [202, 202, 429, 429, 429]
    assert "posts faster than 0.5 frames/s" in answers[2].json()["error"]["message"]
    # The rate is the token's: another page id of the same student is slowed alike.
    assert another_page.status_code == 429
    assert len(read_frames(kafka_bootstrap, topic, expected=2)) == 2


async def test_sixty_posts_under_new_source_ids_in_five_seconds_are_held_to_the_tokens_rate(ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    async with ingest() as (app, client):  # the defaults: a student token posts 1 frame/s, 3 at once
        student = await new_key_of(app, Role.STUDENT, class_id=class_id)
        started = asyncio.get_running_loop().time()
        answers = []
        for number in range(60):
            answers.append(await post(client, class_id, student, FRAME, **{"X-Source-Id": f"page-{number}"}))
            await asyncio.sleep(max(0.0, started + (number + 1) * 5 / 60 - asyncio.get_running_loop().time()))
        elapsed = asyncio.get_running_loop().time() - started
    accepted = [r for r in answers if r.status_code == 202]
    assert elapsed < 7 and 3 <= len(accepted) <= 3 + 7  # the burst, plus one a second
    assert {r.status_code for r in answers} == {202, 429} and {r.json()["source_id"] for r in accepted} == {accepted[0].json()["source_id"]}
    assert len(read_frames(kafka_bootstrap, topic, expected=len(accepted))) == len(accepted)


async def test_a_service_key_has_one_rate_over_all_its_sources_and_a_bounded_number_of_them(ingest, make_class):
    class_id = make_class()
    async with ingest(upload_key_max_fps=1, upload_key_burst=4, upload_key_max_sources=3) as (app, client):
        service, other = await new_key_of(app, Role.SERVICE), await new_key_of(app, Role.SERVICE)
        rate = [(await post(client, class_id, service, FRAME, **{"X-Source-Id": f"cam-{n % 3}"})).status_code for n in range(8)]
        await asyncio.sleep(1.1)  # room for one more frame of its rate
        fourth_source = await post(client, class_id, service, FRAME, **{"X-Source-Id": "cam-3"})
        await asyncio.sleep(1.1)
        known_source = await post(client, class_id, service, FRAME, **{"X-Source-Id": "cam-0"})
        other_key = await post(client, class_id, other, FRAME, **{"X-Source-Id": "cam-3"})
    assert rate[:4] == [202] * 4 and set(rate[4:]) == {429}
    assert fourth_source.status_code == 429 and "source ids within the hour" in fourth_source.json()["error"]["message"]
    assert int(fourth_source.headers["Retry-After"]) > 3500  # until the oldest of its sources is an hour old
    assert known_source.status_code == 202 and other_key.status_code == 202  # each key has its own sources and rate


async def test_the_class_quota_is_taken_before_the_body_is_read_or_decoded(ingest, make_class):
    class_id = make_class()
    async with ingest(class_max_fps=0.1, class_burst=2) as (_app, client):
        frames = [await post(client, class_id, ADMIN_KEY, FRAME) for _ in range(2)]
        bomb = await post(client, class_id, ADMIN_KEY, png_bomb(5000, 5000), "image/png")
        garbage = await post(client, class_id, ADMIN_KEY, b"not an image at all", "image/jpeg")
    assert [r.status_code for r in frames] == [202, 202]
    # Over its quota, a class's uploads are refused for it, never decoded: a bomb costs a Redis call, not memory.
    assert bomb.status_code == garbage.status_code == 429 and "quota" in bomb.json()["error"]["message"]


async def test_uploads_are_read_and_decoded_a_few_at_a_time_and_slow_bodies_time_out(ingest, make_class):
    class_id = make_class()
    async with ingest(upload_max_concurrent=1, upload_slot_wait_s=0.3, upload_read_timeout_s=1.5) as (_app, client):

        async def trickle():
            yield FRAME[:100]
            await asyncio.sleep(3)  # holds the only slot while it waits
            yield FRAME[100:]

        slow = asyncio.create_task(
            client.post(f"/v1/classes/{class_id}/frames", content=trickle(), headers={**auth(ADMIN_KEY), "Content-Type": "image/jpeg"})
        )
        await asyncio.sleep(0.5)
        waiting = await post(client, class_id, ADMIN_KEY, FRAME)
        slow_answer = await slow
        after = await post(client, class_id, ADMIN_KEY, FRAME)
    assert waiting.status_code == 503 and waiting.headers["Retry-After"] == "1", waiting.text
    assert slow_answer.status_code == 408 and "did not arrive within 1.5 s" in slow_answer.json()["error"]["message"]
    assert after.status_code == 202  # the slot is free again


async def test_one_token_trickling_bodies_holds_a_few_slots_and_other_students_still_get_theirs(
    served_ingest, make_class, kafka_bootstrap, topic
):
    own_class, other_class = make_class(), make_class()
    refused_before = {reason: metric("classpulse_ingest_uploads_rejected_total", reason=reason) for reason in ("key_uploads", "slow_body")}
    async with served_ingest(upload_max_concurrent=3, upload_slot_wait_s=0.5, upload_read_timeout_s=2) as (base, keys):
        hostile = (await keys.create(Role.STUDENT, class_id=own_class))[1]
        other_student = (await keys.create(Role.STUDENT, class_id=other_class))[1]
        # One token, as many connections as there are slots, each body sent a byte every 0.2 s.
        trickling = [asyncio.create_task(slow_upload(base, own_class, hostile, FRAME, 0.2)) for _ in range(3)]
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            elsewhere = await post(client, other_class, other_student, FRAME)
            started = asyncio.get_running_loop().time()
            trickled = sorted(await asyncio.gather(*trickling))
            timed_out_after_s = asyncio.get_running_loop().time() - started
            after = await post(client, own_class, hostile, FRAME)
    assert elsewhere.status_code == 202, elsewhere.text  # a slot was left for another student (of another class)
    # The token's third upload is refused at once; its two others hold their slots until the read timeout, no longer.
    assert trickled == [408, 408, 429] and timed_out_after_s < 3
    assert after.status_code == 202  # its slots are free again
    assert {reason: metric("classpulse_ingest_uploads_rejected_total", reason=reason) - before
            for reason, before in refused_before.items()} == {"key_uploads": 1, "slow_body": 2}
    assert len(read_frames(kafka_bootstrap, topic, expected=2)) == 2


async def test_the_default_pixel_cap_fits_webcams(ingest, make_class):
    class_id = make_class()
    async with ingest() as (_app, client):
        full_hd = await post(client, class_id, ADMIN_KEY, jpeg(numbered_image(1, (1920, 1080))))
        larger = await post(client, class_id, ADMIN_KEY, jpeg(numbered_image(2, (2000, 1200))))
        bomb = await post(client, class_id, ADMIN_KEY, png_bomb(5000, 5000), "image/png")
    assert full_hd.status_code == 202
    assert larger.status_code == bomb.status_code == 413
    assert "2000x1200 pixels; at most 2073600" in larger.json()["error"]["message"]
    assert len(png_bomb(5000, 5000)) < 30_000  # the bomb: 24 KB that would decode into 25 MP


# --- Bad input ---------------------------------------------------------------------------------------------------


def damaged_jpeg() -> bytes:
    """Headers intact, end marker present, scan replaced by garbage the decoder cannot make sense of."""
    start = FRAME.index(b"\xff\xda")
    return FRAME[:start] + b"\xff\xc0\x00\x01" + bytes(200) + b"\xff\xd9"


TOO_MANY_BYTES = jpeg(np.random.default_rng(1).integers(0, 255, (1000, 1000, 3), np.uint8), 95)
UPLOAD_LIMIT = len(TOO_MANY_BYTES) - 1
"""One byte over the frame limit: refused by the upload route with its reason (far larger bodies are refused by the
service's body limit before the route is reached: see test_http_body_limits.py)."""

BAD_UPLOADS = [
    # (name, body, content type, status, reason label, words in the message)
    ("text as jpeg", b"hello, not an image", "image/jpeg", 400, "not_an_image", "not a JPEG or PNG"),
    ("gif", b"GIF89a" + bytes(100), "image/gif", 415, "content_type", "send the frame as image/jpeg"),
    ("json", b'{"frame": 1}', "application/json", 415, "content_type", "not 'application/json'"),
    ("no content type", FRAME, "", 415, "content_type", "send the frame as"),
    ("png sent as jpeg", png(numbered_image(4)), "image/jpeg", 415, "content_type_mismatch", "is a PNG image but was sent as 'image/jpeg'"),
    ("truncated jpeg", FRAME[: len(FRAME) // 2], "image/jpeg", 400, "truncated", "cut short"),
    ("truncated png", png(numbered_image(5))[:300], "image/png", 400, "truncated", "cut short"),
    ("header only", FRAME[:40], "image/jpeg", 400, "truncated", "header is incomplete"),
    ("damaged jpeg", damaged_jpeg(), "image/jpeg", 400, "undecodable", "could not be decoded"),
    ("decompression bomb", png_bomb(12_000, 12_000), "image/png", 413, "too_many_pixels", "12000x12000 pixels"),
    # Downscaled to the largest side, its width rounded to 0 and OpenCV raised: a 500 a second for a hostile page.
    ("a 1x20000 strip", png_bomb(1, 20_000), "image/png", 400, "not_a_camera_picture", "1x20000 pixels"),
    ("too many bytes", TOO_MANY_BYTES, "image/jpeg", 413, "too_large", "larger than"),
    ("empty", b"", "image/jpeg", 400, "empty", "no body"),
    ("multipart without image", b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n", "multipart/form-data; boundary=b", 400, "bad_multipart", "no 'frame' field"),
    ("multipart text part", b"--b\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n", "multipart/form-data; boundary=b", 400, "not_an_image", "not a JPEG or PNG"),
]


async def test_every_bad_upload_is_refused_with_its_reason_and_good_frames_keep_flowing(ingest, make_class, kafka_bootstrap, topic):
    class_id = make_class()
    counted_before = {reason: metric("classpulse_ingest_uploads_rejected_total", reason=reason) for *_, reason, _ in BAD_UPLOADS}
    async with ingest(max_upload_bytes=UPLOAD_LIMIT, max_image_pixels=50_000_000) as (_app, client):
        first_good = await post(client, class_id, ADMIN_KEY, FRAME)
        answers = {name: await post(client, class_id, ADMIN_KEY, body, ctype) for name, body, ctype, *_ in BAD_UPLOADS}
        unknown_class = await post(client, "no-such-class", ADMIN_KEY, FRAME)
        no_key = await client.post(f"/v1/classes/{class_id}/frames", content=FRAME, headers={"Content-Type": "image/jpeg"})
        last_good = await post(client, class_id, ADMIN_KEY, FRAME)
    for name, _body, _ctype, status, _reason, words in BAD_UPLOADS:
        answer = answers[name]
        assert answer.status_code == status, (name, answer.text)
        assert words in answer.json()["error"]["message"], (name, answer.text)
    assert unknown_class.status_code == 404 and no_key.status_code == 401
    assert first_good.status_code == last_good.status_code == 202
    expected_counts = {}
    for *_, reason, _ in BAD_UPLOADS:
        expected_counts[reason] = expected_counts.get(reason, counted_before[reason]) + 1
    assert {r: metric("classpulse_ingest_uploads_rejected_total", reason=r) for r in expected_counts} == expected_counts
    frames = read_frames(kafka_bootstrap, topic, expected=2)
    assert [f.sequence for f in frames] == [0, 1]  # only the two good frames; no bad one took a frame number


# --- The student page ----------------------------------------------------------------------------------------------


async def test_the_student_page_is_served_with_its_protections(ingest, make_class):
    class_id = make_class()
    async with ingest(student_snapshot_interval_s=3) as (_app, client):
        page = await client.get(f"/student/{class_id}")
        script = await client.get("/student-assets/student.js")
        missing = await client.get("/student/no-such-class")
        other_file = await client.get("/student-assets/..%2Fapp.py")
    assert page.status_code == 200 and f'data-class-id="{class_id}"' in page.text
    assert 'data-interval-ms="3000"' in page.text and "camera every 3 seconds" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert script.status_code == 200 and "getUserMedia" in script.text
    assert missing.status_code == 404 and other_file.status_code == 404
