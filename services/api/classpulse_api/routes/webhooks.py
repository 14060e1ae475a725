"""Alert webhooks: subscriptions (admin: any class or teacher; teacher: their own), and each one's delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from classpulse_api.deps import ReaderKey, StoreDep
from classpulse_api.models import Page
from classpulse_api.outbox import Attempt
from classpulse_api.webhooks import StoredWebhook, Webhook, WebhookCreate, WebhookCreated
from classpulse_web.auth import ApiKey, Role
from classpulse_web.destinations import DestinationRefused

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookIdParam = Annotated[str, Path(max_length=64, description="the subscription's id")]


def _manager(key: ApiKey) -> ApiKey:
    if key.role not in (Role.ADMIN, Role.TEACHER):
        raise HTTPException(403, f"a {key.role.value} key may not manage webhooks; it needs an admin or teacher key")
    return key


def _visible(key: ApiKey, hook: Webhook) -> bool:
    return key.role == Role.ADMIN or (hook.owner_teacher is not None and hook.owner_teacher == key.teacher_id)


async def _owned(request: Request, key: ApiKey, webhook_id: str) -> StoredWebhook:
    hook: StoredWebhook | None = await request.app.state.webhooks.get(webhook_id)
    if hook is None or not _visible(_manager(key), hook):
        raise HTTPException(404, f"no webhook {webhook_id!r}")
    return hook


@router.post("", status_code=201, response_model=WebhookCreated, summary="Subscribe a URL to alert events; the secret is shown once")
async def create_webhook(body: WebhookCreate, key: ReaderKey, store: StoreDep, request: Request) -> WebhookCreated:
    _manager(key)
    if key.role == Role.TEACHER:
        if body.teacher_id not in (None, key.teacher_id):
            raise HTTPException(403, "a teacher key subscribes to its own classes only")
        if body.class_id is None:
            body = body.model_copy(update={"teacher_id": key.teacher_id})
    if body.class_id is None and body.teacher_id is None:
        raise HTTPException(422, "give the class_id or the teacher_id whose alerts are sent")
    owner = body.teacher_id
    if body.class_id is not None:
        record = await store.get(body.class_id)
        if record is None:
            raise HTTPException(404, f"class {body.class_id!r} does not exist")
        if not key.can_read_class(record.class_id, record.teacher):
            raise HTTPException(403, f"this key may not read class {body.class_id!r}")
        owner = record.teacher
    try:
        request.app.state.webhook_sender.check(str(body.url))
    except DestinationRefused as refusal:
        raise HTTPException(422, str(refusal)) from None
    created: WebhookCreated = await request.app.state.webhooks.create(body, owner)
    return created


@router.get("", response_model=list[Webhook], summary="The caller's subscriptions (an admin's: all), without secrets")
async def list_webhooks(key: ReaderKey, request: Request) -> list[Webhook]:
    _manager(key)
    return [Webhook(**hook.model_dump(exclude={"secret"})) for hook in await request.app.state.webhooks.all() if _visible(key, hook)]


@router.delete("/{webhook_id}", status_code=204, summary="Unsubscribe: nothing more is sent, pending messages included")
async def delete_webhook(webhook_id: WebhookIdParam, key: ReaderKey, request: Request) -> Response:
    hook = await _owned(request, key, webhook_id)
    await request.app.state.webhooks.delete(hook.webhook_id)
    await request.app.state.outbox.forget(hook.target)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[Attempt], summary="Delivery attempts, newest first")
async def list_deliveries(
    webhook_id: WebhookIdParam,
    key: ReaderKey,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[Attempt]:
    hook = await _owned(request, key, webhook_id)
    items, total = await request.app.state.outbox.attempts(hook.target, offset, limit)
    return Page(items=items, total=total, offset=offset, limit=limit)


# A bare `dict`: as published in the OpenAPI document (dict[str, Any] would add `additionalProperties`).
@router.get(
    "/{webhook_id}/dead-letters",
    response_model=list[dict],  # type: ignore[type-arg]
    summary="Messages given up after their last attempt",
)
async def list_dead_letters(
    webhook_id: WebhookIdParam, key: ReaderKey, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    hook = await _owned(request, key, webhook_id)
    dead: list[dict[str, Any]] = await request.app.state.outbox.dead_letters(hook.target, limit)
    return dead
