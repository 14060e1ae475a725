"""LTI 1.3 tool: a learning platform (Moodle, Canvas, Open edX...) launches ClassPulse from a course.

The flow (IMS LTI 1.3 core and the IMS Security Framework):

1. OIDC login initiation: the platform sends the browser to `/lti/login` (iss, login_hint, target_link_uri,
   lti_message_hint, client_id, lti_deployment_id). The tool signs a fresh `state` holding the platform, a `nonce`
   and its expiry (CLASSPULSE_LTI_STATE_TTL_S; nothing kept in Redis: anyone may start a login), sets a cookie named
   by the state's digest in this browser (`state_cookie_name`), and redirects to the platform's OIDC authorization
   endpoint.
2. Launch: the platform posts a signed `id_token` and the `state` to `/lti/launch`. The state must be signed by
   ClassPulse, unexpired, unused (a verified launch marks it used) and set in this browser; the token is checked here: RS256 signature with a key of the platform's JWKS (its keyset
   URL, or the keys an admin registered), `iss`, `aud` (and `azp`) against the registration, `exp` and `iat`, the
   `nonce` of this login, a registered deployment id, the LTI version and message type.
3. What a launch opens: the course's class (`lti-<hash of issuer, deployment, context id>`, registered on the first
   launch, its size counted from Names and Role Provisioning, read in the background: the launch does not wait for
   it), the teacher dashboard for an Instructor, the student page (consent first) for a Learner. A Deep Linking request is answered with a signed LtiDeepLinkingResponse that
   places the tool in the course.

The tool signs with its own RSA keys (client assertions for the platform's token endpoint, deep linking responses),
kept in Redis and published at `/lti/jwks`; a rotation adds a key and signs with it, the older ones stay published
until an admin removes them. Everything kept is in Redis, so any replica finishes a login another started.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import httpx
import redis.asyncio as aioredis
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey
from prometheus_client import Counter
from pydantic import BaseModel, Field, HttpUrl, model_validator

from classpulse_api.embed import FrameOrigin
from classpulse_core.backoff import Backoff, Retries
from classpulse_web.auth import now_ms

log = logging.getLogger(__name__)

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
NRPS_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
ALGORITHM = "RS256"
"""The only algorithm LTI 1.3 requires of every platform and tool (IMS Security Framework, section 6.1)."""
CLOCK_SKEW_S = 30
PLATFORM_KEYS_TTL_S = 300
"""How long a platform's fetched JWKS is used before it is fetched again (sooner when a token names an unknown kid)."""
PLATFORM_KEYS_COOLDOWN_S = 10
"""After a platform's JWKS was fetched (or could not be), how long before it is fetched again for a token naming a kid
it lacks: anyone may start a login, so each forged launch would otherwise have ClassPulse call the platform once."""
TOOL_KEY_BITS = 2048
STATE_COOKIE_PREFIX = "lti1p3_state_"
STATE_COOKIE_VALUE = "1"
"""A login's cookie is named by its state's digest and holds this alone: named and valued by the state itself (some
260-350 characters), each login a browser started in the last CLASSPULSE_LTI_STATE_TTL_S added 500-700 bytes to every
request it sent the tool's /lti/ paths, and a few (a student's launches from several tabs) passed the 8 kB of request
headers common proxies accept."""
MAX_NRPS_PAGES = 50
ROSTER_RETRY = Backoff(initial_s=2.0, max_s=60.0, jitter=0.2)
ROSTER_ATTEMPTS = 4
ROSTER_READS_AT_ONCE = 4
"""Rosters read at once by one API process: each holds one of the platforms' connections for up to MAX_NRPS_PAGES
pages."""
ROSTER_READS_WAITING = 1000
"""Courses whose roster waits for its turn, beyond which a launch's read is skipped (the next Instructor's asks again)."""

NRPS_CALLS = Counter(
    "classpulse_lti_nrps_calls_total",
    "Names and Role Provisioning reads: ok, not_offered, retried (a failed try), failed (the last try, or an unexpected error), skipped (too many waiting)",
    ["outcome"],
)

