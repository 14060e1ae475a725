"""Alert webhooks: subscriptions per class or per teacher, and each alert event sent to them signed as the Standard
Webhooks specification says (https://www.standardwebhooks.com):

    webhook-id: <message id>            the same on every attempt: a receiver drops what it already has by it
    webhook-timestamp: <unix seconds>   of this attempt; receivers refuse old ones (replays)
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the secret's bytes>

The secret (`whsec_<base64 of 32 random bytes>`) is shown once, when the subscription is made. Subscriptions live in
Redis (`webhook:<id>`, a JSON string; `webhooks`, the set of ids).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from typing import cast

import httpcore
import httpx
import redis.asyncio as aioredis
from pydantic import BaseModel, Field, HttpUrl, model_validator

from classpulse_core.schemas import ClassId
from classpulse_store.registry import ClassRecord
from classpulse_web.auth import now_ms
from classpulse_web.destinations import (
    DestinationRefused,
    Network,
    allowed_addresses,
    check_destination,
    checked_location,
    redact,
)
from classpulse_web.happy_eyeballs import first_connected, interleaved

_PREFIX = "webhook:"
_INDEX = "webhooks"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix every secret carries, not a secret)
NETWORKS_SETTING = "CLASSPULSE_WEBHOOK_ALLOWED_NETWORKS"


class WebhookCreate(BaseModel):
    url: HttpUrl = Field(description="where events are POSTed; it must resolve into CLASSPULSE_WEBHOOK_ALLOWED_NETWORKS")
    class_id: ClassId | None = Field(None, description="the class whose alerts are sent")
    teacher_id: str | None = Field(
        None, max_length=128, description="the teacher whose classes' alerts are sent (a teacher key: its own, by default)"
    )
    description: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _one_scope(self) -> WebhookCreate:
        if self.class_id and self.teacher_id:
            raise ValueError("give a class_id or a teacher_id, not both")
        return self


class Webhook(BaseModel):
    webhook_id: str
    url: str
    class_id: str | None = None
    teacher_id: str | None = None
    owner_teacher: str | None = Field(None, description="the teacher whose key may see and delete it")
    description: str = ""
    created_at_ms: int

    def covers(self, record: ClassRecord) -> bool:
        if self.owner_teacher is not None and record.teacher != self.owner_teacher:
            return False  # made by a teacher who no longer teaches the class (it was given to another): not theirs
        return self.class_id == record.class_id or (self.teacher_id is not None and self.teacher_id == record.teacher)

    @property
    def target(self) -> str:
        return f"webhook:{self.webhook_id}"


class WebhookCreated(Webhook):
    secret: str = Field(description="shown once: the key of the signatures (Standard Webhooks)")


class StoredWebhook(Webhook):
    secret: str


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def create(self, body: WebhookCreate, owner_teacher: str | None) -> WebhookCreated:
        stored = StoredWebhook(
            webhook_id="wh_" + secrets.token_hex(8), url=str(body.url), class_id=body.class_id, teacher_id=body.teacher_id,
            owner_teacher=owner_teacher, description=body.description, created_at_ms=now_ms(), secret=new_secret(),
        )
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(_PREFIX + stored.webhook_id, stored.model_dump_json())
            pipe.sadd(_INDEX, stored.webhook_id)
            await pipe.execute()
        return WebhookCreated(**stored.model_dump())

    async def get(self, webhook_id: str) -> StoredWebhook | None:
        raw = await self.client.get(_PREFIX + webhook_id)
        return StoredWebhook.model_validate_json(raw) if raw else None

    async def all(self) -> list[StoredWebhook]:
        ids = sorted(cast(set[str], await self.client.smembers(_INDEX)))  # a client that decodes responses
        hooks = [await self.get(webhook_id) for webhook_id in ids]
        return sorted((h for h in hooks if h is not None), key=lambda h: (h.created_at_ms, h.webhook_id))

    async def of_class(self, class_id: str) -> list[StoredWebhook]:
        return [hook for hook in await self.all() if hook.class_id == class_id]

    async def delete(self, webhook_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(_PREFIX + webhook_id)
            pipe.srem(_INDEX, webhook_id)
            await pipe.execute()


class SendResult(BaseModel):
    ok: bool
    http_status: int | None = None
    error: str | None = None
    refused: bool = False
    """The receiver refused this message for good: another attempt would get the same answer (dead-lettered at once)."""


class CheckedConnections(httpcore.AnyIOBackend):
    """Opens each connection to an address the host resolved to (of several, the first to take one: first_connected),
    once every one of them is judged allowed, and not to the name: httpx resolving it again could get another answer
    (DNS rebinding: a public address to the check, 127.0.0.1 or 169.254.169.254 to the connection). The host name still
    goes in the Host header, the TLS server name and the certificate's check, as httpx puts them."""

    def __init__(self, networks: list[Network]) -> None:
        self.networks = networks

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(allowed_addresses, host, port, self.networks, "webhook", NETWORKS_SETTING, f"{host}:{port}")
        connect = super().connect_tcp
        try:
            return await first_connected(
                [functools.partial(connect, address, port, timeout, local_address, socket_options) for address in interleaved(addresses)],
                timeout, lambda stream: stream.aclose(), failures=(httpcore.ConnectError, httpcore.ConnectTimeout),
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from None


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (TLS verified against the host name, with SSL_CERT_FILE's authorities where it is set),
    connecting through CheckedConnections; no proxy from the environment: one would resolve the name itself."""

    def __init__(self, networks: list[Network]) -> None:
        super().__init__()
        # httpx's transport takes no network backend: the pool it would make (httpx's default limits), with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=CheckedConnections(networks),
        )


class WebhookSender:
    """POSTs one message to one subscription: its scheme checked again first (the allowed ones may have changed since
    it was registered), its host's addresses as each connection is opened (a name may resolve elsewhere since:
    CheckedConnections), no redirect followed (it could lead anywhere), any 2xx is success."""

    def __init__(self, networks: Iterable[Network], schemes: Iterable[str], timeout_s: float) -> None:
        self.networks = list(networks)
        self.schemes = list(schemes)
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            transport=CheckedTransport(self.networks), timeout=timeout_s, follow_redirects=False,
            headers={"User-Agent": "ClassPulse-Webhooks/1"},
        )

    def check(self, url: str) -> None:
        check_destination(url, self.networks, self.schemes, "webhook", NETWORKS_SETTING)

    async def send(self, hook: StoredWebhook, message_id: str, body: str) -> SendResult:
        timestamp = int(time.time())
        payload = body.encode()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(hook.secret, message_id, timestamp, payload),
        }
        try:
            checked_location(hook.url, self.schemes, "webhook")
            # httpx's timeout bounds each read, not the request: a receiver trickling a byte every few seconds held
            # its slot (and, past the outbox's claim time, had the message sent again) for as long as it liked.
            async with asyncio.timeout(self.timeout_s):
                response = await self.client.post(hook.url, content=payload, headers=headers)
        except DestinationRefused as refusal:
            return SendResult(ok=False, error=str(refusal))
        except (httpx.TimeoutException, TimeoutError):
            return SendResult(ok=False, error=f"no answer from {redact(hook.url)} in time")
        except httpx.HTTPError as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__} reaching {redact(hook.url)}")
        return SendResult(ok=response.is_success, http_status=response.status_code)

    async def aclose(self) -> None:
        await self.client.aclose()
