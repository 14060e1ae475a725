"""Classes and their sessions (lessons)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from classpulse_api.deps import AdminKey, LessonClass, ManagedClass, ReadableClass, ReaderKey, StoreDep
from classpulse_api.models import ClassCreate, ClassOut, ClassUpdate, Page, SessionStart
from classpulse_api.store import Session
from classpulse_store.registry import ClassRecord
from classpulse_web.auth import Role

router = APIRouter(prefix="/v1/classes", tags=["classes"])

Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post("", status_code=201, response_model=ClassOut, summary="Register a class (admin)")
async def create_class(body: ClassCreate, _key: AdminKey, store: StoreDep) -> ClassRecord:
    record = ClassRecord(**body.model_dump())
    if not await store.create(record):
        raise HTTPException(409, f"class {body.class_id!r} already exists")
    created = await store.get(body.class_id)
    if created is None:  # deleted by another request in between
        raise HTTPException(404, f"no class {body.class_id!r}")
    return created


@router.get("", response_model=Page[ClassOut], summary="List the classes the caller may read")
async def list_classes(key: ReaderKey, store: StoreDep, offset: Offset = 0, limit: Limit = 50) -> Page[ClassRecord]:
    # An admin key reads every class, a teacher key the classes whose teacher it is (ApiKey.can_read_class).
    if key.role == Role.ADMIN:
        items, total = await store.page(offset, limit)
    elif key.teacher_id:
        items, total = await store.page(offset, limit, teacher=key.teacher_id)
    else:
        # A viewer key reads its one class; other keys (service, student) read none.
        record = await store.get(key.class_id) if key.role == Role.VIEWER and key.class_id else None
        own = [record] if record is not None else []
        items, total = own[offset : offset + limit], len(own)
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get("/{class_id}", response_model=ClassOut, summary="One class")
async def get_class(record: ReadableClass) -> ClassRecord:
    return record


@router.patch("/{class_id}", response_model=ClassOut, summary="Change a class (admin)")
async def update_class(body: ClassUpdate, record: ManagedClass, store: StoreDep) -> ClassRecord:
    # Only the fields sent, and null means "leave as is": a class always has a name, a size and a mode.
    updated = await store.update(record.class_id, body.model_dump(exclude_unset=True, exclude_none=True))
    if updated is None:  # deleted by another request in between
        raise HTTPException(404, f"no class {record.class_id!r}")
    return updated


@router.delete(
    "/{class_id}", status_code=204, summary="Delete a class and every metric, session, event and webhook of it (admin)"
)
async def delete_class(record: ManagedClass, store: StoreDep, request: Request) -> Response:
    await store.delete(record.class_id)
    for hook in await request.app.state.webhooks.of_class(record.class_id):
        await request.app.state.webhooks.delete(hook.webhook_id)
        await request.app.state.outbox.forget(hook.target)
    return Response(status_code=204)


@router.post("/{class_id}/sessions", status_code=201, response_model=Session, summary="Start a session (lesson)")
async def start_session(body: SessionStart, record: LessonClass, store: StoreDep) -> Session:
    session = await store.start_session(record.class_id, body.name)
    if session is None:  # deleted by another request in between
        raise HTTPException(404, f"no class {record.class_id!r}")
    return session


@router.post("/{class_id}/sessions/{session_id}/end", response_model=Session, summary="End a session")
async def end_session(session_id: str, record: LessonClass, store: StoreDep) -> Session:
    session = await store.get_session(record.class_id, session_id)
    if session is None:
        raise HTTPException(404, f"class {record.class_id!r} has no session {session_id!r}")
    ended = await store.end_session(session)
    if ended is None:  # ended before, or by another request in between
        raise HTTPException(409, f"session {session_id!r} has already ended")
    return ended


@router.get("/{class_id}/sessions", response_model=Page[Session], summary="A class's sessions, newest first")
async def list_sessions(record: ReadableClass, store: StoreDep, offset: Offset = 0, limit: Limit = 50) -> Page[Session]:
    items, total = await store.sessions(record.class_id, offset, limit)
    return Page(items=items, total=total, offset=offset, limit=limit)
