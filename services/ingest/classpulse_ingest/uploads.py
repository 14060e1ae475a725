"""Frames posted over HTTP (by students' pages, or by services), and the student tokens that let a page post them.

`POST /v1/classes/{class_id}/frames` takes one JPEG or PNG, as the raw body or as the `frame` field of a
multipart/form-data form. A student token is one student: all its frames form one source (`student-<key id>`), from
however many pages, and its camera is personal unless the token was issued for a room camera. A service or admin key
names its source (`X-Source-Id`) and says what its camera shows (`X-Camera-Kind`, room by default).

What a frame costs is bounded by its credential before any of its bytes are read: the key's own rate (a student
token's, or a service key's over all its sources), the number of source ids a service key posts under, the class's
quota, the uploads the key has in progress (a few at once), then one of a few upload slots (the body is read, within
`CLASSPULSE_UPLOAD_READ_TIMEOUT_S`, checked and decoded only inside one). The image is checked before it is decoded
(type, declared pixels, completeness), decoded, downscaled if oversized, re-encoded as JPEG and queued for Kafka like
any other frame. Each refusal is a 4xx (503 when every slot stays busy) with its reason, counted by reason in
`classpulse_ingest_uploads_rejected_total`.

A frame posted with an `Idempotency-Key` is published at most once per key (`_answered_once`): its answer is recorded
under the key before the frame is queued, so the record, not the timing of the uploads, decides which one publishes."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, cast

import numpy as np
import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel, Field
from redis.typing import EncodableT, KeyT

from classpulse_core.schemas import CameraKind, ClassId
from classpulse_ingest.images import ImageRejected, ImageType, decode_image, media_type, multipart_image
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.publisher import FrameIdentity, now_ms, reserve_sequences
from classpulse_ingest.ratelimit import Decision, Quotas
from classpulse_ingest.settings import IngestSettings
from classpulse_store.registry import ClassRecord, class_key
from classpulse_web.auth import ApiKey, Role
from classpulse_web.keystore import CallerKey, require_role

log = logging.getLogger(__name__)

router = APIRouter(tags=["frames"])

UPLOADS_REJECTED = Counter("classpulse_ingest_uploads_rejected_total", "Posted frames refused", ["reason"])
UPLOADS_REPLAYED = Counter(
    "classpulse_ingest_uploads_replayed_total", "Retries of posted frames answered as the first time, nothing published"
)
REPLAYED_HEADER = "Idempotent-Replayed"
IN_PROGRESS = "in progress"  # an idempotency key's record while an upload holds it (its token is in the holder key)
CLAIM_TTL_MS = 3000
"""How long an upload's hold on its idempotency key outlives its last renewal (every CLAIM_RENEW_S while it runs):
how long the retries of an upload whose process died, or that lost Redis, get 409 before one may try afresh. It bounds
no upload's duration: one that loses its hold (stalled, cut off from Redis) publishes nothing."""
CLAIM_RENEW_S = 1.0
RECORDING_WITHIN_S = 2.0  # how long an upload tries to record its answer (Redis unavailable) before it gives up
RECORDING_RETRY_S = 0.1
MULTIPART = "multipart/form-data"
ACCEPTED_TYPES = (ImageType.JPEG.value, ImageType.PNG.value, MULTIPART)
MULTIPART_OVERHEAD_BYTES = 16 * 1024  # boundaries and part headers around the image
# A student page posts each snapshot as soon as it is taken, retries included; an older one would count the student in
# a moment of the lesson already past (present when they were not).
MAX_STUDENT_CAPTURE_AGE_MS = 60_000
UPLOAD_WORK_S = 5.0  # decoding and queueing a frame once its body arrived: far less than this

SourceIdHeader = Annotated[
    str | None,
    Header(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="the posting page's or device's own id"),
]


