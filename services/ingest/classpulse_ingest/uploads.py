"""Frames posted over HTTP (by students' pages, or by services), and the student tokens that let a page post them.

`POST /v1/classes/{class_id}/frames` takes one JPEG or PNG, as the raw body or as the `frame` field of a
multipart/form-data form. A student token is one student: all its frames form one source (`student-<key id>`), from
however many pages, and its camera is personal unless the token was issued for a room camera. A service or admin key
names its source (`X-Source-Id`) and says what its camera shows (`X-Camera-Kind`, room by default). The image is checked before it is decoded (type, declared pixels, completeness), decoded,
downscaled if oversized, re-encoded as JPEG and queued for Kafka like any other frame. Each refusal is a 4xx with
its reason, counted by reason in `classpulse_ingest_uploads_rejected_total`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from prometheus_client import Counter
from pydantic import BaseModel, Field

from classpulse_common.auth import ApiKey, Role
from classpulse_common.keystore import CallerKey, require_role
from classpulse_common.registry import ClassRecord, class_key
from classpulse_common.schemas import CameraKind, ClassId
from classpulse_ingest.images import ImageRejected, ImageType, decode_image, media_type, multipart_image
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.publisher import FrameIdentity, now_ms
from classpulse_ingest.ratelimit import Decision

router = APIRouter(tags=["frames"])

UPLOADS_REJECTED = Counter("classpulse_ingest_uploads_rejected_total", "Posted frames refused", ["reason"])
MULTIPART = "multipart/form-data"
ACCEPTED_TYPES = (ImageType.JPEG.value, ImageType.PNG.value, MULTIPART)
MULTIPART_OVERHEAD_BYTES = 16 * 1024  # boundaries and part headers around the image
MAX_CAPTURE_AGE_MS = 60_000
SEQUENCE_TTL_S = 24 * 3600  # a source's frame counter outlives any lesson; an idle one is forgotten after a day

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
    class_id: Annotated[ClassId, Path()],
    key: Annotated[ApiKey, Depends(require_role(Role.SERVICE, Role.ADMIN, Role.STUDENT))],
    content_type: Annotated[str, Header()] = "",
    x_source_id: SourceIdHeader = None,
    x_session_id: Annotated[str | None, Header(max_length=128)] = None,
    x_camera_kind: Annotated[
        CameraKind,
        Header(description="service and admin keys: room (several students; the default) or personal (one student)"),
    ] = "room",
    x_capture_age_ms: Annotated[
        int | None, Header(ge=0, description="how long ago the frame was taken, by the sender's clock")
    ] = None,
) -> FrameAccepted:
    received_ms = now_ms()
    if not key.can_post_frames(class_id):
        raise Rejected(403, "wrong_class", f"this student key posts frames of class {key.class_id!r} only")
    declared = media_type(content_type)
    if declared not in ACCEPTED_TYPES:
        raise Rejected(415, "content_type", f"send the frame as {' or '.join(ACCEPTED_TYPES)}, not {content_type!r}")
    if not await request.app.state.redis.exists(class_key(class_id)):
        raise Rejected(404, "unknown_class", f"class {class_id!r} is not registered")
    limit = request.app.state.settings.max_upload_bytes
    body = await _read_bounded(request, limit + (MULTIPART_OVERHEAD_BYTES if declared == MULTIPART else 0))
    pipeline: Pipeline = request.app.state.pipeline
    source_id = _source_id(key, x_source_id)
    if key.role == Role.STUDENT:
        # A student page's own rate first, before any decoding: a page posting in a loop costs no more than a lookup.
        _within_rate(await asyncio.to_thread(pipeline.quotas.take_upload_source, class_id, source_id), "source_rate",
                     f"source {source_id!r} posts faster than {pipeline.settings.upload_source_max_fps:g} frames/s")
    try:
        if declared == MULTIPART:
            body, part_type = multipart_image(body, content_type)
            declared = None if part_type in (None, "application/octet-stream") else part_type
            if len(body) > limit:
                raise ImageRejected(413, "too_large", f"frame larger than {limit} bytes")
        image = await asyncio.to_thread(decode_image, body, pipeline.settings.max_image_pixels, declared)
    except ImageRejected as exc:
        raise Rejected(exc.status, exc.reason, str(exc)) from None
    # The class's quota counts only frames that are real images.
    _within_rate(await asyncio.to_thread(pipeline.quotas.take_class, class_id), "class_quota",
                 f"class {class_id!r} is over its quota of {pipeline.settings.class_quota_fps(class_id):g} frames/s")
    sequence = await _next_sequence(pipeline.redis, class_id, source_id)
    age_ms = min(x_capture_age_ms or 0, MAX_CAPTURE_AGE_MS)
    camera_kind = (key.camera_kind or "personal") if key.role == Role.STUDENT else x_camera_kind
    identity = FrameIdentity(class_id, source_id, sequence, received_ms - age_ms, x_session_id, camera_kind)
    frame = await asyncio.to_thread(pipeline.publisher.publish, image, identity, request.app.state.upload_tally)
    return FrameAccepted(
        frame_id=frame.frame_id,
        source_id=source_id,
        sequence=sequence,
        width=frame.width,
        height=frame.height,
        captured_at_ms=frame.captured_at_ms,
        camera_kind=frame.camera_kind,
    )


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


async def _next_sequence(client: redis.Redis, class_id: str, source_id: str) -> int:
    """Frame numbers of a source count in Redis, so they stay unique across ingest replicas and restarts."""

    def increment() -> int:
        counter = f"ingest:sequence:{{{class_id}}}:{source_id}"
        pipe = client.pipeline(transaction=True)
        pipe.incr(counter)
        pipe.expire(counter, SEQUENCE_TTL_S)
        return int(pipe.execute()[0]) - 1

    return await asyncio.to_thread(increment)


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
        "personal", description="personal: the student's own camera (counts as one student at most); room: a camera on several"
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
    if not key.can_read_class(ClassRecord.from_hash(fields).teacher):
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