_PLATFORMS = "ltiplatforms"
"""A hash `<issuer fp>:<platform id>` -> the registration (JSON): a login finds its issuer's registrations among the
registrations only (few, made by admins), not by walking the keyspace, which anyone may start a login to do (but
once a minute at most for them all: LOGIN_SWEEP_INTERVAL_S)."""
_LEGACY_PLATFORM_PREFIX = "ltiplatform:"
"""Where registrations were kept before `_PLATFORMS` (`ltiplatform:<issuer fp>:<platform id>`, a string each)."""
_LEGACY_STATE_PREFIX = "ltistate:"
"""Where an API before signed states kept a login's state (a string each, used once)."""
_STATE_KEY = "ltistatekey"
"""The HMAC key every replica signs and checks logins' states with."""
_USED_STATE_PREFIX = "ltistateused:"
"""A launched login's state (its SHA-256), kept until the state expires: a state is used once."""
STATE_ALGORITHM = "HS256"
MAX_STATE_CHARS = 4096
"""Longer than any state ClassPulse signs (an issuer and a client id of at most 500 characters each)."""
_TOOL_KEYS = "ltitoolkeys"
"""A hash kid -> the private JWK (JSON) of every key the tool publishes."""
_TOOL_KEY_CURRENT = "ltitoolkey:current"
"""The kid the tool signs with now."""


