"""The LTI tool's admin routes and the refusals that need no platform, against the API app on the real Redis:
platforms registered, listed and removed; the tool's keys rotated (the old ones still published until retired); a
login for an unregistered deployment and launches that did not start in this browser refused with a clear page."""

from __future__ import annotations

import html
import re
import uuid
from contextlib import asynccontextmanager
from urllib.parse import quote

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings
from classpulse_web.auth import new_key

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN_KEY = new_key()[1]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@asynccontextmanager
async def running_api(infra):
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=ADMIN_KEY,
                           public_url="https://classpulse.school.example", integrations_worker=False)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
        yield app, client


def registration(issuer: str, **changes: object) -> dict:
    return {"issuer": issuer, "client_id": "cp-1", "deployment_ids": ["d1"], "auth_login_url": f"{issuer}/auth",
            "auth_token_url": f"{issuer}/token", "keyset_url": f"{issuer}/jwks", **changes}


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
