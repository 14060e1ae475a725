"""LTI 1.3 launches end to end: a real platform implementation (lti1p3platform, tests/browser/lti_platform.py) on
127.0.0.1 launches ClassPulse (`python -m classpulse_api`) in headless Chromium. An Instructor lands on the dashboard
of the course's class, registered at that launch with its size from the platform's roster (Names and Role
Provisioning, read with the tool's signed client-credentials grant); a Learner lands on ingest's student page at its
consent step; Deep Linking places the tool in the course (the platform verifies the tool's signed response). Refused
launches (unknown issuer, wrong deployment, bad signature, replayed launch and nonce, expired token) get a 4xx page
that says why."""

from __future__ import annotations

import asyncio
import html
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

from cdp import Chromium
from classpulse_api.lti import LtiPlatform, LtiRefused, PlatformKeys, state_cookie_name
from free_ports import free_port
from local_servers import wait_until_up

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
PLATFORM_VENV = REPO / ".cache" / "lti-platform-venv"
CLIENT_ID = "classpulse-tool"
DEPLOYMENT_ID = "deployment-1"
LEARNERS = 7


@pytest.fixture(scope="session")
def platform_python() -> Path:
    """The Python of .cache/lti-platform-venv (requirements-lti-platform.txt), made on first use."""
    python = PLATFORM_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(PLATFORM_VENV)], check=True)
        subprocess.run([str(PLATFORM_VENV / "bin" / "pip"), "install", "-q", "-r", str(REPO / "requirements-lti-platform.txt")], check=True)
    return python


