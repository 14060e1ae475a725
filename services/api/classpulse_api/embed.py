"""Embedded dashboards: a platform's back end mints a short-lived viewer token for one class, signed with a key only
the platform holds; ClassPulse verifies it with the verification key an admin registered for that issuer.

The token is a JWT (RFC 7519) with `iss` (a registered issuer), `aud` (CLASSPULSE_EMBED_AUDIENCE), `class_id`, `iat`,
`exp` (at most CLASSPULSE_EMBED_TOKEN_MAX_LIFETIME_S after `iat`, never more than 15 minutes) and `jti`. It is used
once: exchanged for a viewer key (role `viewer`: reads that one class, changes nothing, expires with the token) that
the embedded page keeps in memory. A token seen again is refused, so a token left in a log or a history entry opens
nothing. Refusals say why: 401 for a token that proves nothing (malformed, unknown issuer, bad signature, expired,
too long-lived, replayed), 403 for a valid token naming a class its issuer may not open.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from pydantic import AfterValidator, BaseModel, Field, HttpUrl

from classpulse_store.registry import ClassRecord
from classpulse_web.auth import Role, now_ms
from classpulse_web.keystore import KeyStore

Algorithm = Literal["Ed25519", "EdDSA", "ES256", "RS256", "HS256"]
KEY_TYPES: dict[str, type[OKPKey | ECKey | RSAKey | OctKey]] = {"Ed25519": OKPKey, "EdDSA": OKPKey, "ES256": ECKey, "RS256": RSAKey, "HS256": OctKey}
MAX_LIFETIME_S = 900
"""The most any deployment accepts: a viewer token is a bearer credential in a URL, it must die fast."""
CLOCK_SKEW_S = 30
"""Leeway on `exp` and `iat` for the platform's clock."""
MIN_HMAC_SECRET_BYTES = 32

_ISSUER_PREFIX = "embedissuer:"
_USED_PREFIX = "embedjti:"


def _origin_of(url: HttpUrl) -> HttpUrl:
    # frame-ancestors matches the framing page's origin only: with a path (a platform under /moodle) it would match
    # no page at all, and a `;` in the path would end the directive.
    return HttpUrl.build(scheme=url.scheme, host=url.host or "", port=url.port)


FrameOrigin = Annotated[HttpUrl, AfterValidator(_origin_of)]
"""An origin that may frame ClassPulse's pages; a page's address given instead stands for its origin."""


class EmbedIssuer(BaseModel):
    issuer: str = Field(min_length=1, max_length=200, description="the `iss` of the platform's tokens")
    algorithm: Algorithm = Field(description="how the platform signs: Ed25519 (EdDSA), ES256, RS256 or HS256")
    frame_origins: list[FrameOrigin] = Field(
        default_factory=list, max_length=20,
        description="origins allowed to show the dashboard in a frame (CSP frame-ancestors; an address stands for its"
        " origin); none: not in a frame",
    )
    teacher_id: str | None = Field(
        None, max_length=128, description="if set, the issuer may only open classes of this teacher"
    )
    created_at_ms: int = 0


class EmbedIssuerCreate(EmbedIssuer):
    key: str = Field(
        min_length=1, max_length=16_384,
        description="the verification key: a PEM public key or a public JWK (JSON) for Ed25519/ES256/RS256, the shared"
        " secret for HS256 (at least 32 bytes)",
    )


class EmbedIssuerOut(EmbedIssuer):
    key_fingerprint: str = Field(description="SHA-256 of the key as registered, its first 16 hex digits")


class ViewerSession(BaseModel):
    api_key: str = Field(description="a viewer key for this class only, read-only; expires with the token")
    class_id: str
    issuer: str
    expires_at_ms: int


