"""Sources running inside the ingest service (cameras, streams, recordings), started and stopped by an admin.

A source started here reads a URL (rtsp, rtsps, http, https) whose host is inside the allowed camera networks
(destinations.py), a camera of the ingest host by index, or a file or folder given by its absolute path inside
CLASSPULSE_MEDIA_DIR (only there: an API key must not make the service read any file it can see; and only an
absolute path, which FFmpeg cannot take for protocol syntax such as `concat:` or `subfile,`).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from classpulse_core.schemas import CameraKind, ClassId
from classpulse_ingest.diagnose import SourceError
from classpulse_ingest.manager import SourceManager, TooManySources
from classpulse_ingest.runner import SourceStatus
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.video import SourceKind, SourceSpec
from classpulse_store.registry import class_key
from classpulse_web.auth import ApiKey, Role
from classpulse_web.keystore import require_role

router = APIRouter(tags=["sources"])
AdminKey = Annotated[ApiKey, Depends(require_role(Role.ADMIN))]
STOP_WAIT_S = 5.0


class SourceRequest(BaseModel):
    url: str = Field(min_length=1, max_length=2048, description="rtsp/http(s) URL, camera index, or a path in the media dir")
    fps: float | None = Field(None, gt=0, description="frames per second to sample; default CLASSPULSE_DEFAULT_FPS")
    session_id: str | None = Field(None, max_length=128)
    source_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="default: a new id")
    realtime: bool = Field(True, description="play a recording at its own pace (false: as fast as the quota allows)")
    camera_kind: CameraKind = Field(
        "room",
        description="what the camera shows: room (several students in one place, every face counts), gallery (a video "
        "call's gallery or screen share of students' tiles, every face counts) or personal (one student)",
    )


def _manager(request: Request) -> SourceManager:
    manager: SourceManager = request.app.state.sources
    return manager


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _allowed_spec(location: str, settings: IngestSettings) -> SourceSpec:
    # No URL, camera index or path holds one, and a NUL makes the path checks below raise instead of refuse.
    if CONTROL_CHARACTERS.search(location):
        raise HTTPException(422, f"a source location has no control characters; {location!r} has")
    spec = SourceSpec(location)
    if spec.kind in (SourceKind.FILE, SourceKind.FOLDER):
        media_dir = settings.media_dir.resolve() if settings.media_dir else None
        resolved = FilePath(location).resolve()
        if media_dir is None or not FilePath(location).is_absolute() or not resolved.is_relative_to(media_dir):
            where = f"inside {media_dir}" if media_dir else "nowhere (CLASSPULSE_MEDIA_DIR is not set)"
            raise HTTPException(
                422, f"files and folders may be ingested only by their absolute path {where}; {location!r} is not"
            )
        spec = SourceSpec(str(resolved))  # what was checked is what is opened, links included
    try:
        spec.validate(settings)
    except SourceError as exc:
        raise HTTPException(422, str(exc)) from None
    return spec


@router.post("/v1/classes/{class_id}/sources", status_code=201, response_model=SourceStatus, summary="Start a source")
async def start_source(
    request: Request, class_id: Annotated[ClassId, Path()], body: SourceRequest, _key: AdminKey
) -> SourceStatus:
    settings: IngestSettings = request.app.state.settings
    fps = body.fps or settings.default_fps
    if fps > settings.max_source_fps:
        raise HTTPException(422, f"fps {fps:g} is above the most a source may sample, {settings.max_source_fps:g}")
    spec = _allowed_spec(body.url, settings)
    if not await request.app.state.redis.exists(class_key(class_id)):
        raise HTTPException(404, f"class {class_id!r} is not registered")
    options = {"session_id": body.session_id, "realtime": body.realtime, "camera_kind": body.camera_kind}
    try:
        return await asyncio.to_thread(_manager(request).create, spec, class_id, fps, body.source_id, **options)
    except TooManySources as exc:
        raise HTTPException(503, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/v1/sources", response_model=list[SourceStatus], summary="Every source of the deployment")
async def list_sources(
    request: Request, _key: AdminKey, class_id: Annotated[ClassId | None, Query()] = None
) -> list[SourceStatus]:
    statuses = await asyncio.to_thread(_manager(request).all)
    return [status for status in statuses if class_id is None or status.class_id == class_id]


@router.get("/v1/sources/{source_id}", response_model=SourceStatus, summary="One source's state")
async def get_source(request: Request, source_id: str, _key: AdminKey) -> SourceStatus:
    return _known(source_id, await asyncio.to_thread(_manager(request).status, source_id))


@router.delete("/v1/sources/{source_id}", response_model=SourceStatus, summary="Stop a source, wherever it runs")
async def stop_source(request: Request, source_id: str, _key: AdminKey) -> SourceStatus:
    return _known(source_id, await asyncio.to_thread(_manager(request).stop, source_id, STOP_WAIT_S))


def _known(source_id: str, status: SourceStatus | None) -> SourceStatus:
    if status is None:
        raise HTTPException(404, f"no source {source_id!r}")
    return status
