"""API keys at rest in Redis (hashes only), and the FastAPI dependency that authenticates a request."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, cast

import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from classpulse_core.schemas import CameraKind
from classpulse_web.auth import ApiKey, InvalidKey, Role, hash_secret, new_key, now_ms, secret_matches, split_key

_PREFIX = "apikey:"
_REVOKED = "apikeys-revoked"
"""Ids of keys revoked, a set outside `_PREFIX` (list() reads every key under it as a hash). The bootstrap admin
key is installed again at every start from its Secret: without this, revoking it lasted until the next restart."""
_REVOKE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""


class KeyStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def create(
        self,
        role: Role,
        name: str = "",
        teacher_id: str | None = None,
        class_id: str | None = None,
        ttl_s: int | None = None,
        camera_kind: CameraKind | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key; with `ttl_s` it expires by itself (Redis drops the record, so it cannot be verified after)."""
        key_id, presented, hashed = new_key()
        created = now_ms()
        expires = created + ttl_s * 1000 if ttl_s else None
        key = ApiKey(
            key_id=key_id, role=role, name=name, teacher_id=teacher_id, class_id=class_id, camera_kind=camera_kind,
            created_at_ms=created, expires_at_ms=expires,
        )
        await self._store(key, hashed, ttl_s)
        return key, presented

    async def install(self, presented: str, role: Role, name: str) -> ApiKey | None:
        """Store a key given from outside (the bootstrap admin key from a Secret); idempotent. None, and nothing
        stored, once that key was revoked: a new key in the Secret is the way back."""
        key_id, secret = split_key(presented)
        if await self.client.sismember(_REVOKED, key_id):
            return None
        key = ApiKey(key_id=key_id, role=role, name=name, created_at_ms=now_ms())
        await self._store(key, hash_secret(secret))
        return key

    async def _store(self, key: ApiKey, hashed: str, ttl_s: int | None = None) -> None:
        fields = {**key.model_dump(mode="json", exclude_none=True), "hash": hashed}
        async with self.client.pipeline(transaction=True) as pipe:  # a key that should expire never exists without its TTL
            pipe.hset(_PREFIX + key.key_id, mapping={k: str(v) for k, v in fields.items()})
            if ttl_s:
                pipe.expire(_PREFIX + key.key_id, ttl_s)
            await pipe.execute()

    async def verify(self, presented: str) -> ApiKey:
        key_id, secret = split_key(presented)
        record = cast(dict[str, str], await self.client.hgetall(_PREFIX + key_id))  # a client that decodes responses
        if not record or not secret_matches(secret, record.pop("hash", "")):
            raise InvalidKey("unknown or revoked API key")
        return ApiKey.model_validate(record)

    async def exists(self, key_id: str) -> bool:
        """Whether the key still works (not revoked, not expired): an open stream asks again now and then."""
        return bool(await self.client.exists(_PREFIX + key_id))

    async def list(self) -> list[ApiKey]:
        keys = []
        async for name in self.client.scan_iter(match=_PREFIX + "*", count=500):
            record = await self.client.hgetall(name)
            record.pop("hash", None)
            if record:
                keys.append(ApiKey.model_validate(record))
        return sorted(keys, key=lambda k: (k.created_at_ms, k.key_id))

    async def revoke(self, key_id: str) -> bool:
        # One script: a key is never gone without its tombstone, and ids of keys that never existed are not kept.
        return bool(await self.client.eval(_REVOKE, 2, _PREFIX + key_id, _REVOKED, key_id))


BEARER = HTTPBearer(auto_error=False, scheme_name="bearerKey", description="Authorization: Bearer <API key>")
HEADER_KEY = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="headerKey", description="the API key, if not sent as a Bearer token"
)
"""Declared with fastapi.security so that the OpenAPI document names both ways of presenting a key (its security
schemes); neither refuses by itself (auto_error off): `authenticated` answers a missing key with its own 401."""


async def authenticated(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
    x_api_key: Annotated[str | None, Depends(HEADER_KEY)] = None,
) -> ApiKey:
    presented = x_api_key or (bearer.credentials if bearer else None)
    if not presented:
        raise HTTPException(401, "an API key is required (Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"})
    keys: KeyStore = request.app.state.keys
    try:
        return await keys.verify(presented)
    except InvalidKey as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


CallerKey = Annotated[ApiKey, Depends(authenticated)]


def require_role(*roles: Role) -> Callable[[ApiKey], Coroutine[Any, Any, ApiKey]]:
    """A dependency that lets only keys of the given roles through (403 otherwise)."""

    async def check(key: CallerKey) -> ApiKey:
        if key.role not in roles:
            raise HTTPException(403, f"a {key.role.value} key may not do this; it needs a {' or '.join(r.value for r in roles)} key")
        return key

    return check
