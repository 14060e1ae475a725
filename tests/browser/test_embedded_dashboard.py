"""The dashboard embedded by a platform, in headless Chromium against the running API (`python -m classpulse_api`):
a viewer token opens one class read-only, leaves neither the token in the address nor a key in storage, and a
refused token shows a page that says why."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from cdp import Chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
def embedded_class(start_api, platform) -> Iterator[tuple[str, str]]:
    api = start_api()
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    class_id = f"emb-{uuid.uuid4().hex[:6]}"
    assert admin.post("/v1/classes", json={"class_id": class_id, "name": "Year 9 algebra", "teacher": "t-emb"}).status_code == 201
    registered = admin.post("/v1/embed/issuers", json={"issuer": platform.issuer, "algorithm": "Ed25519", "key": platform.public_pem})
    assert registered.status_code == 201
    yield api.base_url, class_id
    admin.delete(f"/v1/classes/{class_id}")
    admin.delete(f"/v1/embed/issuers/{platform.issuer}")
    admin.close()


def test_a_viewer_token_opens_its_class_read_only(chromium: Chromium, embedded_class, platform) -> None:
    base, class_id = embedded_class
    chromium.navigate(f"{base}/dashboard/embed?token={platform.mint(class_id)}")
    chromium.wait_for(f"document.getElementById('board').dataset.classId === {json.dumps(class_id)}", 20)
    chromium.wait_for("document.getElementById('connection').dataset.state !== 'connecting'", 20)
    assert chromium.evaluate("location.href") == f"{base}/dashboard/embed"  # the token left the address
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
    chromium.navigate(f"{base}/dashboard/embed?token={token_of(platform, class_id)}")
    chromium.wait_for("!!document.getElementById('embed-refused')", 20)
    assert chromium.evaluate("document.querySelector('h1').textContent") == "This dashboard cannot be shown"
    assert reason in chromium.evaluate("document.getElementById('embed-reason').textContent")
    assert chromium.evaluate("document.getElementById('embed-refused').dataset.status") == str(status)
    assert chromium.evaluate("!!document.getElementById('board')") is False
    assert [error for error in chromium.errors if str(status) not in error] == []
