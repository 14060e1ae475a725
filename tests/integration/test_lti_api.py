"""The LTI tool's admin routes and the refusals that need no platform, against the API app on the real Redis:
platforms registered, listed and removed (and those an older API kept moved at start-up); a login found without
walking Redis's keyspace; the tool's keys rotated (the old ones still published until retired); a login for an
unregistered deployment and launches that did not start in this browser refused with a clear page."""

from __future__ import annotations

import asyncio
import html
import json
import re
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
from joserfc.jwk import KeySet, RSAKey
from prometheus_client import REGISTRY

from classpulse_api.app import create_app
from classpulse_api.lti import LTI, NRPS_CLAIM, Launch, LtiPlatform, Roster, RosterReads, fingerprint, platform_id
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
        other = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x", "lti_deployment_id": "d9"})
        assert other.status_code == 403 and "'d9' is not registered" in reason_of(other)

        assert (await client.delete(f"/v1/lti/platforms/{platform_id}", headers=ADMIN)).status_code == 204
        assert (await client.delete(f"/v1/lti/platforms/{platform_id}", headers=ADMIN)).status_code == 404
        gone = await client.get("/lti/login", params={"iss": issuer, "login_hint": "u1", "target_link_uri": "x"})
        assert gone.status_code == 400 and "not registered with ClassPulse" in reason_of(gone)


async def test_a_login_without_a_client_id_does_not_walk_the_keyspace(infra):
    """A login naming no client id, which anyone may send with any issuer, found the issuer's registrations with a SCAN
    of the whole keyspace (every class's series and keys): Redis walked all of it per request. They are now looked up
    among the registrations only."""
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


async def test_a_flood_of_logins_cannot_fill_redis(infra):
    """Anyone may call /lti/login, and each call kept a state record in Redis for 10 minutes: a flood of logins filled
    it. At most CLASSPULSE_LTI_MAX_PENDING_LOGINS logins of one registration now wait for their launch (a 429 with
    Retry-After beyond, until a launch uses a state or one expires); an unregistered platform's login keeps nothing."""
    issuer, other = (f"https://lms-{uuid.uuid4().hex[:6]}.example.org" for _ in range(2))
    async with running_api(infra, lti_max_pending_logins=3) as (app, client):
        for registered in (issuer, other):
            assert (await client.post("/v1/lti/platforms", json=registration(registered), headers=ADMIN)).status_code == 201
        redis = app.state.lti_states.client
        states_before = len([name async for name in redis.scan_iter(match="ltistate:*", count=1000)])

        def login(platform_issuer: str) -> Awaitable[httpx.Response]:
            return client.get("/lti/login", params={"iss": platform_issuer, "login_hint": "u1", "target_link_uri": "x"})

        for _ in range(50):
            assert (await login(f"https://nowhere-{uuid.uuid4().hex[:6]}.example.org")).status_code == 400
        accepted = [await login(issuer) for _ in range(3)]
        assert [response.status_code for response in accepted] == [302, 302, 302]
        for _ in range(20):
            flooded = await login(issuer)
            assert flooded.status_code == 429, flooded.text
        assert 0 < int(flooded.headers["Retry-After"]) <= app.state.settings.lti_state_ttl_s
        assert "are waiting for their launch" in reason_of(flooded)
        states_after = len([name async for name in redis.scan_iter(match="ltistate:*", count=1000)])
        assert states_after - states_before == 3

        # Another registration's logins are not held up; a launch uses its state and makes room for the next login.
        assert (await login(other)).status_code == 302
        state = parse_qs(urlsplit(accepted[0].headers["location"]).query)["state"][0]
        assert (await client.post("/lti/launch", data={"id_token": "a.b.c", "state": state})).status_code == 400
        assert (await login(issuer)).status_code == 302
        assert (await login(issuer)).status_code == 429
        assert 'classpulse_lti_launches_total{outcome="refused",reason="too_many_logins"}' in (await client.get("/metrics")).text


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
        client.cookies.set("lti1p3_state_s2", "s2", path="/lti/")
        unknown = await client.post("/lti/launch", data={"id_token": "a.b.c", "state": "s2"})
        assert unknown.status_code == 400 and "already used or expired" in reason_of(unknown)


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
