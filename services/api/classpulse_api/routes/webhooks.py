"""Alert webhooks: subscriptions (admin: any class or teacher; teacher: their own), and each one's delivery log."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Request, Response

from classpulse_api.deps import LogLimitParam, LogOffsetParam, ReaderKey, StoreDep, get_store, readable_as
from classpulse_api.dispatcher import alert_message_class
from classpulse_api.models import TOTAL_COUNT, TOTAL_COUNT_RESPONSE, Page
from classpulse_api.outbox import LOG_LENGTH, Attempt, Outbox
from classpulse_api.webhooks import StoredWebhook, Webhook, WebhookCreate, WebhookCreated
from classpulse_web.auth import ApiKey, Role
from classpulse_web.destinations import DestinationRefused

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookIdParam = Annotated[str, Path(max_length=64, description="the subscription's id")]


def _manager(key: ApiKey) -> ApiKey:
    if key.role not in (Role.ADMIN, Role.TEACHER):
        raise HTTPException(403, f"a {key.role.value} key may not manage webhooks; it needs an admin or teacher key")
    return key


async def _readable_classes(request: Request, key: ApiKey, class_ids: Collection[str]) -> set[str]:
    """Those of the classes the key may read now, as every route of a class asks (an admin: all, deleted ones too)."""
    if key.role == Role.ADMIN:
        return set(class_ids)
    records = [await get_store(request).get(class_id) for class_id in set(class_ids)]
    return {record.class_id for record in records if record is not None and readable_as(request, key, record) is not None}


async def _visible(request: Request, key: ApiKey, hook: Webhook) -> bool:
    """An admin's: every one. A teacher's: their own, of a class only while they may read it: once the class is given
    to another teacher it sends nothing more (`Webhook.covers`), and its log and dead letters, the class's alerts, are
    no longer theirs to read either."""
    if key.role == Role.ADMIN:
        return True
    if hook.owner_teacher is None or hook.owner_teacher != key.teacher_id:
        return False
    return hook.class_id is None or bool(await _readable_classes(request, key, [hook.class_id]))


async def _owned(request: Request, key: ApiKey, webhook_id: str) -> StoredWebhook:
    hook: StoredWebhook | None = await request.app.state.webhooks.get(webhook_id)
    if hook is None or not await _visible(request, _manager(key), hook):
        raise HTTPException(404, f"no webhook {webhook_id!r}")
    return hook


Entry = TypeVar("Entry")


async def _of_readable_classes(request: Request, key: ApiKey, entries: list[Entry], message_id: Callable[[Entry], str]) -> list[Entry]:
    """The entries (attempts, dead letters) of the classes the key may read now: a teacher's subscription to all their
    classes logged those of a class since given to another teacher too."""
    readable = await _readable_classes(request, key, {alert_message_class(message_id(entry)) for entry in entries})
    return [entry for entry in entries if alert_message_class(message_id(entry)) in readable]


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
    hooks = await request.app.state.webhooks.all()
    return [Webhook(**hook.model_dump(exclude={"secret"})) for hook in hooks if await _visible(request, key, hook)]


@router.delete("/{webhook_id}", status_code=204, summary="Unsubscribe: nothing more is sent, pending messages included")
async def delete_webhook(webhook_id: WebhookIdParam, key: ReaderKey, request: Request) -> Response:
    hook = await _owned(request, key, webhook_id)
    await request.app.state.webhooks.delete(hook.webhook_id)
    await request.app.state.outbox.forget(hook.target)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[Attempt], summary="Delivery attempts, newest first")
async def list_deliveries(
    webhook_id: WebhookIdParam, key: ReaderKey, request: Request, offset: LogOffsetParam = 0, limit: LogLimitParam = 50
) -> Page[Attempt]:
    hook = await _owned(request, key, webhook_id)
    outbox: Outbox = request.app.state.outbox
    logged, _total = await outbox.attempts(hook.target, 0, LOG_LENGTH)
    shown = await _of_readable_classes(request, key, logged, lambda attempt: attempt.message_id)
    return Page(items=shown[offset : offset + limit], total=len(shown), offset=offset, limit=limit)


# A bare `dict`: as published in the OpenAPI document (dict[str, Any] would add `additionalProperties`).
@router.get(
    "/{webhook_id}/dead-letters",
    response_model=list[dict],  # type: ignore[type-arg]
    summary="Messages given up after their last attempt, newest first",
    description=f"A page of them (`offset`, `limit`); how many there are in all is in the `{TOTAL_COUNT}` header.",
    responses=TOTAL_COUNT_RESPONSE,
)
async def list_dead_letters(
    webhook_id: WebhookIdParam, key: ReaderKey, request: Request, response: Response, offset: LogOffsetParam = 0,
    limit: LogLimitParam = 50,
) -> list[dict[str, Any]]:
    hook = await _owned(request, key, webhook_id)
    outbox: Outbox = request.app.state.outbox
    # All of them (the dead letters are trimmed to LOG_LENGTH), paged once those of classes the key may not read are
    # left out: a page of the list as stored would come short, and its total count those too.
    dead, _total = await outbox.dead_letters(hook.target, 0, LOG_LENGTH)
    shown = await _of_readable_classes(request, key, dead, lambda letter: str(letter["message"]["message_id"]))
    response.headers[TOTAL_COUNT] = str(len(shown))
    return shown[offset : offset + limit]
