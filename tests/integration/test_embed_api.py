"""Embedded dashboards against the running API (`python -m classpulse_api`) on the real Redis: an admin registers a
platform's key, the platform's viewer token opens one class read-only, and every bad token is refused with its reason."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def embedding(module_api, platform):
    """The API, two classes of two teachers, and the platform registered for the first teacher's classes."""
    api = module_api
    client = httpx.Client(base_url=api.base_url, headers=bearer(api.admin_key), timeout=10)
    mine, theirs = f"emb-{uuid.uuid4().hex[:6]}", f"emb-{uuid.uuid4().hex[:6]}"
    for class_id, teacher in ((mine, "t-mine"), (theirs, "t-theirs")):
        assert client.post("/v1/classes", json={"class_id": class_id, "teacher": teacher, "name": class_id}).status_code == 201
    registered = client.post("/v1/embed/issuers", json={
        "issuer": platform.issuer, "algorithm": "Ed25519", "key": platform.public_pem, "teacher_id": "t-mine",
        "frame_origins": ["https://lms.example.org"],
    })
    assert registered.status_code == 201, registered.text
    assert "key" not in registered.json() and len(registered.json()["key_fingerprint"]) == 16
    yield api, client, mine, theirs
    for class_id in (mine, theirs):
        client.delete(f"/v1/classes/{class_id}")
    client.delete(f"/v1/embed/issuers/{platform.issuer}")
    client.close()


def exchange(api, token: str) -> httpx.Response:
    return httpx.post(f"{api.base_url}/v1/embed/sessions", headers=bearer(token), timeout=10)


def test_a_viewer_token_opens_its_class_read_only_once(embedding, platform) -> None:
    api, _admin, mine, theirs = embedding
    token = platform.mint(mine, lifetime_s=120)
    session = exchange(api, token)
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["class_id"] == mine and body["issuer"] == platform.issuer
    viewer = httpx.Client(base_url=api.base_url, headers=bearer(body["api_key"]), timeout=10)
    assert viewer.get(f"/v1/classes/{mine}").json()["class_id"] == mine
    assert viewer.get(f"/v1/classes/{mine}/live").status_code == 200
    assert [c["class_id"] for c in viewer.get("/v1/classes").json()["items"]] == [mine]
    assert viewer.get(f"/v1/classes/{theirs}").status_code == 403  # another class
    assert viewer.post(f"/v1/classes/{mine}/sessions", json={}).status_code == 403  # read-only
    assert viewer.get("/v1/keys").status_code == 403
    # The viewer key lives no longer than the token.
    assert body["expires_at_ms"] / 1000 <= platform_exp(token) + 1
    # Used once: the same token again is refused.
    replay = exchange(api, token)
    assert replay.status_code == 401 and "already used" in replay.json()["error"]["message"]


def platform_exp(token: str) -> int:
    import base64
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def test_bad_tokens_are_refused_with_their_reason(embedding, platform) -> None:
    api, _admin, mine, theirs = embedding
    other_platform = type(platform)("https://unknown.example.org")
    header, _payload, signature = platform.mint(mine).split(".")
    tampered = f"{header}.{platform.mint(theirs).split('.')[1]}.{signature}"
    cases = {
        "expired": (platform.mint(mine, lifetime_s=60, issued_ago_s=300), 401, "expired"),
        "too long-lived": (platform.mint(mine, lifetime_s=3600), 401, "the most accepted is 900 s"),
        "foreign issuer": (other_platform.mint(mine), 401, "is not registered"),
        "foreign key": (platform.mint(mine, signing_key=other_platform.signing_key), 401, "signature does not verify"),
        "tampered": (tampered, 401, "signature does not verify"),
        "wrong class": (platform.mint(theirs), 403, "may not open class"),
        "no such class": (platform.mint("emb-nosuch"), 403, "may not open class"),
        "garbage": ("garbage", 401, "malformed"),
    }
    for name, (token, status, reason) in cases.items():
        response = exchange(api, token)
        assert response.status_code == status, (name, response.text)
        assert reason in response.json()["error"]["message"], name
    assert httpx.post(f"{api.base_url}/v1/embed/sessions", timeout=10).status_code == 401


def open_embedded(api, token: str) -> httpx.Response:
    """What the embed page's script does with the token it took from its address's fragment: posts it as a form."""
    return httpx.post(f"{api.base_url}/dashboard/embed", data={"token": token}, timeout=10)


