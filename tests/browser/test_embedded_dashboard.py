"""The dashboard embedded by a platform, in headless Chromium against the running API (`python -m classpulse_api`):
the platform's page (an origin of its own) frames it, no other can; a viewer token opens one class read-only, reaches
the server in no address (only in the body the page posts), leaves neither the token in the address nor a key in
storage, and a refused token shows a page that says why."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from cdp import Chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]


class PlatformPage:
    """The platform's course page, on an origin of its own: whatever `html` is set to, at /course."""

    def __init__(self) -> None:
        self.html = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = page.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def platform_page() -> Iterator[PlatformPage]:
    page = PlatformPage()
    yield page
    page.server.shutdown()


@pytest.fixture
def embedded_class(module_api, platform, platform_page) -> Iterator[tuple[str, str]]:
    api = module_api
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    class_id = f"emb-{uuid.uuid4().hex[:6]}"
    assert admin.post("/v1/classes", json={"class_id": class_id, "name": "Year 9 algebra", "teacher": "t-emb"}).status_code == 201
    registered = admin.post("/v1/embed/issuers", json={"issuer": platform.issuer, "algorithm": "Ed25519", "key": platform.public_pem,
                                                       "frame_origins": [platform_page.origin]})
    assert registered.status_code == 201
    yield api.base_url, class_id
    admin.delete(f"/v1/classes/{class_id}")
    admin.delete(f"/v1/embed/issuers/{platform.issuer}")
    admin.close()


def child_frame_url(chromium: Chromium) -> str:
    children = chromium.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
    return children[0]["frame"]["url"] if children else ""


def assert_token_only_posted(chromium: Chromium, base: str, token: str) -> None:
    """The token reached the server once, in the body of the page's POST, and in no request's address or header."""
    posted = [r for r in chromium.requests if r["method"] == "POST" and r["url"] == f"{base}/dashboard/embed"]
    assert [r.get("postData") for r in posted] == [f"token={token}"]
    assert [r["url"] for r in chromium.requests if token in r["url"] or token in json.dumps(r["headers"])] == []


def test_the_platform_frames_the_dashboard_and_no_other_site_can(chromium: Chromium, embedded_class, platform, platform_page) -> None:
    base, class_id = embedded_class
    embed = f"{base}/dashboard/embed"
    token = platform.mint(class_id)
    platform_page.html = f'<!doctype html><iframe src="{embed}#token={token}" width="1200" height="800"></iframe>'
    chromium.record_requests()
    chromium.navigate(f"{platform_page.origin}/course")
    # The framed dashboard ran (the browser let the platform's origin frame it): it reads its class with its key.
    class_read = f"{base}/v1/classes/{class_id}"
    deadline = time.monotonic() + 20
    while class_read not in (requested := [r["url"] for r in chromium.requests]) and time.monotonic() < deadline:
        chromium.evaluate("1")  # reads the events that arrived meanwhile
        time.sleep(0.25)
    assert class_read in requested, requested
    assert child_frame_url(chromium) == embed  # the token is out of the frame's address
    assert_token_only_posted(chromium, base, token)
    assert chromium.errors == []

    # A page for no registered issuer may be framed by no site: the browser refuses it.
    platform_page.html = f'<!doctype html><iframe src="{embed}#token=not-a-token"></iframe>'
    chromium.navigate(f"{platform_page.origin}/course")
    deadline = time.monotonic() + 20
    while not any("frame-ancestors" in error for error in chromium.errors) and time.monotonic() < deadline:
        chromium.evaluate("1")  # reads the events that arrived meanwhile
        time.sleep(0.25)
    assert any("frame-ancestors" in error for error in chromium.errors), chromium.errors


def test_a_viewer_token_opens_its_class_read_only(chromium: Chromium, embedded_class, platform) -> None:
    base, class_id = embedded_class
    token = platform.mint(class_id)
    chromium.record_requests()
    chromium.navigate(f"{base}/dashboard/embed#token={token}")
    chromium.wait_for(f"document.getElementById('board')?.dataset.classId === {json.dumps(class_id)}", 20)
    chromium.wait_for("document.getElementById('connection').dataset.state !== 'connecting'", 20)
    assert chromium.evaluate("location.href") == f"{base}/dashboard/embed"  # the token left the address
    assert_token_only_posted(chromium, base, token)
    history = [entry["url"] for entry in chromium.send("Page.getNavigationHistory")["entries"]]
    assert [url for url in history if token in url] == [], history  # nor is it in the history
    assert chromium.evaluate("sessionStorage.length + localStorage.length") == 0
    assert chromium.evaluate("document.querySelector('meta[name=classpulse-viewer]')") is None
    assert chromium.evaluate("document.getElementById('key-panel').hidden") is True
    assert chromium.evaluate("document.getElementById('class-picker').options.length") == 1
    for control in ("lesson-toggle", "forget-key"):
        assert chromium.evaluate(f"getComputedStyle(document.getElementById('{control}')).display") == "none", control
    assert chromium.evaluate("document.getElementById('problem').hidden") is True
    assert chromium.errors == []


@pytest.mark.parametrize(
    ("token_of", "status", "reason"),
    [
        (lambda platform, class_id: platform.mint(class_id, lifetime_s=60, issued_ago_s=600), 401, "has expired"),
        (lambda platform, class_id: type(platform)("https://elsewhere.example.org").mint(class_id), 401, "is not registered"),
        (lambda platform, class_id: platform.mint("emb-not-this-one"), 403, "may not open class"),
    ],
    ids=["expired", "foreign-issuer", "wrong-class"],
)
def test_a_refused_token_gets_a_clear_page(chromium: Chromium, embedded_class, platform, token_of, status, reason) -> None:
    base, class_id = embedded_class
    chromium.navigate(f"{base}/dashboard/embed#token={token_of(platform, class_id)}")
    chromium.wait_for("!!document.getElementById('embed-refused')", 20)
    assert chromium.evaluate("document.querySelector('h1').textContent") == "This dashboard cannot be shown"
    assert reason in chromium.evaluate("document.getElementById('embed-reason').textContent")
    assert chromium.evaluate("document.getElementById('embed-refused').dataset.status") == str(status)
    assert chromium.evaluate("!!document.getElementById('board')") is False
    assert [error for error in chromium.errors if str(status) not in error] == []