class EmbedRefused(Exception):
    def __init__(self, status: int, message: str, issuer: EmbedIssuer | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.issuer = issuer


def import_key(algorithm: Algorithm, key: str) -> OKPKey | ECKey | RSAKey | OctKey:
    """The key object to verify with; ValueError with the reason when it is not a key of that algorithm."""
    if algorithm == "HS256":
        if len(key.encode()) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"an HS256 secret needs at least {MIN_HMAC_SECRET_BYTES} bytes")
        return OctKey.import_key(key.encode())
    try:
        imported = KEY_TYPES[algorithm].import_key(key.strip())
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"not a {algorithm} public key: {exc}") from None
    if imported.is_private:
        raise ValueError("register the public key only: the private key stays with the platform")
    return imported


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class EmbedIssuers:
    """Registered issuers, in Redis (`embedissuer:<issuer>`, a hash with the key)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def register(self, body: EmbedIssuerCreate) -> EmbedIssuerOut:
        import_key(body.algorithm, body.key)
        record = body.model_copy(update={"created_at_ms": now_ms()})
        await self.client.set(_ISSUER_PREFIX + body.issuer, record.model_dump_json())
        return _out(record)

    async def get(self, issuer: str) -> EmbedIssuerCreate | None:
        raw = await self.client.get(_ISSUER_PREFIX + issuer)
        return EmbedIssuerCreate.model_validate_json(raw) if raw else None

    async def list(self) -> list[EmbedIssuerOut]:
        names = [name async for name in self.client.scan_iter(match=_ISSUER_PREFIX + "*", count=500)]
        records = [await self.get(name[len(_ISSUER_PREFIX):]) for name in names]
        return sorted((_out(r) for r in records if r is not None), key=lambda r: r.issuer)

    async def delete(self, issuer: str) -> bool:
        return bool(await self.client.delete(_ISSUER_PREFIX + issuer))


def _out(record: EmbedIssuerCreate) -> EmbedIssuerOut:
    return EmbedIssuerOut(**record.model_dump(exclude={"key"}), key_fingerprint=_fingerprint(record.key))


def unverified_issuer(token: str) -> str:
    """The `iss` a token claims, read before its signature can be checked (to find the key to check it with)."""
    try:
        claims = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, UnicodeError):
        raise EmbedRefused(401, "this viewer token is malformed (not a signed JWT)") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
        raise EmbedRefused(401, "this viewer token names no issuer (iss)")
    issuer: str = claims["iss"]
    return issuer


def verify_claims(token: str, issuer: EmbedIssuerCreate, audience: str, max_lifetime_s: int, at_s: float) -> dict[str, Any]:
    """The token's claims once its signature, audience, times and shape are checked; EmbedRefused(401) otherwise."""
    try:
        with warnings.catch_warnings():
            # joserfc warns that the name "EdDSA" is deprecated (RFC 9864); platforms still send it.
            warnings.simplefilter("ignore")
            claims = jwt.decode(token, import_key(issuer.algorithm, issuer.key), algorithms=[issuer.algorithm]).claims
    except JoseError as exc:
        raise EmbedRefused(401, f"this viewer token's signature does not verify with {issuer.issuer!r}'s key ({exc.error})", issuer) from None
    registry = jwt.JWTClaimsRegistry(
        now=int(at_s), leeway=CLOCK_SKEW_S,
        iss={"essential": True, "value": issuer.issuer}, aud={"essential": True, "value": audience},
        exp={"essential": True}, iat={"essential": True}, jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        reason = "it has expired" if exc.error == "expired_token" else f"{exc.error}: {exc.description or exc}"
        raise EmbedRefused(401, f"this viewer token is not valid: {reason}", issuer) from None
    if not isinstance(claims.get("class_id"), str) or not claims["class_id"]:
        raise EmbedRefused(401, "this viewer token names no class (class_id)", issuer)
    if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
        raise EmbedRefused(401, "this viewer token's exp and iat must be numbers", issuer)
    if claims["exp"] - claims["iat"] > max_lifetime_s:
        raise EmbedRefused(
            401, f"this viewer token lives {int(claims['exp'] - claims['iat'])} s; the most accepted is {max_lifetime_s} s", issuer
        )
    if claims["iat"] > at_s + CLOCK_SKEW_S:
        raise EmbedRefused(401, "this viewer token was issued in the future (iat): check the platform's clock", issuer)
    return claims


class ViewerTokens:
    """Verifies viewer tokens and exchanges each, once, for a viewer key."""

    def __init__(self, client: aioredis.Redis, issuers: EmbedIssuers, keys: KeyStore, audience: str, max_lifetime_s: int) -> None:
        self.client = client
        self.issuers = issuers
        self.keys = keys
        self.audience = audience
        self.max_lifetime_s = max_lifetime_s

    async def exchange(
        self, token: str, record_of: Callable[[str], Awaitable[ClassRecord | None]]
    ) -> tuple[ViewerSession, EmbedIssuer]:
        """`record_of(class_id)` reads a class (None: no such class). Raises EmbedRefused."""
        issuer, claims, at_s = await self._verified(token)
        name = issuer.issuer
        record: ClassRecord | None = await record_of(claims["class_id"])
        if record is None or (issuer.teacher_id is not None and record.teacher != issuer.teacher_id):
            # The same answer whether the class exists or not: a platform learns nothing about others' classes.
            raise EmbedRefused(403, f"the issuer {name!r} may not open class {claims['class_id']!r}", issuer)
        remaining_s = max(1, int(claims["exp"] - at_s))
        if not await self._use(name, claims, remaining_s):
            raise EmbedRefused(401, "this viewer token was already used: ask the platform for a new one", issuer)
        key, presented = await self.keys.create(Role.VIEWER, f"embed {name}", class_id=record.class_id, ttl_s=remaining_s)
        session = ViewerSession(api_key=presented, class_id=record.class_id, issuer=name, expires_at_ms=key.expires_at_ms)
        return session, issuer

    async def spend(self, token: str) -> EmbedIssuer | None:
        """Marks a valid token used without exchanging it: one shown where logs keep it (an address's query) opens
        nothing afterwards; returns its issuer (None: a token that does not verify, left as it is: it opens nothing)."""
        try:
            issuer, claims, at_s = await self._verified(token)
        except EmbedRefused:
            return None
        await self._use(issuer.issuer, claims, max(1, int(claims["exp"] - at_s)))
        return issuer

    async def _verified(self, token: str) -> tuple[EmbedIssuerCreate, dict[str, Any], float]:
        """The token's issuer and claims, once checked, and when they were; EmbedRefused otherwise."""
        name = unverified_issuer(token)
        issuer = await self.issuers.get(name)
        if issuer is None:
            raise EmbedRefused(401, f"the issuer {name!r} is not registered with this ClassPulse")
        at_s = time.time()
        return issuer, verify_claims(token, issuer, self.audience, self.max_lifetime_s, at_s), at_s

    async def _use(self, issuer: str, claims: dict[str, Any], remaining_s: int) -> bool:
        """Whether the token was not used before (its jti kept until it expires)."""
        used_key = f"{_USED_PREFIX}{_fingerprint(issuer)}:{claims['jti']}"
        return bool(await self.client.set(used_key, "1", nx=True, ex=remaining_s + CLOCK_SKEW_S))
