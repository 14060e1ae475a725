"""Every route of the API walked with every role, against the real Redis: keys, scopes and error bodies."""

import uuid
from contextlib import asynccontextmanager

import httpx
import pytest

from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings
from classpulse_web.auth import new_key, split_key

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN_KEY = new_key()[1]
OPEN_ROUTES = {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
ADMIN_ONLY = {
    ("POST", "/v1/classes"), ("PATCH", "/v1/classes/{class_id}"), ("DELETE", "/v1/classes/{class_id}"),
    ("POST", "/v1/keys"), ("GET", "/v1/keys"), ("DELETE", "/v1/keys/{key_id}"),
    ("POST", "/v1/embed/issuers"), ("GET", "/v1/embed/issuers"), ("DELETE", "/v1/embed/issuers/{issuer}"),
    ("GET", "/v1/xapi/deliveries"), ("GET", "/v1/xapi/dead-letters"), ("POST", "/v1/xapi/dead-letters/replay"),
    ("POST", "/v1/xapi/dead-letters/{message_id}/replay"),
    ("POST", "/v1/lti/platforms"), ("GET", "/v1/lti/platforms"), ("DELETE", "/v1/lti/platforms/{platform_id}"),
    ("GET", "/v1/lti/keys"), ("POST", "/v1/lti/keys"), ("DELETE", "/v1/lti/keys/{kid}"),
}
TOKEN_ROUTES = {("POST", "/v1/embed/sessions")}
"""Authenticated by a platform's viewer token, not an API key (test_embed_api.py walks its refusals)."""


@asynccontextmanager
async def running_api(infra):
    app = create_app(ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=ADMIN_KEY))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            yield app, client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_key(client, role: str, teacher_id: str | None = None) -> str:
    response = await client.post("/v1/keys", json={"role": role, "teacher_id": teacher_id}, headers=auth(ADMIN_KEY))
    assert response.status_code == 201, response.text
    return response.json()["api_key"]


def request_for(method: str, path: str, class_id: str) -> tuple[str, str, dict | None]:
    bodies = {("POST", "/v1/classes"): {"class_id": f"x-{uuid.uuid4().hex[:6]}"}, ("PATCH", "/v1/classes/{class_id}"): {"name": "n"},
              ("POST", "/v1/keys"): {"role": "service"}, ("POST", "/v1/classes/{class_id}/sessions"): {},
              ("POST", "/v1/webhooks"): {"url": "https://hooks.example.org/x", "class_id": class_id}}
    url = path.replace("{class_id}", class_id).replace("{session_id}", "nosuch").replace("{key_id}", "nosuch").replace("{issuer}", "nosuch").replace("{webhook_id}", "nosuch")
    url = url.replace("{platform_id}", "nosuch").replace("{kid}", "nosuch").replace("{message_id}", "nosuch")
    return method, url, bodies.get((method, path))


async def test_every_route_enforces_keys_and_scopes(infra):
    async with running_api(infra) as (app, client):
        owner, other = f"t-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
        class_id = f"auth-{uuid.uuid4().hex[:8]}"
        created = await client.post("/v1/classes", json={"class_id": class_id, "teacher": owner}, headers=auth(ADMIN_KEY))
        assert created.status_code == 201
        keys = {
            "teacher": await make_key(client, "teacher", owner),
            "other_teacher": await make_key(client, "teacher", other),
            "service": await make_key(client, "service"),
        }
        # Every documented operation: a route added later is walked without anyone listing it here.
        routes = [(m.upper(), p) for p, ops in app.openapi()["paths"].items() if p not in OPEN_ROUTES for m in ops]
        assert len(routes) >= 13
        for method, path in routes:
            if path.endswith("/stream") or (method, path) == ("DELETE", "/v1/classes/{class_id}") or (method, path) in TOKEN_ROUTES:
                continue  # streaming and deleting the class are checked below, once the rest is done
            method, url, body = request_for(method, path, class_id)
            for headers, expected in ((None, 401), ({"Authorization": "Bearer cpk_nope_nope"}, 401), ({"X-API-Key": "garbage"}, 401)):
                response = await client.request(method, url, json=body, headers=headers)
                assert response.status_code == expected, (method, path, response.text)
                assert response.json()["error"]["status"] == expected
            service = await client.request(method, url, json=body, headers=auth(keys["service"]))
            assert service.status_code == 403, (method, path)
            other_teacher = await client.request(method, url, json=body, headers=auth(keys["other_teacher"]))
            if (method, path) in (("GET", "/v1/classes"), ("GET", "/v1/webhooks")):
                assert other_teacher.status_code == 200, (method, path)  # listing answers each with their own
            elif path.startswith("/v1/webhooks/{webhook_id}"):
                assert other_teacher.status_code == 404, (method, path)  # another's subscription is not revealed
            else:
                assert other_teacher.status_code == 403, (method, path)
            teacher = await client.request(method, url, json=body, headers=auth(keys["teacher"]))
            admin = await client.request(method, url, json=body, headers=auth(ADMIN_KEY))
            if (method, path) in ADMIN_ONLY:
                assert teacher.status_code == 403, (method, path)
            else:
                assert teacher.status_code < 500 and teacher.status_code not in (401, 403), (method, path, teacher.text)
            assert admin.status_code < 500 and admin.status_code not in (401, 403), (method, path, admin.text)

        # A teacher lists only their own classes.
        listed = await client.get("/v1/classes", headers=auth(keys["teacher"]))
        assert [c["class_id"] for c in listed.json()["items"]] == [class_id]
        assert (await client.get("/v1/classes", headers=auth(keys["other_teacher"]))).json()["items"] == []

        # Revoked keys stop working at once.
        key_id = keys["teacher"].split("_")[1]
        assert (await client.delete(f"/v1/keys/{key_id}", headers=auth(ADMIN_KEY))).status_code == 204
        assert (await client.get(f"/v1/classes/{class_id}", headers=auth(keys["teacher"]))).status_code == 401

        # Keys are stored hashed: the secret appears nowhere in Redis.
        listing = (await client.get("/v1/keys", headers=auth(ADMIN_KEY))).json()
        assert all("hash" not in k and "api_key" not in k for k in listing)
        stored = await app.state.keys.client.hgetall(f"apikey:{keys['service'].split('_')[1]}")
        assert stored["hash"] != keys["service"] and keys["service"].split("_", 2)[2] not in stored.values()

        deleted = await client.delete(f"/v1/classes/{class_id}", headers=auth(keys["service"]))
        assert deleted.status_code == 403
        assert (await client.delete(f"/v1/classes/{class_id}", headers=auth(ADMIN_KEY))).status_code == 204
        assert (await client.get(f"/v1/classes/{class_id}", headers=auth(ADMIN_KEY))).status_code == 404