def test_the_embed_page_takes_the_token_once_and_frames_only_for_the_platform(embedding, platform) -> None:
    api, _admin, mine, _theirs = embedding
    token = platform.mint(mine)
    page = open_embedded(api, token)
    assert page.status_code == 200
    assert 'name="classpulse-viewer"' in page.text and "cpk_" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors https://lms.example.org;" in page.headers["content-security-policy"] + ";"
    assert "x-frame-options" not in page.headers
    again = open_embedded(api, token)
    assert again.status_code == 401 and "already used" in again.text and "cpk_" not in again.text
    expired = open_embedded(api, platform.mint(mine, 60, 300))
    assert expired.status_code == 401 and "expired" in expired.text
    unknown = open_embedded(api, "x.y.z")
    assert unknown.status_code == 401 and unknown.headers["x-frame-options"] == "DENY"
    plain = httpx.get(f"{api.base_url}/dashboard", timeout=10)
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]


def test_the_embed_address_carries_no_token_to_the_server(embedding, platform) -> None:
    api, _admin, mine, _theirs = embedding
    # The address a platform frames, `/dashboard/embed#token=...`: the fragment stays in the browser, the page that
    # comes back holds no key and only posts the token on, to this origin.
    opening = httpx.get(f"{api.base_url}/dashboard/embed", timeout=10)
    assert opening.status_code == 200 and "cpk_" not in opening.text
    assert '<form id="token-exchange" method="post" action="/dashboard/embed">' in opening.text
    assert "form-action 'self'" in opening.headers["content-security-policy"]
    assert opening.headers["cache-control"] == "no-store"
    # A token in the query, which every log and proxy on its way keeps, is refused with the reason and not exchanged.
    token = platform.mint(mine)
    in_query = httpx.get(f"{api.base_url}/dashboard/embed", params={"token": token}, timeout=10)
    assert in_query.status_code == 400 and "fragment (#token=)" in in_query.text and "cpk_" not in in_query.text
    # Shown inside the platform's frame, where a platform not yet moved to the fragment opens it.
    assert in_query.headers["content-security-policy"].endswith("; frame-ancestors https://lms.example.org")
    # And spent: read from such a log, it opens nothing.
    replayed = open_embedded(api, token)
    assert replayed.status_code == 401 and "already used" in replayed.text and "cpk_" not in replayed.text
    # Without a token the post is refused as before.
    nothing = open_embedded(api, "")
    assert nothing.status_code == 401 and "holds no viewer token" in nothing.text


def test_a_frame_origin_given_as_a_page_address_frames_from_its_origin(embedding, platform) -> None:
    # frame-ancestors matches origins only: `https://lms.example.org/moodle` would let no page of it frame the dashboard.
    api, admin, mine, _theirs = embedding
    registered = admin.post("/v1/embed/issuers", json={
        "issuer": platform.issuer, "algorithm": "Ed25519", "key": platform.public_pem, "teacher_id": "t-mine",
        "frame_origins": ["https://lms.example.org/moodle/course/view.php?id=3", "https://lms.example.org:8443/;sandbox"],
    })
    assert registered.json()["frame_origins"] == ["https://lms.example.org/", "https://lms.example.org:8443/"]
    page = open_embedded(api, platform.mint(mine))
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert policy.endswith("; frame-ancestors https://lms.example.org https://lms.example.org:8443"), policy


def test_only_admins_register_issuers_and_keys_are_checked(embedding, platform) -> None:
    api, admin, _mine, _theirs = embedding
    teacher_key = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": "t-mine"}).json()["api_key"]
    body = {"issuer": "https://x.example.org", "algorithm": "Ed25519", "key": platform.public_pem}
    assert httpx.post(f"{api.base_url}/v1/embed/issuers", json=body, headers=bearer(teacher_key), timeout=10).status_code == 403
    private = {**body, "key": platform.signing_key.as_pem(private=True).decode()}
    refused = admin.post("/v1/embed/issuers", json=private)
    assert refused.status_code == 422 and "public key only" in refused.json()["error"]["message"]
    assert platform.issuer in [i["issuer"] for i in admin.get("/v1/embed/issuers").json()]
    assert admin.post("/v1/keys", json={"role": "viewer"}).status_code == 422
