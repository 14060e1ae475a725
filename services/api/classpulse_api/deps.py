"""Dependencies of the routes: stores, the caller's key, and the class a caller may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request

from classpulse_api.series import SeriesReader
from classpulse_api.store import ClassStore
from classpulse_core.schemas import ClassId
from classpulse_core.share_correction import ShareCorrection
from classpulse_store.registry import ClassRecord
from classpulse_web.auth import ApiKey, Role
from classpulse_web.keystore import require_role


def get_reader(request: Request) -> SeriesReader:
    reader: SeriesReader = request.app.state.reader
    return reader


def get_store(request: Request) -> ClassStore:
    store: ClassStore = request.app.state.classes
    return store


def get_correction(request: Request) -> ShareCorrection:
    correction: ShareCorrection = request.app.state.shares
    return correction


ReaderDep = Annotated[SeriesReader, Depends(get_reader)]
StoreDep = Annotated[ClassStore, Depends(get_store)]
CorrectionDep = Annotated[ShareCorrection, Depends(get_correction)]
AdminKey = Annotated[ApiKey, Depends(require_role(Role.ADMIN))]
ReaderKey = Annotated[ApiKey, Depends(require_role(Role.ADMIN, Role.TEACHER, Role.VIEWER))]
ClassIdParam = Annotated[ClassId, Path(description="the class's id")]
# The pages of the logs read newest first (a class's alerts, a target's delivery attempts and dead letters).
LogOffsetParam = Annotated[int, Query(ge=0, le=100_000, description="how many of the newest to skip")]
LogLimitParam = Annotated[int, Query(ge=1, le=500, description="how many at most")]


def readable_as(request: Request, key: ApiKey, record: ClassRecord) -> ClassRecord | None:
    """The class as `key` may read it, with the emotion mode in force for it; None if it may not read it."""
    if not key.can_read_class(record.class_id, record.teacher):
        return None
    if not request.app.state.settings.emotion_enabled:
        # A presence-only deployment: no class has emotions, whatever its own setting says.
        return record.model_copy(update={"emotion_enabled": False})
    return record


async def readable_class(request: Request, class_id: ClassIdParam, key: ReaderKey, store: StoreDep) -> ClassRecord:
    """The class, if it exists (404) and the caller may read it (403), with the emotion mode in force for it."""
    record = await store.get(class_id)
    if record is None:
        raise HTTPException(404, f"class {class_id!r} does not exist")
    readable = readable_as(request, key, record)
    if readable is None:
        raise HTTPException(403, f"this key may not read class {class_id!r}")
    return readable


ReadableClass = Annotated[ClassRecord, Depends(readable_class)]


async def lesson_class(record: ReadableClass, key: ReaderKey) -> ClassRecord:
    """A class whose lessons the caller may start and end: its teacher or an admin, not an embedded viewer."""
    if key.role == Role.VIEWER:
        raise HTTPException(403, "a viewer key only reads its class; lessons are started and ended by its teacher")
    return record


LessonClass = Annotated[ClassRecord, Depends(lesson_class)]


async def managed_class(class_id: ClassIdParam, _key: AdminKey, store: StoreDep) -> ClassRecord:
    record = await store.get(class_id)
    if record is None:
        raise HTTPException(404, f"class {class_id!r} does not exist")
    return record


ManagedClass = Annotated[ClassRecord, Depends(managed_class)]
