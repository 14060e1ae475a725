"""Both HTTP services bound request bodies before any route runs, so before the key is checked: an anonymous client
declaring a large body gets a 413 with the reason at once, a chunked one is cut off while it streams in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from classpulse_api.app import create_app as create_api
from classpulse_api.settings import ApiSettings
from classpulse_ingest.app import create_app as create_ingest
from classpulse_web.auth import Role, new_key
from ingest_support import ingest_settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN_KEY = new_key()[1]
API_LIMIT = 8 * 1024
INGEST_UPLOAD_LIMIT = 64 * 1024


@asynccontextmanager
async def served(app) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        await app.state.keys.install(ADMIN_KEY, Role.ADMIN, "test admin")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
            yield client


@pytest.fixture
def services(infra, kafka_bootstrap, topic_factory):
    """The API and ingest apps with small body limits, each with a route that takes a body."""
    redis_url = f"redis://127.0.0.1:{infra.config.redis_port}/0"
    api = create_api(ApiSettings(redis_url=redis_url, max_request_bytes=API_LIMIT))
    ingest = create_ingest(ingest_settings(infra, kafka_bootstrap, topic_factory(1), max_upload_bytes=INGEST_UPLOAD_LIMIT))
    return {"api": (api, "/v1/classes"), "ingest": (ingest, "/v1/classes/any-class/sources")}


async def chunks(total: int):
    for _ in range(total // 1024):
        yield b"x" * 1024


@pytest.mark.parametrize("service", ["api", "ingest"])
async def test_oversized_bodies_are_refused_before_the_key_is_checked(services, service):
    app, path = services[service]
    async with served(app) as client:
        anonymous = await client.post(path, content=b"x" * (INGEST_UPLOAD_LIMIT * 2), headers={"Content-Type": "application/json"})
        anonymous_upload = await client.post("/v1/classes/c/frames", content=b"x" * (INGEST_UPLOAD_LIMIT * 2))
        streamed = await client.post(
            path, content=chunks(INGEST_UPLOAD_LIMIT * 2),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"},
        )
        small_anonymous = await client.post(path, json={})
    for refused in (anonymous, anonymous_upload, streamed):
        assert refused.status_code == 413, (refused.request.url, refused.status_code, refused.text[:200])
        assert "request body larger than" in refused.json()["error"]["message"]
        assert refused.headers["x-content-type-options"] == "nosniff"  # a refusal is still a ClassPulse answer
    assert small_anonymous.status_code == 401  # within the limit, the key is checked as before
