"""API keys (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from classpulse_api.deps import AdminKey
from classpulse_api.models import KeyCreate, KeyCreated
from classpulse_web.auth import ApiKey, Role

router = APIRouter(prefix="/v1/keys", tags=["api keys"])


@router.post("", status_code=201, response_model=KeyCreated, summary="Create a key; the key itself is shown once")
async def create_key(body: KeyCreate, _key: AdminKey, request: Request) -> KeyCreated:
    if body.role == Role.TEACHER and not body.teacher_id:
        raise HTTPException(422, "a teacher key needs the teacher_id whose classes it reads")
    if body.role == Role.STUDENT:
        raise HTTPException(
            422, "student tokens belong to one class and expire: issue them with POST /v1/classes/{id}/student-tokens on ingest"
        )
    if body.role == Role.VIEWER:
        raise HTTPException(422, "viewer keys are only given for a platform's viewer token: POST /v1/embed/sessions")
    key, presented = await request.app.state.keys.create(body.role, body.name, body.teacher_id)
    return KeyCreated(key_id=key.key_id, role=key.role, teacher_id=key.teacher_id, api_key=presented)


@router.get("", response_model=list[ApiKey], summary="Every key, without secrets")
async def list_keys(_key: AdminKey, request: Request) -> list[ApiKey]:
    keys: list[ApiKey] = await request.app.state.keys.list()
    return keys


@router.delete("/{key_id}", status_code=204, summary="Revoke a key")
async def revoke_key(key_id: str, _key: AdminKey, request: Request) -> Response:
    if not await request.app.state.keys.revoke(key_id):
        raise HTTPException(404, f"no key {key_id!r}")
    return Response(status_code=204)