@dataclass
class Lms:
    """The running platform and the ClassPulse it launches."""

    url: str
    api: str
    admin: httpx.Client
    api_log: Path

    def logged(self, message: str) -> list[dict]:
        """The API's structured log lines with this message."""
        lines = (json.loads(line) for line in self.api_log.read_text().splitlines() if line.startswith("{"))
        return [line for line in lines if line.get("msg") == message]

    def register(self, **changes: object) -> dict:
        body = {"issuer": self.url, "client_id": CLIENT_ID, "deployment_ids": [DEPLOYMENT_ID],
                "auth_login_url": f"{self.url}/authorize", "auth_token_url": f"{self.url}/token",
                "keyset_url": f"{self.url}/jwks", **changes}
        response = self.admin.post("/v1/lti/platforms", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def start_url(self, role: str, course: str, **options: object) -> str:
        return f"{self.url}/start?" + urlencode({"user": f"u-{role.lower()}", "role": role, "course": course, **options})


@contextmanager
def running_platform(platform_python: Path, tool: str, tmp_path: Path) -> Iterator[str]:
    """lti_platform.py launching the tool at `tool`; its URL (its issuer)."""
    port = free_port()
    log = (tmp_path / "platform.log").open("w")
    process = subprocess.Popen([str(platform_python), str(Path(__file__).with_name("lti_platform.py")), str(port), tool,
                                CLIENT_ID, DEPLOYMENT_ID], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/jwks", process, tmp_path / "platform.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def lms(start_api, ingest_service, platform_python, tmp_path) -> Iterator[Lms]:
    ingest_base, _topic = ingest_service
    api = start_api(student_page_url=ingest_base)
    with running_platform(platform_python, api.base_url, tmp_path) as url, \
            httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=30) as admin:
        yield Lms(url, api.base_url, admin, api.log)
        for platform in admin.get("/v1/lti/platforms").json():
            if platform["issuer"] == url:
                admin.delete(f"/v1/lti/platforms/{platform['platform_id']}")


def set_roster(lms: Lms, course: str, learners: int = LEARNERS, **paging: float) -> None:
    """The course's members: an Instructor, `learners` active Learners and an inactive one; `paging`: page_size and
    page_delay_s (the platform's wait before each page)."""
    members = [{"user_id": "u-instructor", "roles": ["Instructor"], "status": "Active"}]
    members += [{"user_id": f"s{n}", "roles": ["Learner"], "status": "Active"} for n in range(learners)]
    members.append({"user_id": "gone", "roles": ["Learner"], "status": "Inactive"})
    assert httpx.put(f"{lms.url}/memberships/{course}", json={"members": members, **paging}).status_code == 200


def wait_for_size(lms: Lms, class_id: str, expected_students: int, timeout_s: float = 15) -> None:
    """The class sized by its roster, which is read after the launch."""
    deadline = time.monotonic() + timeout_s
    while (size := lms.admin.get(f"/v1/classes/{class_id}").json()["expected_students"]) != expected_students:
        assert time.monotonic() < deadline, f"the class's size is {size}, not {expected_students}, after {timeout_s} s"
        time.sleep(0.2)


def test_an_instructor_lands_on_the_dashboard_of_the_course_class_sized_by_the_roster(chromium: Chromium, lms: Lms) -> None:
    lms.register()
    course = f"course-{uuid.uuid4().hex[:6]}"
    set_roster(lms, course)
    chromium.navigate(lms.start_url("Instructor", course, title="Biology 101"))
    chromium.wait_for("!!document.getElementById('board') && !!document.getElementById('board').dataset.classId", 30)
    class_id = chromium.evaluate("document.getElementById('board').dataset.classId")
    assert re.fullmatch(r"lti-[0-9a-f]{16}", class_id)
    assert chromium.evaluate("location.href") == f"{lms.api}/lti/launch"
    assert chromium.evaluate("document.body.dataset.embedded") == "teacher"
    assert chromium.evaluate("getComputedStyle(document.getElementById('lesson-toggle')).display") != "none"
    assert chromium.evaluate("sessionStorage.length + localStorage.length") == 0  # the key lives in the page only
    assert chromium.evaluate("document.getElementById('class-picker').selectedOptions[0].textContent") == "Biology 101"
    wait_for_size(lms, class_id, LEARNERS)
    assert lms.admin.get(f"/v1/classes/{class_id}").json()["teacher"] == f"lti:{class_id}"
    # The Instructor runs the class's lessons from the launched page.
    chromium.evaluate("document.getElementById('lesson-name').value = 'Cells'; document.getElementById('lesson-toggle').click()")
    chromium.wait_for("!!document.querySelector('#sessions li.session.running')", 15)
    (session,) = lms.admin.get(f"/v1/classes/{class_id}/sessions").json()["items"]
    assert session["name"] == "Cells" and session["ended_at_ms"] is None
    assert chromium.errors == []

    # The same course launches into the same class; the roster is read again at an Instructor's launch.
    set_roster(lms, course)
    httpx.put(f"{lms.url}/memberships/{course}", json={"members": [{"user_id": "s1", "roles": ["Learner"]}]})
    chromium.navigate(lms.start_url("Instructor", course, title="Biology 101 (renamed)"))
    chromium.wait_for(f"document.getElementById('board') && document.getElementById('board').dataset.classId === {json.dumps(class_id)}", 30)
    wait_for_size(lms, class_id, 1)
    metrics = httpx.get(f"{lms.api}/metrics").text
    assert 'classpulse_lti_launches_total{outcome="opened",reason="instructor"} 2.0' in metrics
    assert 'classpulse_lti_nrps_calls_total{outcome="ok"} 2.0' in metrics


def test_an_instructor_launch_does_not_wait_for_a_large_slow_roster(chromium: Chromium, lms: Lms) -> None:
    """The roster was read inside the Instructor's launch, every page of it: a large course on a slow platform made the
    launch as slow as its roster, or time out. The launch now answers at once; the roster is read after it, once at a
    time for a course however many launches ask, and the teacher's page shows the class's size once it is there."""
    lms.register()
    course = f"course-{uuid.uuid4().hex[:6]}"
    large, page_size, page_delay_s = 600, 50, 0.5  # 13 pages, 6.5 s
    set_roster(lms, course, learners=large, page_size=page_size, page_delay_s=page_delay_s)
    chromium.navigate(lms.start_url("Instructor", course))
    chromium.wait_for("!!document.getElementById('board') && !!document.getElementById('board').dataset.classId", 30)
    class_id = chromium.evaluate("document.getElementById('board').dataset.classId")
    assert lms.admin.get(f"/v1/classes/{class_id}").json()["expected_students"] == 0, "the launch waited for the roster"
    # Another Instructor's launch meanwhile: the roster being read is not read again beside it.
    with httpx.Client(timeout=30) as browser:
        id_token, state = signed_form(browser.get(lms.start_url("Instructor", course), follow_redirects=True))
        assert browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": state}).status_code == 200
    wait_for_size(lms, class_id, large, timeout_s=30)
    assert 'classpulse_lti_nrps_calls_total{outcome="ok"} 1.0' in httpx.get(f"{lms.api}/metrics").text
    # The page reads the class again with its lessons and alerts (every 30 s): the size shows once it is there.
    chromium.wait_for(f"document.getElementById('board').dataset.expectedStudents === '{large}'", 45)
    assert chromium.errors == []


def test_a_learner_lands_on_the_student_page_consent_step(chromium: Chromium, lms: Lms) -> None:
    lms.register()
    course = f"course-{uuid.uuid4().hex[:6]}"
    set_roster(lms, course)
    chromium.navigate(lms.start_url("Learner", course))
    # The page read its token and took it out of the address bar.
    chromium.wait_for("!!document.body && document.body.dataset.state === 'consent' && location.hash === ''", 30)
    assert "Nothing is taken before you agree" in chromium.evaluate("document.getElementById('consent').innerText")
    class_id = chromium.evaluate("location.pathname").removeprefix("/student/")
    # The Learner's launch registered the class too, sized from the roster.
    wait_for_size(lms, class_id, LEARNERS)
    assert chromium.errors == []


def in_child_frame(chromium: Chromium, expression: str) -> object:
    """The value of a JavaScript expression in the page's frame (of another origin: not reachable from the page's)."""
    children = chromium.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
    if not children:
        return None
    world = chromium.send("Page.createIsolatedWorld", frameId=children[0]["frame"]["id"])
    result = chromium.send("Runtime.evaluate", expression=expression, contextId=world["executionContextId"], returnByValue=True)
    return result["result"].get("value")


def test_a_learner_launched_in_the_platforms_frame_opens_the_student_page_in_its_own_window(chromium: Chromium, lms: Lms) -> None:
    """A Learner's launch in the course page's frame was sent on to the student page, which may not be framed (nor ask
    for the camera in a frame): the frame stayed empty. The launch now answers the frame with why, and a button that
    opens the student page in a new window, the Learner's key in its fragment (never sent to a server)."""
    lms.register(frame_origins=[lms.url])
    course = f"course-{uuid.uuid4().hex[:6]}"
    chromium.navigate(f"{lms.url}/course?" + urlencode({"launch": lms.start_url("Learner", course)}))
    link = "document.getElementById('learner-open-link')"
    deadline = time.monotonic() + 30
    while not in_child_frame(chromium, f"!!{link}"):
        assert time.monotonic() < deadline, f"the frame shows no link to the student page: {chromium.errors}"
        time.sleep(0.25)
    assert "cannot use your camera" in in_child_frame(chromium, "document.getElementById('learner-open').innerText")
    assert in_child_frame(chromium, f"[{link}.target, {link}.rel]") == ["_blank", "noopener noreferrer"]
    student_page = urlsplit(in_child_frame(chromium, f"{link}.href"))
    assert re.fullmatch(r"/student/lti-[0-9a-f]{16}", student_page.path) and not student_page.query
    assert student_page.fragment.startswith("token=")
    assert chromium.errors == []
    # What the new window opens: the student page at its consent step, with the key of the link.
    chromium.navigate(student_page.geturl())
    chromium.wait_for("!!document.body && document.body.dataset.state === 'consent' && location.hash === ''", 30)
    assert chromium.errors == []


def test_deep_linking_places_the_tool_in_the_course(chromium: Chromium, lms: Lms) -> None:
    lms.register()
    chromium.navigate(lms.start_url("Instructor", f"course-{uuid.uuid4().hex[:6]}", deep_link="true"))
    chromium.wait_for("!!document.getElementById('deep-link-add')", 30)
    chromium.evaluate("document.getElementById('deep-link-add').click()")
    chromium.wait_for("!!document.getElementById('placed')", 30)  # the platform verified the tool's signed response
    placed = httpx.get(f"{lms.url}/deep-links").json()
    assert placed == [{"type": "ltiResourceLink", "title": "ClassPulse", "url": f"{lms.api}/lti/launch",
                       "text": placed[0]["text"]}]


def launch_form(client: httpx.Client, lms: Lms, **options: object) -> tuple[str, str]:
    """A launch up to the platform's signed form: (id_token, state), the tool's state cookie in `client`."""
    return signed_form(client.get(lms.start_url("Instructor", "course-x", **options), follow_redirects=True))


def signed_form(login: httpx.Response) -> tuple[str, str]:
    assert login.status_code == 200, login.text
    id_token = re.search(r'name="id_token" value="([^"]+)"', login.text)
    state = re.search(r'name="state" value="([^"]+)"', login.text)
    assert id_token and state, login.text
    return id_token.group(1), state.group(1)


def refusal(response: httpx.Response) -> tuple[int, str]:
    reason = re.search(r'<p id="embed-reason"[^>]*>(.*?)</p>', response.text, re.DOTALL)
    assert reason, response.text
    return response.status_code, html.unescape(reason.group(1))


def test_a_refused_launch_gets_a_clear_page_in_the_browser(chromium: Chromium, lms: Lms) -> None:
    chromium.navigate(lms.start_url("Instructor", "course-x"))  # the platform was never registered
    chromium.wait_for("!!document.getElementById('embed-refused')", 30)
    assert chromium.evaluate("document.getElementById('embed-refused').dataset.status") == "400"
    assert "is not registered with ClassPulse" in chromium.evaluate("document.getElementById('embed-reason').textContent")


@pytest.mark.parametrize(
    ("setup", "status", "reason"),
    [
        (lambda lms: None, 400, "is not registered with ClassPulse"),
        (lambda lms: lms.register(deployment_ids=["another-deployment"]), 403, "'deployment-1' is not registered"),
        (lambda lms: lms.register(keyset_url=None, keys={"keys": [RSAKey.generate_key(2048, auto_kid=True).as_dict(private=False)]}),
         401, "signature does not verify"),
    ],
    ids=["unknown-issuer", "wrong-deployment", "bad-signature"],
)
def test_refused_launches(lms: Lms, setup: Callable[[Lms], object], status: int, reason: str) -> None:
    setup(lms)
    with httpx.Client(timeout=30) as browser:
        response = browser.get(lms.start_url("Instructor", "course-x"), follow_redirects=True)
        if response.request.url.path != "/lti/login":  # the login went through: the launch is what is refused
            id_token, state = signed_form(response)
            response = browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": state})
    assert refusal(response)[0] == status
    assert reason in refusal(response)[1]


def test_an_expired_token_is_refused(lms: Lms) -> None:
    lms.register()
    with httpx.Client(timeout=30) as browser:
        id_token, state = launch_form(browser, lms, expires_in=-300)
        status, reason = refusal(browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": state}))
    assert (status, reason) == (401, "the id_token is not valid: it has expired")


def test_a_replayed_launch_is_refused(lms: Lms) -> None:
    lms.register()
    with httpx.Client(timeout=30) as browser:
        id_token, state = launch_form(browser, lms)
        first = browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": state})
        assert first.status_code == 200 and 'name="classpulse-viewer"' in first.text
        # The same post again: its state was used.
        browser.cookies.set(state_cookie_name(state), "1", path="/lti/")
        assert refusal(browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": state}))[0] == 400
        # The same id_token with a fresh login's state: its nonce is the old login's.
        _fresh_token, fresh_state = launch_form(browser, lms)
        status, reason = refusal(browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": fresh_state}))
    assert status == 401 and "nonce" in reason
    metrics = httpx.get(f"{lms.api}/metrics").text
    assert 'classpulse_lti_launches_total{outcome="refused",reason="state_unknown"} 1.0' in metrics
    assert 'classpulse_lti_launches_total{outcome="refused",reason="nonce_mismatch"} 1.0' in metrics
    refusals = [(line["reason"], line["status"]) for line in lms.logged("lti launch refused")]
    assert refusals == [("state_unknown", 400), ("nonce_mismatch", 401)]
    (opened,) = lms.logged("lti launch opened")
    assert opened["outcome"] == "instructor" and opened["class_id"].startswith("lti-") and opened["issuer"] == lms.url


def test_forged_launches_naming_unknown_keys_do_not_each_fetch_the_platforms_keys(lms: Lms) -> None:
    """A token naming a kid the platform's keys lack had them fetched again, at every launch: anyone can start a login,
    so each forged launch made ClassPulse call the platform (an attacker's requests, sent on to the platform). A kid is
    now looked for again once per cooldown (PLATFORM_KEYS_COOLDOWN_S)."""
    lms.register()
    forger = RSAKey.generate_key(2048)
    with httpx.Client(timeout=30) as browser:
        id_token, state = launch_form(browser, lms)
        assert browser.post(f"{lms.api}/lti/launch", data={"id_token": id_token, "state": state}).status_code == 200
        fetched = httpx.get(f"{lms.url}/jwks/fetches").json()
        for n in range(5):
            id_token, state = launch_form(browser, lms)
            claims = json.loads(jws.extract_compact(id_token.encode()).payload)
            forged = jwt.encode({"alg": "RS256", "kid": f"forged-{n}"}, claims, forger, algorithms=["RS256"])
            status, reason = refusal(browser.post(f"{lms.api}/lti/launch", data={"id_token": forged, "state": state}))
            assert status == 401 and "signature does not verify" in reason
    assert httpx.get(f"{lms.url}/jwks/fetches").json() - fetched <= 1


@pytest.mark.anyio
async def test_a_platforms_keys_are_fetched_once_for_launches_together_and_kept_when_its_keyset_is_down(
    platform_python: Path, tmp_path: Path
) -> None:
    """Once a platform's keys were older than their time to live, every launch fetched them, each its own fetch (a
    class starting together: as many calls to the platform as students), and a keyset URL that did not answer then (a
    platform busy at the start of the day) refused every launch (502), though the keys it had published were known."""
    ttl_s = 0.5
    with running_platform(platform_python, "http://127.0.0.1:9/", tmp_path) as url:
        platform = LtiPlatform(issuer=url, client_id=CLIENT_ID, deployment_ids=[DEPLOYMENT_ID], auth_login_url=f"{url}/authorize",
                               auth_token_url=f"{url}/token", keyset_url=f"{url}/jwks")
        async with httpx.AsyncClient(timeout=5) as http:
            keys = PlatformKeys(http, ttl_s=ttl_s, cooldown_s=ttl_s)

            async def fetches() -> int:
                count: int = (await http.get(f"{url}/jwks/fetches")).json()
                return count

            (published,) = (await keys.keyset(platform, None)).keys
            fetched = await fetches()
            await asyncio.sleep(ttl_s)
            await asyncio.gather(*(keys.keyset(platform, published.kid) for _ in range(5)))
            assert await fetches() == fetched + 1

            assert (await http.put(f"{url}/jwks/down", json=True)).status_code == 200
            await asyncio.sleep(ttl_s)
            try:
                kept = await keys.keyset(platform, published.kid)
            except LtiRefused as refused:
                pytest.fail(f"the keys known were not used: {refused.message}")
            assert [key.kid for key in kept.keys] == [published.kid]
            await keys.keyset(platform, published.kid)  # tried a moment ago: not again
            assert await fetches() == fetched + 2