async def test_the_openapi_document_declares_how_each_route_authenticates(infra):
    async with running_api(infra) as (app, _client):
        document = app.openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["headerKey"]["in"] == "header" and schemes["headerKey"]["name"] == "X-API-Key"
    assert schemes["viewerToken"]["bearerFormat"] == "JWT"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in OPEN_ROUTES:
                assert "security" not in operation, (method, path)
            elif (method.upper(), path) in TOKEN_ROUTES:
                assert operation["security"] == [{"viewerToken": []}], (method, path)
            else:
                assert operation["security"] == [{"bearerKey": []}, {"headerKey": []}], (method, path)


async def test_validation_errors_are_clear_422s(infra):
    async with running_api(infra) as (_app, client):
        bad_id = await client.post("/v1/classes", json={"class_id": "no spaces allowed"}, headers=auth(ADMIN_KEY))
        assert bad_id.status_code == 422 and "class_id" in bad_id.json()["error"]["message"]
        teacher_without_id = await client.post("/v1/keys", json={"role": "teacher"}, headers=auth(ADMIN_KEY))
        assert teacher_without_id.status_code == 422 and "teacher_id" in teacher_without_id.json()["error"]["message"]
        student = await client.post("/v1/keys", json={"role": "student"}, headers=auth(ADMIN_KEY))
        assert student.status_code == 422 and "student-tokens" in student.json()["error"]["message"]
        class_id = f"v-{uuid.uuid4().hex[:8]}"
        await client.post("/v1/classes", json={"class_id": class_id}, headers=auth(ADMIN_KEY))
        again = await client.post("/v1/classes", json={"class_id": class_id}, headers=auth(ADMIN_KEY))
        assert again.status_code == 409
        for params in ({"limit": 0}, {"offset": -1}):
            assert (await client.get("/v1/classes", params=params, headers=auth(ADMIN_KEY))).status_code == 422
        assert (await client.get(f"/v1/classes/{class_id}/live", params={"window": 0}, headers=auth(ADMIN_KEY))).status_code == 422
        session = (await client.post(f"/v1/classes/{class_id}/sessions", json={"name": "algebra"}, headers=auth(ADMIN_KEY))).json()
        ended = await client.post(f"/v1/classes/{class_id}/sessions/{session['session_id']}/end", headers=auth(ADMIN_KEY))
        assert ended.status_code == 200 and ended.json()["ended_at_ms"] >= session["started_at_ms"]
        assert (await client.post(f"/v1/classes/{class_id}/sessions/{session['session_id']}/end", headers=auth(ADMIN_KEY))).status_code == 409
        summary = await client.get(f"/v1/classes/{class_id}/summary", params={"session": session["session_id"]}, headers=auth(ADMIN_KEY))
        assert summary.status_code == 200 and summary.json()["session_id"] == session["session_id"]
        await client.delete(f"/v1/classes/{class_id}", headers=auth(ADMIN_KEY))


async def test_a_revoked_bootstrap_admin_key_stays_revoked_across_restarts(infra):
    """The API installs CLASSPULSE_ADMIN_API_KEY at every start; a revocation must outlive the restart."""
    bootstrap = new_key()[1]
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=bootstrap)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            key_id = split_key(bootstrap)[0]
            assert (await client.get("/v1/keys", headers=auth(bootstrap))).status_code == 200
            assert (await client.delete(f"/v1/keys/{key_id}", headers=auth(bootstrap))).status_code in (200, 204)
    restarted = create_app(settings)
    async with restarted.router.lifespan_context(restarted):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url="http://api") as client:
            assert (await client.get("/v1/keys", headers=auth(bootstrap))).status_code == 401