class Rejected(HTTPException):
    """A refused upload: counted by reason, answered with the reason in words."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        UPLOADS_REJECTED.labels(reason).inc()
        super().__init__(status, message, headers)


class FrameAccepted(BaseModel):
    frame_id: str
    source_id: str
    sequence: int
    width: int
    height: int
    captured_at_ms: int
    camera_kind: CameraKind


@router.post(
    "/v1/classes/{class_id}/frames",
    status_code=202,
    response_model=FrameAccepted,
    summary="Post one frame of a class (JPEG or PNG, raw body or multipart field 'frame')",
)
async def post_frame(
    request: Request,
    response: Response,
    class_id: Annotated[ClassId, Path()],
    key: Annotated[ApiKey, Depends(require_role(Role.SERVICE, Role.ADMIN, Role.STUDENT))],
    content_type: Annotated[str, Header()] = "",
    x_source_id: SourceIdHeader = None,
    x_session_id: Annotated[str | None, Header(max_length=128)] = None,
    x_camera_kind: Annotated[
        CameraKind,
        Header(description="service and admin keys: room (several students; the default), gallery (a video call's "
                           "tiles) or personal (one student)"),
    ] = "room",
    x_capture_age_ms: Annotated[
        int,
        Header(
            ge=0,
            description="how long ago the frame was taken, by the sender's clock: at most 60 s for a student token; "
            "for a service or admin key, within the raw series' retention (CLASSPULSE_RAW_RETENTION_MS)",
        ),
    ] = 0,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=128,
            pattern=r"^[A-Za-z0-9_.:-]+$",
            description="one per frame, sent again with each retry of it: a retry within CLASSPULSE_UPLOAD_IDEMPOTENCY_"
            "WINDOW_S gets the first answer (with Idempotent-Replayed: true) and publishes nothing; one while the first "
            "is still in progress gets 409 (for at most 3 s after the first's process died); an upload that cannot "
            "record its answer in Redis publishes nothing and gets 503",
        ),
    ] = None,
) -> FrameAccepted:
    received_ms = now_ms()
    if not key.can_post_frames(class_id):
        raise Rejected(403, "wrong_class", f"this student key posts frames of class {key.class_id!r} only")
    declared = media_type(content_type)
    if declared not in ACCEPTED_TYPES:
        raise Rejected(415, "content_type", f"send the frame as {' or '.join(ACCEPTED_TYPES)}, not {content_type!r}")
    pipeline: Pipeline = request.app.state.pipeline
    settings = pipeline.settings
    if not await request.app.state.redis.exists(class_key(class_id)):
        raise Rejected(404, "unknown_class", f"class {class_id!r} is not registered")
    async with _answered_once(request.app.state.redis, class_id, key.key_id, idempotency_key, settings) as once:
        if once.first_answer is not None:
            response.headers[REPLAYED_HEADER] = "true"
            return once.first_answer
        student = key.role == Role.STUDENT
        # Refused rather than placed at another instant than the sender says: either would misstate the lesson.
        max_age_ms = MAX_STUDENT_CAPTURE_AGE_MS if student else settings.raw_retention_ms
        if x_capture_age_ms > max_age_ms:
            raise Rejected(
                422, "capture_age", f"the frame was taken {x_capture_age_ms} ms ago (X-Capture-Age-Ms): this key posts "
                f"frames at most {max_age_ms} ms old"
            )
        source_id = _source_id(key, x_source_id)
        # Everything a frame costs is paid for before its bytes are read or decoded, the cheapest first: a credential
        # posting in a loop, under any number of source ids, costs its own rate and no more than a lookup a request.
        rate = settings.upload_source_max_fps if student else settings.upload_key_max_fps
        _within_rate(await asyncio.to_thread(pipeline.quotas.take_credential, key.key_id, student), "key_rate",
                     f"this key posts faster than {rate:g} frames/s, whatever its source ids")
        if not student:
            _within_rate(await asyncio.to_thread(pipeline.quotas.take_source, key.key_id, source_id), "key_sources",
                         f"this key posted under {settings.upload_key_max_sources} source ids within the hour; "
                         f"{source_id!r} would be one more")
        # A frame that then proves not to be an image has still used its class's quota: it cost the class a slot all
        # the same.
        _within_rate(await asyncio.to_thread(pipeline.quotas.take_class, class_id), "class_quota",
                     f"class {class_id!r} is over its quota of {settings.class_quota_fps(class_id):g} frames/s")
        # The body, its decoded pixels and their re-encoding exist only inside one of a bounded number of slots: memory
        # stays bounded however many uploads arrive at once (the others wait, holding no more than their connection).
        # A slow sender holds its slot until its body arrives or times out, so a key holds only a few at once: one
        # token trickling bytes on several connections never takes every slot from the other students.
        async with (
            _key_upload(pipeline.quotas, key.key_id, student, settings),
            _upload_slot(request.app.state.upload_slots, settings.upload_slot_wait_s),
        ):
            image = await _received_image(request, declared, content_type, settings)
            sequence = await asyncio.to_thread(reserve_sequences, pipeline.redis, class_id, source_id, 1)
            camera_kind = (key.camera_kind or "personal") if student else x_camera_kind
            identity = FrameIdentity(class_id, source_id, sequence, received_ms - x_capture_age_ms, x_session_id, camera_kind)
            frame = await asyncio.to_thread(pipeline.publisher.frame, image, identity)
            answer = FrameAccepted(
                frame_id=frame.frame_id,
                source_id=source_id,
                sequence=sequence,
                width=frame.width,
                height=frame.height,
                captured_at_ms=frame.captured_at_ms,
                camera_kind=frame.camera_kind,
            )
            queue = partial(pipeline.publisher.queue, frame, request.app.state.upload_tally)
            await request.app.state.upload_publishes.run(once.publish(answer, queue))
    return answer


def _source_id(key: ApiKey, posted: str | None) -> str:
    """A student's source is the token itself: one student, counted once in presence and limited to one rate,
    whatever page ids it sends; one student's pages can never pass for another's source."""
    if key.role == Role.STUDENT:
        return f"student-{key.key_id}"
    return posted or f"upload-{key.key_id}"


def _within_rate(decision: Decision, reason: str, message: str) -> None:
    if not decision.allowed:
        retry_after = max(1, round(decision.retry_after_s + 0.5))
        raise Rejected(429, reason, f"{message}: retry in {retry_after} s", {"Retry-After": str(retry_after)})


def _longest_upload_ms(settings: IngestSettings) -> int:
    return round((settings.upload_slot_wait_s + settings.upload_read_timeout_s + UPLOAD_WORK_S) * 1000)


# KEYS: the idempotency key's record, then its holder key. While an upload holds the key, the record reads IN_PROGRESS
# and the holder key holds the upload's token: a replica not yet upgraded to tokens takes a record reading anything
# else for an answer. ARGV: the upload's token, then what the script does with it. Every script of a claim does
# nothing (0) where the key is not that upload's any more: its claim lapsed, and a retry may hold the key now.
_IF_CLAIMED = f"""
if redis.call('GET', KEYS[2]) ~= ARGV[1] or redis.call('GET', KEYS[1]) ~= '{IN_PROGRESS}' then return 0 end
"""
# ARGV[2]: time to live, ms. The record as it was, or nil where it was free and is this upload's now.
_CLAIM = f"""
local first = redis.call('GET', KEYS[1])
if first then return first end
redis.call('SET', KEYS[1], '{IN_PROGRESS}', 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return false
"""
_RENEW = _IF_CLAIMED + "redis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn redis.call('PEXPIRE', KEYS[2], ARGV[2])"
_RELEASE = _IF_CLAIMED + "return redis.call('DEL', KEYS[1], KEYS[2])"
# ARGV[2]: the answer, ARGV[3]: how long it is kept, s. 1 also where the answer is there already: an earlier try of
# this same recording was applied, and its reply lost.
_RECORD = """
if redis.call('GET', KEYS[1]) == ARGV[2] then return 1 end
""" + _IF_CLAIMED + "redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\nredis.call('DEL', KEYS[2])\nreturn 1"


class _Claim:
    """An upload's hold on its idempotency key while it runs: the holder key holds its token, so that this upload
    alone renews it, replaces it with its answer or lets it go."""

    def __init__(self, client: aioredis.Redis, class_id: str, key_id: str, idempotency_key: str) -> None:
        self.record = f"ingest:upload-once:{{{class_id}}}:{key_id}:{idempotency_key}"
        self._keys: list[KeyT] = [self.record, f"ingest:upload-holder:{{{class_id}}}:{key_id}:{idempotency_key}"]
        self.token = uuid.uuid4().hex
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._record = client.register_script(_RECORD)
        self.recorded = False

    async def take(self) -> str | None:
        """Hold the key if it is free; else what its record reads (IN_PROGRESS, or the first upload's answer)."""
        return cast(str | None, await self._claim(keys=self._keys, args=[self.token, CLAIM_TTL_MS]))

    async def renew_while_held(self) -> None:
        while True:
            await asyncio.sleep(CLAIM_RENEW_S)
            try:
                if not await self._renew(keys=self._keys, args=[self.token, CLAIM_TTL_MS]):
                    return  # lapsed: recording the answer will fail, and nothing is published
            except redis.RedisError as exc:
                log.warning("idempotency claim not renewed", extra={"record": self.record, "error": repr(exc)})

    async def record_answer(self, answer: FrameAccepted, window_s: int) -> bool:
        """Replace the claim with the answer, trying again while Redis fails; False if the claim lapsed or Redis did
        not take the answer within RECORDING_WITHIN_S."""
        args: list[EncodableT] = [self.token, answer.model_dump_json(), window_s]
        try:
            async with asyncio.timeout(RECORDING_WITHIN_S):
                while True:
                    try:
                        self.recorded = bool(await self._record(keys=self._keys, args=args))
                        return self.recorded
                    except redis.RedisError as exc:
                        log.warning("upload answer not recorded yet", extra={"record": self.record, "error": repr(exc)})
                        await asyncio.sleep(RECORDING_RETRY_S)
        except TimeoutError:
            return False

    async def release(self) -> None:
        try:
            await self._release(keys=self._keys, args=[self.token])
        except redis.RedisError as exc:
            log.warning("idempotency claim left to lapse", extra={"record": self.record, "error": repr(exc)})


@dataclass
class _Once:
    window_s: int
    claim: _Claim | None = None
    """This upload's hold on its idempotency key; None without one."""
    first_answer: FrameAccepted | None = None
    """What the first upload with the same idempotency key was answered: this one is a retry of it."""

    async def publish(self, answer: FrameAccepted, queue: Callable[[], None]) -> None:
        """Queue the frame once its answer is recorded under the idempotency key, with no pause between the two:
        whatever retry comes later finds the answer and publishes nothing."""
        if self.claim is not None and not await self.claim.record_answer(answer, self.window_s):
            retry_after = math.ceil(CLAIM_TTL_MS / 1000)
            raise Rejected(
                503, "unrecorded", "this upload could not be recorded under its Idempotency-Key (Redis unavailable, or "
                f"the upload lost its hold on the key): nothing was published; retry in {retry_after} s",
                {"Retry-After": str(retry_after)},
            )
        queue()


class ShieldedPublishes:
    """The uploads recording their answers and queuing their frames, shielded from their requests' cancellation: one
    cancelled (its client gone, or the requests' part of a shutdown over) once its answer is recorded still queues its
    frame, or the retries would be answered for a frame never published. A shutdown waits for them before the Kafka
    sender closes: at most RECORDING_WITHIN_S, as long as recording an answer may take."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, publish: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(publish)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await asyncio.shield(task)

    async def finished(self) -> None:
        if self._running:
            await asyncio.wait(self._running)


@asynccontextmanager
async def _answered_once(
    client: aioredis.Redis, class_id: str, key_id: str, idempotency_key: str | None, settings: IngestSettings
) -> AsyncIterator[_Once]:
    """An upload with an idempotency key (the key's own: another key's same value is another upload) claims it while it
    runs, then keeps its answer for the window; a retry gets that answer (409 while the first still runs).

    The answer replaces the claim before the frame is queued, and only where the claim is still this upload's: of two
    uploads that each held the key in turn (the first stalled past its claim's time to live, then a retry claimed
    the key), one records its answer and publishes, the other publishes nothing. Recording it is tried again for
    RECORDING_WITHIN_S while Redis fails; an upload that cannot record it publishes nothing (503), like a refused or
    failed one: it lets the claim go, and its retry is a new try. An upload renews its claim while it runs, so a claim
    never let go (its process died, or lost Redis) lapses CLAIM_TTL_MS after, and holds its retries back (409) no
    longer."""
    once = _Once(settings.upload_idempotency_window_s)
    if idempotency_key is None:
        yield once
        return
    claim = _Claim(client, class_id, key_id, idempotency_key)
    first = await claim.take()
    if first == IN_PROGRESS:
        raise Rejected(409, "in_progress", "the first upload with this Idempotency-Key is still in progress: retry in 1 s",
                       {"Retry-After": "1"})
    if first is not None:
        UPLOADS_REPLAYED.inc()
        once.first_answer = FrameAccepted.model_validate_json(first)
        yield once
        return
    once.claim = claim
    renewing = asyncio.create_task(claim.renew_while_held())
    try:
        yield once
    finally:
        renewing.cancel()
        if not claim.recorded:
            await claim.release()


@asynccontextmanager
async def _key_upload(quotas: Quotas, key_id: str, student: bool, settings: IngestSettings) -> AsyncIterator[None]:
    upload_id = uuid.uuid4().hex
    # Past the longest an upload can take, it stops counting: one whose process died does not hold its key's place.
    hold_ms = _longest_upload_ms(settings)
    _within_rate(await asyncio.to_thread(quotas.hold_upload, key_id, student, upload_id, hold_ms), "key_uploads",
                 f"this key has {quotas.uploads_at_once(student)} uploads in progress already")
    try:
        yield
    finally:
        await asyncio.to_thread(quotas.release_upload, key_id, upload_id)


@asynccontextmanager
async def _upload_slot(slots: asyncio.Semaphore, wait_s: float) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(wait_s):
            await slots.acquire()
    except TimeoutError:
        raise Rejected(503, "busy", "ingest is busy with other uploads: retry in 1 s", {"Retry-After": "1"}) from None
    try:
        yield
    finally:
        slots.release()


async def _received_image(request: Request, declared: str | None, content_type: str, settings: IngestSettings) -> np.ndarray:
    """The posted image, read (within the read timeout: a slow sender must not hold a slot) and decoded once its
    header passed."""
    limit = settings.max_upload_bytes
    try:
        async with asyncio.timeout(settings.upload_read_timeout_s):
            body = await _read_bounded(request, limit + (MULTIPART_OVERHEAD_BYTES if declared == MULTIPART else 0))
    except TimeoutError:
        raise Rejected(408, "slow_body", f"the frame did not arrive within {settings.upload_read_timeout_s:g} s") from None
    try:
        if declared == MULTIPART:
            body, part_type = multipart_image(body, content_type)
            declared = None if part_type in (None, "application/octet-stream") else part_type
            if len(body) > limit:
                raise ImageRejected(413, "too_large", f"frame larger than {limit} bytes")
        return await asyncio.to_thread(decode_image, body, settings.max_image_pixels, declared)
    except ImageRejected as exc:
        raise Rejected(exc.status, exc.reason, str(exc)) from None


async def _read_bounded(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "too_large", f"frame larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "too_large", f"frame larger than {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise Rejected(400, "empty", "the request has no body: send the frame's bytes")
    return b"".join(chunks)


# --- Student tokens ---------------------------------------------------------------------------------------------


class StudentTokenRequest(BaseModel):
    name: str = Field("", max_length=100, description="a label for whoever hands it out; never shown to the class")
    camera_kind: CameraKind = Field(
        "personal",
        description="personal: the student's own camera (counts as one student at most); room: a camera on several; "
        "gallery: a screen share of a video call's tiles",
    )
    ttl_s: int | None = Field(None, ge=60, le=7 * 24 * 3600, description="lifetime; default CLASSPULSE_STUDENT_TOKEN_TTL_S")


class StudentToken(BaseModel):
    key_id: str
    class_id: str
    api_key: str = Field(description="shown once: the student page's token")
    expires_at_ms: int
    camera_kind: CameraKind
    page_url: str = Field(description="the student page, relative to this service, with the token in its fragment")


@router.post(
    "/v1/classes/{class_id}/student-tokens",
    status_code=201,
    response_model=StudentToken,
    tags=["students"],
    summary="Issue a token that lets a student page post frames of this class (admin or the class's teacher)",
)
async def issue_student_token(
    request: Request, class_id: Annotated[ClassId, Path()], key: CallerKey, body: StudentTokenRequest | None = None
) -> StudentToken:
    if key.role not in (Role.ADMIN, Role.TEACHER):
        raise HTTPException(403, f"a {key.role.value} key may not issue student tokens; an admin or the class's teacher may")
    fields = await request.app.state.redis.hgetall(class_key(class_id))
    if not fields:
        raise HTTPException(404, f"class {class_id!r} is not registered")
    if not key.can_read_class(class_id, ClassRecord.from_hash(fields).teacher):
        raise HTTPException(403, f"this key may not issue tokens for class {class_id!r}")
    body = body or StudentTokenRequest()
    ttl_s = body.ttl_s or request.app.state.settings.student_token_ttl_s
    student, presented = await request.app.state.keys.create(
        Role.STUDENT, body.name, class_id=class_id, ttl_s=ttl_s, camera_kind=body.camera_kind
    )
    return StudentToken(
        key_id=student.key_id,
        class_id=class_id,
        api_key=presented,
        expires_at_ms=student.expires_at_ms,
        camera_kind=body.camera_kind,
        page_url=f"/student/{class_id}#token={presented}",
    )