def state_cookie_name(state: str) -> str:
    """The name of the cookie that marks the browser which started the login of `state`: the state's SHA-256, 132
    bits of it in base64url (one cookie per login, so that logins a browser started at once each launch)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(state.encode()).digest()).decode("ascii")
    return STATE_COOKIE_PREFIX + digest[:22]


class LtiRefused(Exception):
    """A login or launch ClassPulse will not accept: `reason` is a short code (metrics label), `message` says why;
    `retry_after_s` when the same request will be accepted later."""

    def __init__(self, status: int, reason: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after_s = retry_after_s


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class LtiPlatform(BaseModel):
    issuer: str = Field(min_length=1, max_length=500, description="the platform's `iss` (e.g. https://moodle.example.org)")
    client_id: str = Field(min_length=1, max_length=500, description="the client id the platform gave ClassPulse")
    deployment_ids: list[str] = Field(
        min_length=1, max_length=100, description="deployment ids launches may carry (the platform shows them)"
    )
    auth_login_url: HttpUrl = Field(description="the platform's OIDC authorization endpoint (authentication request URL)")
    auth_token_url: HttpUrl = Field(description="the platform's OAuth 2 token endpoint (for Names and Role Provisioning)")
    keyset_url: HttpUrl | None = Field(None, description="the platform's public keyset (JWKS) URL")
    # A bare `dict`: as published in the OpenAPI document (dict[str, Any] would add `additionalProperties`).
    keys: dict | None = Field(  # type: ignore[type-arg]
        None, description="or the platform's public keys themselves, a JWKS ({\"keys\": [...]})"
    )
    frame_origins: list[FrameOrigin] = Field(
        default_factory=list, max_length=20,
        description="origins that may show ClassPulse in a frame (the platform's own pages; an address stands for its"
        " origin); none: not in a frame",
    )
    created_at_ms: int = 0

    @model_validator(mode="after")
    def _one_way_to_keys(self) -> LtiPlatform:
        if (self.keyset_url is None) == (self.keys is None):
            raise ValueError("give the platform's keys either as keyset_url or as keys, one of them")
        if self.keys is not None:
            keyset = platform_keyset(self.keys)
            if any(key.is_private for key in keyset.keys):
                raise ValueError("register the platform's public keys only")
        return self


def platform_id(issuer: str, client_id: str) -> str:
    """What names a registration (an issuer with several clients has several)."""
    return fingerprint(issuer, client_id)


class LtiPlatformOut(LtiPlatform):
    platform_id: str = Field(description="names this registration in the API's routes")


def platform_keyset(jwks: object) -> KeySet:
    """The RSA keys of a JWKS; ValueError when it is not one."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('a JWKS is an object with a "keys" list')  # noqa: TRY004 (pydantic reports ValueError as a 422)
    try:
        return KeySet([RSAKey.import_key(key) for key in jwks["keys"] if key.get("kty") == "RSA"])
    except (JoseError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a JWKS of RSA keys: {exc}") from None


_MOVE_LEGACY_PLATFORM = """
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
redis.call('HSETNX', KEYS[2], ARGV[1], raw)
redis.call('DEL', KEYS[1])
return 1
"""
"""Moves one registration of the old layout into the hash, at once: replicas moving the same one at the same time
move it once, and an admin's later registration of the same platform (already in the hash) is kept. 1 when this call
took the old key."""


LOGIN_SWEEP_INTERVAL_S = 60.0
"""How often at most logins that find no registration of their issuer walk the keyspace for one an older replica
kept the old way (LtiPlatforms.find)."""


class LtiPlatforms:
    """Registered platforms, in the Redis hash `ltiplatforms` (`<issuer fp>:<platform id>` -> the registration as
    JSON)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._move_legacy = client.register_script(_MOVE_LEGACY_PLATFORM)
        self._next_login_sweep = 0.0

    @staticmethod
    def _field(issuer: str, registration: str) -> str:
        return f"{fingerprint(issuer)}:{registration}"

    async def register(self, platform: LtiPlatform) -> LtiPlatformOut:
        record = platform.model_copy(update={"created_at_ms": now_ms()})
        await self.client.hset(_PLATFORMS, self._field(record.issuer, platform_id(record.issuer, record.client_id)), record.model_dump_json())
        return _platform_out(record)

    async def find(self, issuer: str, client_id: str | None) -> LtiPlatform | None:
        """The registration of this issuer and client; without a client id, the issuer's only one (if it has one)."""
        if client_id is not None:
            field = self._field(issuer, platform_id(issuer, client_id))
            raw = await self.client.hget(_PLATFORMS, field)
            # Not there: registered the old way since this replica started (through a replica not yet upgraded, during
            # a rollout), and moved now, one key read, as the start-up moves every one.
            if raw is None and await self._move_legacy(keys=[_LEGACY_PLATFORM_PREFIX + field, _PLATFORMS], args=[field]):
                raw = await self.client.hget(_PLATFORMS, field)
            return LtiPlatform.model_validate_json(raw) if raw else None
        found = await self._of_issuer(issuer)
        if not found and time.monotonic() >= self._next_login_sweep:
            # Registered the old way since this replica started (through a replica not yet upgraded, during a
            # rollout): a login naming no client id cannot read its one key, so the keyspace is walked, at most once
            # every LOGIN_SWEEP_INTERVAL_S for every such login together (anyone may start a login).
            self._next_login_sweep = time.monotonic() + LOGIN_SWEEP_INTERVAL_S
            if await self.move_legacy():
                found = await self._of_issuer(issuer)
        return found[0] if len(found) == 1 else None

    async def _of_issuer(self, issuer: str) -> builtins.list[LtiPlatform]:
        return [LtiPlatform.model_validate_json(raw) for _field, raw in await self._matching(f"{fingerprint(issuer)}:*")]

    async def list(self) -> list[LtiPlatformOut]:
        """Every registration, those an older replica made during a rollout moved first (an admin's request, rare: it
        may walk the keyspace, which a login does once a minute at most)."""
        await self.move_legacy()
        records = (LtiPlatform.model_validate_json(raw) for raw in await self.client.hvals(_PLATFORMS))
        return sorted((_platform_out(record) for record in records), key=lambda r: (r.issuer, r.client_id))

    async def delete(self, registration: str) -> bool:
        fields = [field for field, _raw in await self._matching(f"*:{registration}")]
        return bool(fields) and bool(await self.client.hdel(_PLATFORMS, *fields))

    async def move_legacy(self) -> int:
        """Moves the registrations kept the old way (one key each) into the hash, each removed once it is there;
        how many this call moved. Walks the keyspace: at start-up, for an admin's listing, and for a login that finds
        no registration of its issuer at most once every LOGIN_SWEEP_INTERVAL_S."""
        moved = 0
        async for name in self.client.scan_iter(match=_LEGACY_PLATFORM_PREFIX + "*", count=1000):
            moved += int(await self._move_legacy(keys=[name, _PLATFORMS], args=[name.removeprefix(_LEGACY_PLATFORM_PREFIX)]))
        return moved

    async def _matching(self, pattern: str) -> builtins.list[tuple[str, str]]:  # `list` is a method here
        return [item async for item in self.client.hscan_iter(_PLATFORMS, match=pattern)]


def _platform_out(record: LtiPlatform) -> LtiPlatformOut:
    return LtiPlatformOut(**record.model_dump(), platform_id=platform_id(record.issuer, record.client_id))


class ToolKeyOut(BaseModel):
    kid: str
    current: bool = Field(description="the key the tool signs with now")


class ToolKeys:
    """The tool's RSA signing keys, in Redis so that every replica signs with the same one and publishes them all."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def current(self) -> RSAKey:
        """The key to sign with; the first one is made here (replicas racing: the first to set it wins)."""
        # The API's clients decode responses: str, where redis-py's types also allow bytes.
        kid = cast(str | None, await self.client.get(_TOOL_KEY_CURRENT))
        if kid is None:
            await self._add(only_if_none=True)
            kid = cast(str, await self.client.get(_TOOL_KEY_CURRENT))
        raw = cast(str, await self.client.hget(_TOOL_KEYS, kid))
        return RSAKey.import_key(json.loads(raw))

    async def rotate(self) -> ToolKeyOut:
        """A new key, signed with from now on; the previous ones stay published (tokens they signed still verify)."""
        return ToolKeyOut(kid=await self._add(only_if_none=False), current=True)

    async def _add(self, only_if_none: bool) -> str:
        key = RSAKey.generate_key(TOOL_KEY_BITS, parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
        kid = key.kid
        if kid is None:  # auto_kid gives every generated key one
            raise RuntimeError("the generated signing key has no kid")
        await self.client.hset(_TOOL_KEYS, kid, json.dumps(key.as_dict(private=True)))
        if not await self.client.set(_TOOL_KEY_CURRENT, kid, nx=only_if_none):
            await self.client.hdel(_TOOL_KEYS, kid)  # another replica made the first key meanwhile
        return kid

    async def list(self) -> list[ToolKeyOut]:
        current = await self.client.get(_TOOL_KEY_CURRENT)
        return [ToolKeyOut(kid=kid, current=kid == current) for kid in sorted(await self.client.hkeys(_TOOL_KEYS))]

    async def retire(self, kid: str) -> Literal["retired", "current", "unknown"]:
        if kid == await self.client.get(_TOOL_KEY_CURRENT):
            return "current"
        return "retired" if await self.client.hdel(_TOOL_KEYS, kid) else "unknown"

    async def jwks(self) -> dict[str, Any]:
        await self.current()  # a tool asked for its keys before its first launch still publishes one
        raws = await self.client.hvals(_TOOL_KEYS)
        return {"keys": [RSAKey.import_key(json.loads(raw)).as_dict(private=False) for raw in raws]}

    async def sign(self, claims: dict[str, Any]) -> str:
        key = await self.current()
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM])


@dataclass(frozen=True)
class LoginState:
    issuer: str
    client_id: str
    nonce: str
    expires_at_s: int


class LoginStates:
    """A login's state is its own record: the platform, the client id, the nonce and when it expires, signed (HMAC)
    with a key every replica shares, so that a login keeps nothing in Redis. Anyone may start a login: a flood of them
    costs a signature each, fills nothing and holds up no other login of the platform (a bounded count of pending
    logins did: a flood of one registration's logins refused its students' for the states' lifetime). A state is used
    once: its launch, once the platform's id_token has verified, marks it used until it expires, so only a launch the
    platform signed writes."""

    def __init__(self, client: aioredis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    async def start(self, issuer: str, client_id: str) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(32)
        claims = {"platform": issuer, "client_id": client_id, "nonce": nonce, "exp": int(time.time()) + self.ttl_s}
        state = jwt.encode({"alg": STATE_ALGORITHM}, claims, await self._key(), algorithms=[STATE_ALGORITHM])
        return state, nonce

    async def read(self, state: str) -> LoginState | None:
        """The login this state was signed for; None for a state ClassPulse did not sign, or that has expired."""
        if len(state) > MAX_STATE_CHARS:
            return None
        try:
            claims = jwt.decode(state, await self._key(), algorithms=[STATE_ALGORITHM]).claims
            jwt.JWTClaimsRegistry(exp={"essential": True}).validate(claims)
            return LoginState(str(claims["platform"]), str(claims["client_id"]), str(claims["nonce"]), int(claims["exp"]))
        except (JoseError, ValueError, KeyError, TypeError):
            return await self._legacy(state)

    async def use(self, state: str, login: LoginState) -> bool:
        """Marks the state used; False if a launch used it already."""
        used = _USED_STATE_PREFIX + hashlib.sha256(state.encode()).hexdigest()
        return bool(await self.client.set(used, 1, nx=True, exat=login.expires_at_s + 1))

    async def _key(self) -> OctKey:
        """The signing key; the first one is made here (replicas racing: the first to set it wins). Lost with Redis's
        data, the logins waiting for their launch are refused as unknown and start again."""
        raw = cast(str | None, await self.client.get(_STATE_KEY))
        if raw is None:
            await self.client.set(_STATE_KEY, secrets.token_urlsafe(32), nx=True)
            raw = cast(str, await self.client.get(_STATE_KEY))
        return OctKey.import_key(raw)

    async def _legacy(self, state: str) -> LoginState | None:
        """A login an API before signed states started, kept in Redis (used once): its launch may come through an
        upgraded replica during a rollout."""
        raw = await self.client.getdel(_LEGACY_STATE_PREFIX + state)
        if not raw:
            return None
        record = json.loads(raw)
        return LoginState(record["issuer"], record["client_id"], record["nonce"], int(time.time()) + self.ttl_s)


@dataclass
class _FetchedKeys:
    keyset: KeySet
    fetched_at: float
    tried_at: float
    """The last fetch, answered or not."""


class PlatformKeys:
    """Platforms' public keys, fetched from their keyset URLs and kept a few minutes in this process. One fetch at a
    time per URL (the launches of a class starting together wait for the same one); a kid the keys lack looked for
    again once per cooldown; and when the keyset URL does not answer (a platform busy at the start of the day), the
    keys read last used on rather than every launch refused: a rotated key is published, so it needs a fetch that
    answers anyway."""

    def __init__(self, http: httpx.AsyncClient, ttl_s: float = PLATFORM_KEYS_TTL_S, cooldown_s: float = PLATFORM_KEYS_COOLDOWN_S) -> None:
        self.http = http
        self.ttl_s = ttl_s
        self.cooldown_s = cooldown_s
        self._fetched: dict[str, _FetchedKeys] = {}
        self._fetching: dict[str, asyncio.Lock] = {}

    async def keyset(self, platform: LtiPlatform, kid: str | None) -> KeySet:
        if platform.keys is not None:
            return platform_keyset(platform.keys)
        url = str(platform.keyset_url)
        async with self._fetching.setdefault(url, asyncio.Lock()):
            fetched = self._fetched.get(url)
            now = time.monotonic()
            if fetched is not None and (
                (now - fetched.fetched_at < self.ttl_s and (kid is None or _has_kid(fetched.keyset, kid)))
                or now - fetched.tried_at < self.cooldown_s
            ):
                return fetched.keyset
            try:
                response = await self.http.get(url)
                response.raise_for_status()
                keyset = platform_keyset(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                if fetched is None:
                    raise LtiRefused(502, "platform_keys_unavailable", f"the platform's keys could not be read from {url}: {exc}") from None
                fetched.tried_at = now
                log.warning("lti platform keys not read again, the last ones used", extra={"url": url, "error": repr(exc)})
                return fetched.keyset
            self._fetched[url] = _FetchedKeys(keyset, fetched_at=now, tried_at=now)
            return keyset


def _has_kid(keyset: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keyset.keys)


def unverified(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, read before its signature is checked (to find the key to check it with)."""
    try:
        extracted = jws.extract_compact(id_token.encode())
        claims = json.loads(extracted.payload)
    except (JoseError, ValueError, UnicodeError):
        raise LtiRefused(400, "malformed_token", "the launch's id_token is not a signed JWT") from None
    if not isinstance(claims, dict):
        raise LtiRefused(400, "malformed_token", "the launch's id_token holds no claims")
    return extracted.headers(), claims


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


@dataclass(frozen=True)
class Launch:
    platform: LtiPlatform
    claims: dict[str, Any]

    @property
    def message_type(self) -> str:
        message_type: str = self.claims[LTI + "message_type"]
        return message_type

    @property
    def deployment_id(self) -> str:
        deployment_id: str = self.claims[LTI + "deployment_id"]
        return deployment_id

    @property
    def context(self) -> dict[str, Any]:
        context = self.claims.get(LTI + "context")
        if not isinstance(context, dict) or not isinstance(context.get("id"), str) or not context["id"]:
            raise LtiRefused(400, "no_context", "this launch names no course (context claim): ClassPulse opens a course's class")
        return context

    @property
    def role(self) -> Literal["instructor", "learner"] | None:
        roles = [role for role in self.claims.get(LTI + "roles") or [] if isinstance(role, str)]
        if any(is_instructor(role) for role in roles):
            return "instructor"
        if any(is_learner(role) for role in roles):
            return "learner"
        return None

    def class_id(self) -> str:
        """The course's class: stable for one course of one deployment, whatever the course's title becomes."""
        return "lti-" + fingerprint(self.platform.issuer, self.deployment_id, self.context["id"])


def _role_name(role: str) -> str:
    """`Instructor` of `http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor`, of a sub-role
    (`membership/Instructor#TeachingAssistant`) and of the deprecated simple names alike."""
    if "/membership/" in role:
        return role.split("/membership/", 1)[1].split("#", 1)[0]
    return role.rsplit("#", 1)[-1] if "membership#" in role or "#" not in role else ""


def is_instructor(role: str) -> bool:
    return _role_name(role) in ("Instructor", "Administrator")


def is_learner(role: str) -> bool:
    return _role_name(role) == "Learner"


STATE_UNKNOWN = "this launch's state is unknown, already used or expired (a launch is used once)"


class LaunchVerifier:
    def __init__(self, platforms: LtiPlatforms, states: LoginStates, keys: PlatformKeys) -> None:
        self.platforms = platforms
        self.states = states
        self.keys = keys

    async def verify(self, id_token: str, state: str, started_here: bool) -> Launch:
        """The launch, once every check passed; LtiRefused with its reason otherwise. `started_here`: whether the
        browser posting it holds the cookie of the login that gave `state`."""
        if not state or not started_here:
            raise LtiRefused(
                400, "state_cookie",
                "this launch did not start in this browser (its state cookie is missing): open ClassPulse again from the"
                " course; if it opens in a frame, the browser may block the tool's cookies there (open it in a new window)",
            )
        login = await self.states.read(state)
        if login is None:
            raise LtiRefused(400, "state_unknown", STATE_UNKNOWN)
        header, unverified_claims = unverified(id_token)
        if unverified_claims.get("iss") != login.issuer:
            raise LtiRefused(401, "issuer_mismatch", "the id_token's issuer is not the platform this login started with")
        platform = await self.platforms.find(login.issuer, login.client_id)
        if platform is None:
            raise LtiRefused(401, "unknown_platform", f"the platform {login.issuer!r} is no longer registered with ClassPulse")
        if header.get("alg") != ALGORITHM:
            raise LtiRefused(401, "bad_signature", f"the id_token is signed with {header.get('alg')!r}; LTI 1.3 uses {ALGORITHM}")
        keyset = await self.keys.keyset(platform, header.get("kid"))
        try:
            claims = jwt.decode(id_token, keyset, algorithms=[ALGORITHM]).claims
        except (JoseError, ValueError) as exc:
            raise LtiRefused(
                401, "bad_signature", f"the id_token's signature does not verify with {platform.issuer!r}'s keys ({exc})"
            ) from None
        self._check_claims(claims, platform, login)
        if not await self.states.use(state, login):
            raise LtiRefused(400, "state_unknown", STATE_UNKNOWN)
        return Launch(platform, claims)

    @staticmethod
    def _check_claims(claims: dict[str, Any], platform: LtiPlatform, login: LoginState) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=int(time.time()), leeway=CLOCK_SKEW_S,
            iss={"essential": True, "value": platform.issuer}, exp={"essential": True}, iat={"essential": True},
            sub={"essential": False}, nonce={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            reason = "expired" if exc.error == "expired_token" else "invalid_claims"
            why = "it has expired" if reason == "expired" else f"{exc.error}: {exc.description or exc}"
            raise LtiRefused(401, reason, f"the id_token is not valid: {why}") from None
        if platform.client_id not in audiences(claims):
            raise LtiRefused(401, "wrong_audience", "the id_token is not meant for ClassPulse's client id (aud)")
        # OpenID Connect: with several audiences the authorized party must be named, and whenever it is named it must
        # be ClassPulse's client id.
        if (len(audiences(claims)) > 1 or "azp" in claims) and claims.get("azp") != platform.client_id:
            raise LtiRefused(401, "wrong_audience", "the id_token's azp is not ClassPulse's client id (or is missing with several audiences)")
        if not secrets.compare_digest(str(claims["nonce"]), login.nonce):
            raise LtiRefused(401, "nonce_mismatch", "the id_token's nonce is not this login's: a replayed or foreign launch")
        if claims.get(LTI + "deployment_id") not in platform.deployment_ids:
            raise LtiRefused(
                403, "unknown_deployment",
                f"the deployment {claims.get(LTI + 'deployment_id')!r} is not registered for {platform.issuer!r}",
            )
        if claims.get(LTI + "version") != "1.3.0":
            raise LtiRefused(400, "unsupported_version", f"LTI version {claims.get(LTI + 'version')!r} is not 1.3.0")
        if claims.get(LTI + "message_type") not in (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST):
            raise LtiRefused(400, "unsupported_message", f"the message type {claims.get(LTI + 'message_type')!r} is not one ClassPulse handles")


class Roster:
    """Names and Role Provisioning: how many Learners a course has, read with the tool's own service token."""

    def __init__(self, http: httpx.AsyncClient, tool_keys: ToolKeys) -> None:
        self.http = http
        self.tool_keys = tool_keys

    async def learners(self, launch: Launch) -> int | None:
        """The course's active Learners; None when the platform offers no roster for this launch."""
        service = launch.claims.get(NRPS_CLAIM)
        if not isinstance(service, dict) or not isinstance(service.get("context_memberships_url"), str):
            return None
        token = await self._access_token(launch.platform)
        url: str | None = service["context_memberships_url"]
        learners, pages = 0, 0
        while url and pages < MAX_NRPS_PAGES:
            response = await self.http.get(url, headers={"Authorization": f"Bearer {token}", "Accept": NRPS_MEDIA_TYPE})
            response.raise_for_status()
            for member in response.json().get("members", []):
                if member.get("status", "Active") == "Active" and any(is_learner(role) for role in member.get("roles", [])):
                    learners += 1
            url, pages = response.links.get("next", {}).get("url"), pages + 1
        return learners

    async def _access_token(self, platform: LtiPlatform) -> str:
        """A client-credentials grant with a JWT assertion signed by the tool's key (IMS Security Framework 4.1)."""
        issued = int(time.time())
        assertion = await self.tool_keys.sign({
            "iss": platform.client_id, "sub": platform.client_id, "aud": str(platform.auth_token_url),
            "iat": issued, "exp": issued + 300, "jti": uuid.uuid4().hex,
        })
        response = await self.http.post(str(platform.auth_token_url), data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": NRPS_SCOPE,
        })
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


RosterErrors = (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError, aioredis.RedisError)
"""A roster not read or not kept: the platform unreachable, an answer of another shape, Redis away meanwhile."""


class RosterReads:
    """Rosters read beside the launches that asked for them: a launch never waits for its course's roster, which may
    be many pages of a slow platform. One read per course at a time (a launch while it is read asks for nothing more),
    ROSTER_READS_AT_ONCE courses read at once, the others waiting their turn; a failed read is tried again after a
    backoff, ROSTER_ATTEMPTS times in all, then logged and counted (an error of another kind than RosterErrors: at
    once); the next Instructor's launch asks again."""

    def __init__(self, roster: Roster, retry: Backoff = ROSTER_RETRY, attempts: int = ROSTER_ATTEMPTS) -> None:
        self.roster = roster
        self.retry = retry
        self.attempts = attempts
        self._reading: dict[str, asyncio.Task[None]] = {}
        self._turns = asyncio.Semaphore(ROSTER_READS_AT_ONCE)

    def read(self, launch: Launch, keep: Callable[[int], Awaitable[None]]) -> None:
        """Reads the course's roster in the background; `keep` is given its Learners (not called when the platform
        offers no roster for this launch)."""
        course = launch.class_id()
        if course in self._reading:
            return
        if len(self._reading) >= ROSTER_READS_WAITING:
            NRPS_CALLS.labels("skipped").inc()
            log.warning("lti roster not read: too many waiting", extra={"class_id": course, "issuer": launch.platform.issuer})
            return
        task = asyncio.create_task(self._read(launch, keep), name=f"lti roster {course}")
        self._reading[course] = task
        task.add_done_callback(lambda _done: self._reading.pop(course, None))

    async def _read(self, launch: Launch, keep: Callable[[int], Awaitable[None]]) -> None:
        retries = Retries(self.retry)
        while True:
            try:
                async with self._turns:
                    size = await self.roster.learners(launch)
                    if size is not None:
                        await keep(size)
            except RosterErrors as exc:
                given_up = retries.attempt + 1 >= self.attempts
                delay_s = retries.failed()
                NRPS_CALLS.labels("failed" if given_up else "retried").inc()
                log.warning("lti roster not read", extra={
                    "class_id": launch.class_id(), "issuer": launch.platform.issuer, "error": repr(exc),
                    "attempt": retries.attempt, "retry_in_s": None if given_up else delay_s,
                })
                if given_up:
                    return
                await asyncio.sleep(delay_s)
                continue
            except Exception:
                # Not a failure of the platform's or Redis's that another try may get past: logged and counted once,
                # never left in the task to be lost; the other courses' reads go on.
                NRPS_CALLS.labels("failed").inc()
                log.exception("lti roster read failed", extra={"class_id": launch.class_id(), "issuer": launch.platform.issuer})
                return
            NRPS_CALLS.labels("ok" if size is not None else "not_offered").inc()
            return

    async def close(self) -> None:
        """Stops the reads in progress (a stopping process): the next Instructor's launch asks again."""
        tasks = list(self._reading.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def deep_linking_response(launch: Launch, tool_keys: ToolKeys, launch_url: str) -> tuple[str, str]:
    """(the platform's return URL, a signed LtiDeepLinkingResponse placing one ClassPulse link in the course)."""
    settings = launch.claims.get(DL + "deep_linking_settings")
    if not isinstance(settings, dict) or not isinstance(settings.get("deep_link_return_url"), str):
        raise LtiRefused(400, "no_deep_link_settings", "this deep linking request has no return URL (deep_linking_settings)")
    if "ltiResourceLink" not in settings.get("accept_types", ["ltiResourceLink"]):
        raise LtiRefused(400, "deep_link_type", "this course accepts no LTI resource link, which is what ClassPulse places")
    issued = int(time.time())
    claims = {
        "iss": launch.platform.client_id, "aud": launch.platform.issuer, "iat": issued, "exp": issued + 600,
        "nonce": secrets.token_urlsafe(16),
        LTI + "deployment_id": launch.deployment_id,
        LTI + "message_type": "LtiDeepLinkingResponse",
        LTI + "version": "1.3.0",
        DL + "content_items": [{
            "type": "ltiResourceLink", "title": "ClassPulse", "url": launch_url,
            "text": "The class's live dashboard for its teachers; the consent page and camera for its students.",
        }],
    }
    if "data" in settings:
        claims[DL + "data"] = settings["data"]  # opaque to the tool, given back as the platform asked
    return settings["deep_link_return_url"], await tool_keys.sign(claims)
