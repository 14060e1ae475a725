"""The LTI tool's admin routes and the refusals that need no platform, against the API app on the real Redis:
platforms registered, listed and removed (and those an older API kept moved at start-up); a login found without
walking Redis's keyspace; the tool's keys rotated (the old ones still published until retired); a login for an
unregistered deployment and launches that did not start in this browser refused with a clear page; logins' states
signed, kept by no one and used once."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Response
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from prometheus_client import REGISTRY

from classpulse_api.app import create_app
from classpulse_api.lti import (
    LTI,
    NRPS_CLAIM,
    Launch,
    LoginStates,
    LtiPlatform,
    Roster,
    RosterReads,
    fingerprint,
    platform_id,
    state_cookie_name,
)
from classpulse_api.settings import ApiSettings
from classpulse_core.backoff import Backoff
from classpulse_web.auth import new_key
from free_ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN_KEY = new_key()[1]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@asynccontextmanager
async def running_api(infra, **changes: object):
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=ADMIN_KEY,
                           public_url="https://classpulse.school.example", integrations_worker=False, **changes)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
        yield app, client


def registration(issuer: str, **changes: object) -> dict:
    return {"issuer": issuer, "client_id": "cp-1", "deployment_ids": ["d1"], "auth_login_url": f"{issuer}/auth",
            "auth_token_url": f"{issuer}/token", "keyset_url": f"{issuer}/jwks", **changes}


def nrps_calls(outcome: str) -> float:
    return REGISTRY.get_sample_value("classpulse_lti_nrps_calls_total", {"outcome": outcome}) or 0.0


@asynccontextmanager
async def platform_rosters(rosters: dict[str, str]):
    """A platform's token endpoint and its courses' rosters (course id -> the body of its memberships answer), served
    on 127.0.0.1; its base URL."""
    platform = FastAPI()

    @platform.post("/token")
    def token() -> dict[str, str]:
        return {"access_token": uuid.uuid4().hex}

    @platform.get("/memberships/{course}")
    def memberships(course: str) -> Response:
        return Response(rosters[course], media_type="application/json")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(platform, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the platform did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


def reason_of(response: httpx.Response) -> str:
    return html.unescape(re.search(r'<p id="embed-reason"[^>]*>(.*?)</p>', response.text, re.DOTALL).group(1))


async def test_platforms_are_registered_listed_and_removed(infra):
    issuer = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
    async with running_api(infra) as (app, client):
        registered = await client.post("/v1/lti/platforms", json=registration(issuer), headers=ADMIN)
        assert registered.status_code == 201, registered.text
        platform_id = registered.json()["platform_id"]
        listed = [p for p in (await client.get("/v1/lti/platforms", headers=ADMIN)).json() if p["issuer"] == issuer]
        assert [p["platform_id"] for p in listed] == [platform_id]

        # Keys one way only, public only.
        both = registration(issuer, keys={"keys": []})
        assert (await client.post("/v1/lti/platforms", json=both, headers=ADMIN)).status_code == 422
        private = registration(issuer, keyset_url=None, keys={"keys": [RSAKey.generate_key(2048).as_dict(private=True)]})
        refused = await client.post("/v1/lti/platforms", json=private, headers=ADMIN)
        assert refused.status_code == 422 and "public keys only" in refused.text

        # The login: redirected to the platform with a state and a nonce, the state's cookie set; another
        # deployment's login refused.
        login = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x", "client_id": "cp-1"})
        assert login.status_code == 302 and login.headers["location"].startswith(f"{issuer}/auth?")
        assert "redirect_uri=https%3A%2F%2Fclasspulse.school.example%2Flti%2Flaunch" in login.headers["location"]
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=none" in cookie and "Secure" in cookie
        # Named by the state's digest, holding "1": the state itself (some 260-350 characters) as both name and value
        # put 500-700 bytes into each of the browser's requests to /lti/ for every login of the last ten minutes.
        state = parse_qs(urlsplit(login.headers["location"]).query)["state"][0]
        assert len(state) > 200 and cookie.startswith(f"{state_cookie_name(state)}=1;") and len(cookie) < 150, cookie
        other = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x", "lti_deployment_id": "d9"})
        assert other.status_code == 403 and "'d9' is not registered" in reason_of(other)

        assert (await client.delete(f"/v1/lti/platforms/{platform_id}", headers=ADMIN)).status_code == 204
        assert (await client.delete(f"/v1/lti/platforms/{platform_id}", headers=ADMIN)).status_code == 404
        gone = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x"})
        assert gone.status_code == 400 and "not registered with ClassPulse" in reason_of(gone)


async def test_a_login_without_a_client_id_does_not_walk_the_keyspace(infra):
    """A login naming no client id, which anyone may send with any issuer, found the issuer's registrations with a SCAN
    of the whole keyspace (every class's series and keys): Redis walked all of it per request. They are now looked up
    among the registrations only (an issuer found nowhere walks it once a minute at most, for registrations kept the
    old way during a rollout: the first such login here, before the count)."""
    issuer = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
    prefix = f"test:unrelated:{uuid.uuid4().hex[:6]}:"
    unrelated = [[f"{prefix}{chunk}:{n}" for n in range(2000)] for chunk in range(5)]
    async with running_api(infra) as (app, client):
        assert (await client.get("/readyz")).status_code == 200  # the start-up's own walk is over
        assert (await client.post("/v1/lti/platforms", json=registration(issuer), headers=ADMIN)).status_code == 201
        redis = app.state.lti_platforms.client
        for names in unrelated:
            await redis.mset(dict.fromkeys(names, "x"))
        try:
            await client.get("/lti/login", params={"iss": "https://nowhere.example.org", "login_hint": "u1", "target_link_uri": "x"})
            scans_before = (await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0)
            for login_issuer in (issuer, f"https://nowhere-{uuid.uuid4().hex[:6]}.example.org"):
                await client.get("/lti/login", params={"iss": login_issuer, "login_hint": "u1", "target_link_uri": "x"})
            scans_after = (await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0)
        finally:
            for names in unrelated:
                await redis.delete(*names)
        assert scans_after == scans_before, f"{scans_after - scans_before} SCAN calls for two logins"
        found = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x"})
        assert found.status_code == 302 and found.headers["location"].startswith(f"{issuer}/auth?")


async def test_registrations_an_older_api_kept_are_moved_at_start_up(infra):
    """Registrations were kept a key each (`ltiplatform:<issuer fp>:<platform id>`); an API starting now moves them
    where logins find them and removes the old keys. Replicas starting together move each one once, and a platform an
    admin registered again since keeps its new registration."""
    single, several = (f"https://lms-{uuid.uuid4().hex[:6]}.example.org" for _ in range(2))
    kept_the_old_way = [LtiPlatform(**registration(single)), LtiPlatform(**registration(several)),
                        LtiPlatform(**registration(several, client_id="cp-2"))]

    def old_key(platform: LtiPlatform) -> str:
        return f"ltiplatform:{fingerprint(platform.issuer)}:{platform_id(platform.issuer, platform.client_id)}"

    async def keep_the_old_way(redis: aioredis.Redis) -> None:
        for platform in kept_the_old_way:
            await redis.set(old_key(platform), platform.model_dump_json())

    async with aioredis.Redis.from_url(f"redis://127.0.0.1:{infra.config.redis_port}/0") as redis:
        await keep_the_old_way(redis)
    async with running_api(infra) as (app, client):
        redis = app.state.lti_platforms.client
        listed = [p for p in (await client.get("/v1/lti/platforms", headers=ADMIN)).json() if p["issuer"] in (single, several)]
        assert [(p["issuer"], p["client_id"], p["platform_id"]) for p in listed] == sorted(
            (p.issuer, p.client_id, platform_id(p.issuer, p.client_id)) for p in kept_the_old_way
        )
        assert await redis.exists(*map(old_key, kept_the_old_way)) == 0
        login = await client.get("/lti/login", params={"iss": single, "login_hint": "u1", "target_link_uri": "x"})
        assert login.status_code == 302 and login.headers["location"].startswith(f"{single}/auth?")
        login = await client.get("/lti/login", params={"iss": several, "login_hint": "u1", "target_link_uri": "x", "client_id": "cp-2"})
        assert login.status_code == 302 and login.headers["location"].startswith(f"{several}/auth?")

        # Several replicas at once, one of the platforms registered again (in the new place) meanwhile.
        await keep_the_old_way(redis)
        again = registration(single, deployment_ids=["d2"])
        assert (await client.post("/v1/lti/platforms", json=again, headers=ADMIN)).status_code == 201
        moved = await asyncio.gather(*(app.state.lti_platforms.move_legacy() for _ in range(4)))
        assert sum(moved) == len(kept_the_old_way)
        assert await redis.exists(*map(old_key, kept_the_old_way)) == 0
        listed = (await client.get("/v1/lti/platforms", headers=ADMIN)).json()
        deployments = {(p["issuer"], p["client_id"]): p["deployment_ids"] for p in listed if p["issuer"] in (single, several)}
        assert deployments == {(single, "cp-1"): ["d2"], (several, "cp-1"): ["d1"], (several, "cp-2"): ["d1"]}


async def test_a_registration_an_older_replica_makes_during_a_rollout_is_found_at_once(infra):
    """A platform registered through a replica not yet upgraded (kept the old way, a key of its own) after the upgraded
    ones started was found by none of them until their next start: a login naming its client id, or an admin's listing,
    now moves it (the login with one key read, no walk of the keyspace)."""
    issuer = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
    made_the_old_way = [LtiPlatform(**registration(issuer)), LtiPlatform(**registration(issuer, client_id="cp-2"))]
    async with running_api(infra) as (app, client):
        redis = app.state.lti_platforms.client
        for platform in made_the_old_way:
            field = f"{fingerprint(platform.issuer)}:{platform_id(platform.issuer, platform.client_id)}"
            await redis.set(f"ltiplatform:{field}", platform.model_dump_json())
        scans_before = (await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0)
        login = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x", "client_id": "cp-1"})
        assert login.status_code == 302 and login.headers["location"].startswith(f"{issuer}/auth?")
        assert (await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0) == scans_before
        listed = [p["client_id"] for p in (await client.get("/v1/lti/platforms", headers=ADMIN)).json() if p["issuer"] == issuer]
        assert listed == ["cp-1", "cp-2"]
        assert [name async for name in redis.scan_iter(match=f"ltiplatform:{fingerprint(issuer)}:*")] == []


async def test_a_login_naming_no_client_id_finds_a_registration_an_older_replica_made_walking_the_keyspace_once_a_minute(infra):
    """A platform registered the old way during a rollout, logging in without a client id (LTI lets a platform leave it
    out), was refused until a login naming its client id or an admin's listing moved it. A login that finds no
    registration of its issuer now walks the keyspace for one, so this login is let in; a flood of logins of unknown
    issuers after it walks it no more within LOGIN_SWEEP_INTERVAL_S (anyone may start a login)."""
    issuer = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
    platform = LtiPlatform(**registration(issuer))
    async with running_api(infra) as (app, client):
        redis = app.state.lti_platforms.client
        await redis.set(f"ltiplatform:{fingerprint(issuer)}:{platform_id(issuer, platform.client_id)}", platform.model_dump_json())

        async def scans() -> int:
            return (await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0)

        before = await scans()
        login = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x"})
        assert login.status_code == 302 and login.headers["location"].startswith(f"{issuer}/auth?")
        swept = await scans()
        assert swept > before
        for _ in range(20):
            unknown = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
            refused = await client.get("/lti/login", params={"iss": unknown, "login_hint": "u1", "target_link_uri": "x"})
            assert refused.status_code == 400 and "is not registered with ClassPulse" in html.unescape(refused.text)
        assert await scans() == swept


async def test_a_flood_of_logins_keeps_nothing_and_holds_up_no_login(infra):
    """Anyone may call /lti/login, and each call kept a state record in Redis for 10 minutes, at most
    CLASSPULSE_LTI_MAX_PENDING_LOGINS of one registration: a flood of one platform's logins refused its students' (429)
    for the records' lifetime. A login's state is now signed and kept by no one: a flood keeps nothing, every login
    goes through, and any replica reads a state another signed."""
    issuer = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
    async with running_api(infra) as (app, client), running_api(infra) as (replica, _replica_client):
        assert (await client.post("/v1/lti/platforms", json=registration(issuer), headers=ADMIN)).status_code == 201
        redis = app.state.lti_states.client

        async def lti_keys() -> set[str]:
            return {name async for name in redis.scan_iter(match="lti*", count=1000)}

        def login() -> Awaitable[httpx.Response]:
            return client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x"})

        assert (await login()).status_code == 302  # the first login makes the signing key
        keys_before = await lti_keys()
        flood = [await login() for _ in range(300)]
        assert {response.status_code for response in flood} == {302}
        assert await lti_keys() == keys_before
        states = [parse_qs(urlsplit(response.headers["location"]).query)["state"][0] for response in flood]
        nonces = [parse_qs(urlsplit(response.headers["location"]).query)["nonce"][0] for response in flood]
        assert len(set(states)) == len(set(nonces)) == 300
        read = await replica.state.lti_states.read(states[-1])
        assert (read.issuer, read.client_id, read.nonce) == (issuer, "cp-1", nonces[-1])
        assert 0 < read.expires_at_s - time.time() <= app.state.settings.lti_state_ttl_s


async def test_only_a_state_classpulse_signed_and_unexpired_is_read_and_each_is_used_once(infra):
    """A state altered, signed by another key or with none, or expired is unknown; a state is used once; a login an API
    before signed states kept in Redis is still read, once (its launch may reach an upgraded replica)."""
    async with running_api(infra) as (app, _client):
        states: LoginStates = app.state.lti_states
        state, nonce = await states.start("https://lms.example.org", "cp-1")
        login = await states.read(state)
        assert login is not None and login.nonce == nonce
        header, payload, signature = state.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        other_key = OctKey.import_key(secrets.token_urlsafe(32))
        unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
        for forged in (
            f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
            jwt.encode({"alg": "HS256"}, {**claims, "nonce": "mine"}, other_key),
            f"{unsigned}.{payload}.",
            "s2", "a" * 10_000,
        ):
            assert await states.read(forged) is None, forged
        expired, _nonce = await LoginStates(states.client, ttl_s=-1).start("https://lms.example.org", "cp-1")
        assert await states.read(expired) is None
        assert await states.use(state, login) and not await states.use(state, login)
        legacy = secrets.token_urlsafe(32)
        await states.client.set(f"ltistate:{legacy}", json.dumps({"issuer": "https://old.example.org", "client_id": "c", "nonce": "n"}), ex=60)
        old = await states.read(legacy)
        assert old is not None and (old.issuer, old.client_id, old.nonce) == ("https://old.example.org", "c", "n")
        assert await states.read(legacy) is None


async def test_a_roster_that_cannot_be_read_is_tried_again_then_logged_and_counted(infra, caplog):
    """Rosters are read beside the launches: a platform that does not answer is asked again after a backoff, a bounded
    number of times, once at a time however many launches of the course ask; then the failure is logged and counted."""
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens, every call fails at once
    platform = LtiPlatform(**registration(f"https://lms-{uuid.uuid4().hex[:6]}.example.org", auth_token_url=f"{nowhere}/token"))
    launch = Launch(platform, {LTI + "deployment_id": "d1", LTI + "context": {"id": "c1"},
                               NRPS_CLAIM: {"context_memberships_url": f"{nowhere}/memberships/c1"}})
    kept: list[int] = []

    async def keep(learners: int) -> None:
        kept.append(learners)

    before = {outcome: nrps_calls(outcome) for outcome in ("retried", "failed")}
    async with running_api(infra) as (app, _client), httpx.AsyncClient(timeout=2) as http:
        reads = RosterReads(Roster(http, app.state.lti_tool_keys), retry=Backoff(initial_s=0.05, max_s=0.05), attempts=3)
        for _ in range(3):
            reads.read(launch, keep)
        deadline = time.monotonic() + 10
        while nrps_calls("failed") == before["failed"]:
            assert time.monotonic() < deadline, "the roster's failure was not counted"
            await asyncio.sleep(0.05)
    assert (nrps_calls("retried") - before["retried"], nrps_calls("failed") - before["failed"]) == (2, 1)
    assert kept == []
    failures = [record for record in caplog.records if record.getMessage() == "lti roster not read"]
    assert [(record.attempt, record.retry_in_s is None) for record in failures] == [(1, False), (2, False), (3, True)]


async def test_a_roster_read_that_fails_unexpectedly_is_logged_and_counted_and_the_others_go_on(infra, caplog):
    """An error of a kind no retry gets past (here a roster nested too deep to decode: a RecursionError) ended the
    read's task with nothing logged or counted, only asyncio's "Task exception was never retrieved" once the task
    was collected. It is now logged with its course and platform and counted as failed, and the other courses' reads
    go on."""
    learner = {"status": "Active", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]}
    rosters = {"deep": "[" * 100_000 + "]" * 100_000, "c1": json.dumps({"members": [learner] * 3})}
    kept: list[int] = []

    async def keep(learners: int) -> None:
        kept.append(learners)

    failed_before = nrps_calls("failed")
    async with running_api(infra) as (app, _client), platform_rosters(rosters) as lms, httpx.AsyncClient(timeout=5) as http:
        platform = LtiPlatform(**registration(f"https://lms-{uuid.uuid4().hex[:6]}.example.org", auth_token_url=f"{lms}/token"))
        deep, course = (Launch(platform, {LTI + "deployment_id": "d1", LTI + "context": {"id": context},
                                          NRPS_CLAIM: {"context_memberships_url": f"{lms}/memberships/{context}"}})
                        for context in rosters)
        reads = RosterReads(Roster(http, app.state.lti_tool_keys), retry=Backoff(initial_s=0.05, max_s=0.05), attempts=3)
        reads.read(deep, keep)
        reads.read(course, keep)
        deadline = time.monotonic() + 10
        while nrps_calls("failed") == failed_before or not kept:
            assert time.monotonic() < deadline, f"the failure was not counted ({nrps_calls('failed') - failed_before}) or the other course not read ({kept})"
            await asyncio.sleep(0.05)
    assert (nrps_calls("failed") - failed_before, kept) == (1, [3])
    [failure] = [record for record in caplog.records if record.getMessage() == "lti roster read failed"]
    assert (failure.class_id, failure.issuer, failure.exc_info[0]) == (deep.class_id(), platform.issuer, RecursionError)


async def test_removing_a_platform_removes_that_one_only(infra):
    """The platform id went into a key pattern: `DELETE /v1/lti/platforms/*` removed every registration (every
    platform's launches stopped) and answered 204. An id is now 16 hex digits, anything else a 422."""
    async with running_api(infra) as (app, client):
        kept = []
        for _ in range(2):
            registered = await client.post("/v1/lti/platforms", json=registration(f"https://lms-{uuid.uuid4().hex[:6]}.example.org"), headers=ADMIN)
            kept.append(registered.json()["platform_id"])
        for pattern in ("*", "?" * 16, "[0-9a-f]*"):
            assert (await client.delete(f"/v1/lti/platforms/{quote(pattern)}", headers=ADMIN)).status_code == 422
        listed = {platform["platform_id"] for platform in (await client.get("/v1/lti/platforms", headers=ADMIN)).json()}
        assert set(kept) <= listed
        for platform_id in kept:
            assert (await client.delete(f"/v1/lti/platforms/{platform_id}", headers=ADMIN)).status_code == 204


async def test_a_launch_that_did_not_start_in_this_browser_is_refused(infra):
    async with running_api(infra) as (app, client):
        no_cookie = await client.post("/lti/launch", data={"id_token": "a.b.c", "state": "s1"})
        assert no_cookie.status_code == 400 and "did not start in this browser" in reason_of(no_cookie)
        client.cookies.set(state_cookie_name("s2"), "1", path="/lti/")
        unknown = await client.post("/lti/launch", data={"id_token": "a.b.c", "state": "s2"})
        assert unknown.status_code == 400 and "already used or expired" in reason_of(unknown)
        another_logins = await client.post("/lti/launch", data={"id_token": "a.b.c", "state": "s3"})
        assert another_logins.status_code == 400 and "did not start in this browser" in reason_of(another_logins)
        # A login an API before this one began (its cookie named and valued by the state) still launches once.
        client.cookies.set("lti1p3_state_s4", "s4", path="/lti/")
        begun_before = await client.post("/lti/launch", data={"id_token": "a.b.c", "state": "s4"})
        assert begun_before.status_code == 400 and "already used or expired" in reason_of(begun_before)


async def test_the_tool_keys_rotate(infra):
    async with running_api(infra) as (app, client):
        before = (await client.get("/lti/jwks")).json()["keys"]
        assert before and all("d" not in key and key["alg"] == "RS256" and key["kid"] for key in before)  # public only
        rotated = await client.post("/v1/lti/keys", headers=ADMIN)
        assert rotated.status_code == 201
        new_kid = rotated.json()["kid"]
        published = {key["kid"] for key in (await client.get("/lti/jwks")).json()["keys"]}
        assert published == {key["kid"] for key in before} | {new_kid}
        listed = (await client.get("/v1/lti/keys", headers=ADMIN)).json()
        assert [k["kid"] for k in listed if k["current"]] == [new_kid]

        # What the tool signs now verifies with its published keys and names the new key.
        signed = await app.state.lti_tool_keys.sign({"iss": "cp"})
        keyset = KeySet.import_key_set((await client.get("/lti/jwks")).json())
        token = jwt.decode(signed, keyset, algorithms=["RS256"])
        assert token.header["kid"] == new_kid and token.claims == {"iss": "cp"}

        assert (await client.delete(f"/v1/lti/keys/{new_kid}", headers=ADMIN)).status_code == 409
        for key in before:
            assert (await client.delete(f"/v1/lti/keys/{key['kid']}", headers=ADMIN)).status_code == 204
        assert {key["kid"] for key in (await client.get("/lti/jwks")).json()["keys"]} == {new_kid}
        assert (await client.delete("/v1/lti/keys/nosuch", headers=ADMIN)).status_code == 404
