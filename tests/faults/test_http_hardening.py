"""The HTTP services as deployed processes (the isolated stack's api and ingest, over real sockets): security
headers, CORS closed, bounded request bodies, no stack trace in any error, Redis down answered with 503, and the
ingest upload route fuzzed with hostile bodies and headers."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classpulse_reliability.workload import Workload, register_class

pytestmark = pytest.mark.faults

BASELINE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
EVIL_ORIGIN = "https://evil.example"
TRACE_MARKERS = ("Traceback", 'File "', "site-packages", "Error(")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_no_trace(response: httpx.Response) -> None:
    assert not any(marker in response.text for marker in TRACE_MARKERS), response.text[:500]


@pytest.fixture(scope="module")
def urls(isolated_stack) -> dict[str, str]:
    return {"api": isolated_stack.url("api"), "ingest": isolated_stack.url("ingest")}


@pytest.fixture(scope="module")
def upload_class(isolated_stack) -> str:
    class_id = f"upload-{uuid.uuid4().hex[:8]}"
    register_class(isolated_stack.url("api"), isolated_stack.admin_key(), class_id, 6)
    # Earlier tests restart Redis, and ingest's Redis clients are made without retry_on_error: each dead connection
    # left in their pools answers one request with 503 before it is replaced. Use those up first.
    for _ in range(5):
        response = httpx.get(f"{isolated_stack.url('ingest')}/v1/sources", headers=_auth(isolated_stack.admin_key()), timeout=30)
        if response.status_code != 503:
            break
    return class_id


def test_every_response_carries_the_baseline_security_headers(isolated_stack, urls):
    key = isolated_stack.admin_key()
    responses = [
        httpx.get(f"{urls['api']}/healthz"),
        httpx.get(f"{urls['api']}/v1/classes"),  # 401
        httpx.get(f"{urls['api']}/v1/classes", headers=_auth(key)),
        httpx.get(f"{urls['api']}/v1/classes/nope/summary", headers=_auth(key)),  # 404
        httpx.get(f"{urls['api']}/openapi.json"),
        httpx.get(f"{urls['ingest']}/healthz"),
        httpx.post(f"{urls['ingest']}/v1/classes/x/frames", content=b"x"),  # 401
    ]
    for response in responses:
        for name, value in BASELINE.items():
            assert response.headers.get(name) == value, (response.request.url, name, dict(response.headers))
        # API answers (and keys shown once) must not be kept by any cache on the way.
        assert response.headers.get("cache-control") == "no-store", response.request.url
    dashboard = httpx.get(f"{urls['api']}/dashboard")
    assert "default-src 'none'" in dashboard.headers["content-security-policy"]


@pytest.mark.parametrize("service", ["api", "ingest"])
def test_cors_is_closed(service, isolated_stack, urls):
    preflight = httpx.options(
        f"{urls[service]}/v1/classes",
        headers={"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    read = httpx.get(f"{urls[service]}/healthz", headers={"Origin": EVIL_ORIGIN})
    for response in (preflight, read):
        assert not any(name.startswith("access-control-allow") for name in response.headers), dict(response.headers)
    assert preflight.status_code >= 400


def test_request_bodies_are_bounded(isolated_stack, urls, upload_class):
    key = isolated_stack.admin_key()
    oversized = {"class_id": "big", "name": "x" * (100 * 1024)}
    declared = httpx.post(f"{urls['api']}/v1/classes", json=oversized, headers=_auth(key))

    def chunks():
        for _ in range(200):
            yield b"x" * 1024

    # A chunked body has no Content-Length to refuse up front: it is cut off while it streams in.
    streamed = httpx.post(f"{urls['api']}/v1/classes", content=chunks(), headers={**_auth(key), "Content-Type": "application/json"})
    upload = httpx.post(
        f"{urls['ingest']}/v1/classes/{upload_class}/frames", content=b"\xff\xd8\xff" + bytes(16 * 1024 * 1024),
        headers={**_auth(key), "Content-Type": "image/jpeg"},
    )
    # Without any key: refused before authentication, on both services, with the reason.
    anonymous = [
        httpx.post(f"{urls[service]}/v1/classes/{upload_class}/frames", content=bytes(16 * 1024 * 1024))
        for service in ("api", "ingest")
    ]
    for response in (declared, streamed, upload, *anonymous):
        assert response.status_code == 413, (response.request.url, response.status_code, response.text[:200])
        _assert_no_trace(response)
    assert all("request body larger than" in response.json()["error"]["message"] for response in anonymous)
    assert httpx.get(f"{urls['api']}/v1/classes/big", headers=_auth(key)).status_code == 404


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("POST", "/v1/classes", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/classes", {"json": {"class_id": ["a"], "expected_students": "many"}}),
        ("POST", "/v1/classes", {"json": {"class_id": "../../etc"}}),
        ("GET", "/v1/classes/x%00y/summary", {}),
        ("GET", "/v1/classes", {"params": {"limit": "1e309"}}),
        ("GET", "/v1/nowhere", {}),
        ("PATCH", "/v1/classes/none", {"json": None}),
        ("GET", "/v1/classes", {"authorization": "Bearer cpk_" + "a" * 5000}),
        ("GET", "/v1/classes", {"authorization": "Basic Zm9vOmJhcg=="}),
    ],
)
def test_errors_carry_a_message_never_a_stack_trace(method, path, kwargs, isolated_stack, urls):
    headers = dict(kwargs.pop("headers", {}))
    headers["Authorization"] = kwargs.pop("authorization", f"Bearer {isolated_stack.admin_key()}")
    response = httpx.request(method, f"{urls['api']}{path}", headers=headers, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    _assert_no_trace(response)
    assert "error" in response.json() or "detail" in response.json()


def _jpeg_mutations(jpeg: bytes) -> st.SearchStrategy[bytes]:
    cut = st.integers(0, len(jpeg)).map(lambda n: jpeg[:n])
    flipped = st.tuples(st.integers(0, len(jpeg) - 1), st.integers(0, 255)).map(
        lambda change: jpeg[: change[0]] + bytes([change[1]]) + jpeg[change[0] + 1 :]
    )
    return st.one_of(st.binary(max_size=2048), cut, flipped, st.just(b"\x89PNG\r\n\x1a\n" + bytes(64)))


def test_the_upload_route_survives_hostile_bodies_and_headers(isolated_stack, urls, upload_class, drill_workload):
    key = isolated_stack.admin_key()
    url = urls["ingest"]
    jpeg = Workload.load(drill_workload).jpegs[0]
    pid = isolated_stack.pid("ingest")
    statuses = []

    @given(
        body=_jpeg_mutations(jpeg),
        content_type=st.sampled_from(["image/jpeg", "image/png", "multipart/form-data; boundary=x", "text/plain", "", "image/jpeg; charset=\x7f"]),
        class_id=st.sampled_from([upload_class, "not-registered", "a" * 65, "..", "%2e%2e"]),
        source_id=st.one_of(st.none(), st.text(min_size=1, max_size=120)),
        with_key=st.booleans(),
    )
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def upload(body, content_type, class_id, source_id, with_key):
        headers: dict[str, str | bytes] = {"Content-Type": content_type, **(_auth(key) if with_key else {})}
        if source_id is not None:
            headers["X-Source-Id"] = source_id.encode()  # raw UTF-8 bytes: what a hostile client can send
        try:
            response = httpx.post(f"{url}/v1/classes/{class_id}/frames", content=body, headers=headers, timeout=30)
        except httpx.LocalProtocolError:
            return  # httpx itself refuses some header values; nothing reached the server
        statuses.append(response.status_code)
        assert response.status_code < 500, (response.status_code, response.text[:300])
        _assert_no_trace(response)

    upload()
    assert isolated_stack.pid("ingest") == pid
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert {401, 404} & set(statuses) and any(400 <= code < 500 and code not in (401, 404) for code in statuses), statuses


def test_redis_down_is_a_503_with_retry_after_and_recovers(isolated_stack, urls):
    key = isolated_stack.admin_key()
    url = f"{urls['api']}/v1/classes"
    # Several pooled connections, all of which the restart below kills.
    with httpx.Client(headers=_auth(key), timeout=30) as client:
        assert all(response.status_code == 200 for response in [client.get(url) for _ in range(3)])
    isolated_stack.stop("redis")
    try:
        down = httpx.get(url, headers=_auth(key), timeout=30)
    finally:
        isolated_stack.start("redis")
    assert down.status_code == 503 and down.headers.get("retry-after"), (down.status_code, down.text[:300])
    _assert_no_trace(down)
    # The first requests after the restart already work: dead pooled connections are replaced, not answered with.
    assert [httpx.get(url, headers=_auth(key), timeout=30).status_code for _ in range(3)] == [200, 200, 200]
