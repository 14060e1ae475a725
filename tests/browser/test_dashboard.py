"""The teacher dashboard in headless Chromium, against the whole local stack: a teacher opens the page, gives their
key, starts a lesson, and watches a sample class stream through the pipeline; then a presence-only class.

What the page draws is checked against what the API answers for the same range, and the screenshot taken while the
lesson runs is copied to docs/screenshots/dashboard.png for the README.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from cdp import Chromium
from classpulse_demo.run import api_client
from classpulse_devstack.components import SERVICE_PORTS
from classpulse_devstack.config import DevstackConfig

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPO_ROOT = Path(__file__).resolve().parents[2]
API = f"http://127.0.0.1:{SERVICE_PORTS['api'] + DevstackConfig.from_env().port_offset}"
"""The stack's API (moved by CLASSPULSE_DEVSTACK_PORT_OFFSET, as the stack fixture's is)."""
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "dashboard.png"
WEBCAM_SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "dashboard-webcams.png"
LEAD_MS = 5 * 60_000
"""How far past now the page asks for data (app.js LEAD_MS): the test asks the API for the same range."""

STUDENTS_ON_CAMERA = 6
REGISTERED = 14
"""The sample class shows six students; registered with fourteen, presence stays under 50% and alerts fire."""


@dataclass(frozen=True)
class Teacher:
    teacher_id: str
    key: str


@pytest.fixture(scope="module")
def sample_video(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, "-m", "classpulse_demo.sample_class", "--out", str(out), "--seconds", "60", "--fps", "2",
         "--students", str(STUDENTS_ON_CAMERA)],
        cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    return out / "sample_class.mp4"


@pytest.fixture(scope="module")
def teacher(stack) -> Iterator[Teacher]:
    teacher_id = f"t-{uuid.uuid4().hex[:8]}"
    with api_client(API) as admin:
        created = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": teacher_id, "name": "browser test"})
        created.raise_for_status()
        yield Teacher(teacher_id, created.json()["api_key"])
        admin.delete(f"/v1/keys/{created.json()['key_id']}")


@pytest.fixture
def new_class(teacher):
    """register(emotion_enabled) -> a fresh class of the teacher; deleted with all its data afterwards."""
    made: list[str] = []

    def register(emotion_enabled: bool, expected_students: int) -> str:
        class_id = f"dash-{uuid.uuid4().hex[:8]}"
        body = {"class_id": class_id, "name": "Algebra 2B", "teacher": teacher.teacher_id,
                "expected_students": expected_students, "emotion_enabled": emotion_enabled}
        with api_client(API) as admin:
            admin.post("/v1/classes", json=body).raise_for_status()
        made.append(class_id)
        return class_id

    yield register
    with api_client(API) as admin:
        for class_id in made:
            admin.delete(f"/v1/classes/{class_id}")


def demo_command(video: Path, class_id: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "classpulse_demo.run", "--video", str(video), "--class", class_id, "--timeout", "240", *options]


def js(value: object) -> str:
    return json.dumps(value)


def board(page: Chromium) -> dict[str, str]:
    return page.evaluate("({...document.getElementById('board').dataset})")


def board_tile(page: Chromium, tile: str) -> str:
    return page.evaluate(f"document.getElementById({js(tile)}).dataset.value")


def open_dashboard(page: Chromium, class_id: str, key: str) -> None:
    """Loads the page for a class and gives it the key when it asks."""
    page.navigate(f"{API}/dashboard#class={class_id}")
    page.wait_for("!document.getElementById('key-panel').hidden", 20)
    enter_key(page, key)
    page.wait_for(f"document.getElementById('board').dataset.classId === {js(class_id)}"
                  " && document.getElementById('board').dataset.drawnAt", 30)


def enter_key(page: Chromium, key: str) -> None:
    page.evaluate(f"document.getElementById('key-input').value = {js(key)};"
                  " document.getElementById('key-form').requestSubmit()")


def api_series(class_id: str, start_ms: int, bucket_ms: int) -> list[dict]:
    """The points the page asked for: from `start_ms` to LEAD_MS past now, in the page's bucket."""
    params = {"from": start_ms, "to": int(time.time() * 1000) + LEAD_MS, "bucket": f"{bucket_ms // 1000}s"}
    with api_client(API) as admin:
        return admin.get(f"/v1/classes/{class_id}/timeseries", params=params).json()["points"]


def wait_until_chart_matches_api(page: Chromium, chart: str, class_id: str, start_ms: int, field: str) -> int:
    """The page polls every few seconds: wait until a chart holds exactly the buckets with a value that the API has
    for the same range and bucket width. Returns that count."""
    deadline = time.monotonic() + 45
    while True:
        shown = board(page)
        drawn = int(page.evaluate(f"document.getElementById({js(chart)}).dataset.buckets"))
        expected = sum(point[field] is not None for point in api_series(class_id, start_ms, int(shown["bucketMs"])))
        if drawn == expected or time.monotonic() > deadline:
            assert drawn == expected, f"{chart} draws {drawn} buckets, the API has {expected}"
            return drawn
        time.sleep(1)


def path_points(page: Chromium, selector: str) -> list[tuple[float, float]]:
    d = page.evaluate(f"document.querySelector({js(selector)}).getAttribute('d')")
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]


def inside_the_chart(page: Chromium, chart: str, points: list[tuple[float, float]]) -> bool:
    width, height = page.evaluate(f"document.getElementById({js(chart)}).getAttribute('viewBox')").split()[2:]
    return all(0 <= x <= float(width) and 0 <= y <= float(height) for x, y in points)


def share_of_pixels_near(image: np.ndarray, hex_color: str, tolerance: int = 12) -> float:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    bgr = rgb[::-1]
    return float((np.abs(image.astype(int) - bgr).max(axis=2) <= tolerance).mean())


def test_dashboard_follows_a_live_lesson(stack, sample_video, teacher, new_class, chromium, tmp_path):
    class_id = new_class(emotion_enabled=True, expected_students=REGISTERED)
    page = chromium
    open_dashboard(page, class_id, teacher.key)
    assert page.evaluate("sessionStorage.getItem('classpulse.apiKey')") == teacher.key
    assert page.evaluate("document.getElementById('chart-emotions').dataset.buckets") == "0"
    assert page.evaluate("document.getElementById('alerts-empty').hidden") is False

    # The teacher starts the lesson from the page.
    page.evaluate("document.getElementById('lesson-name').value = 'Fractions'; document.getElementById('lesson-toggle').click()")
    page.wait_for("!!document.querySelector('#sessions li.session.running')", 15)
    with api_client(API) as admin:
        (session,) = admin.get(f"/v1/classes/{class_id}/sessions").json()["items"]
    assert session["name"] == "Fractions" and session["ended_at_ms"] is None
    page.evaluate("window.sameDocumentSinceTheLessonStarted = true")

    # The class streams at its own pace, as a live class would; the page follows it without a reload.
    demo = subprocess.Popen(demo_command(sample_video, class_id, "--realtime"), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page.wait_for("document.getElementById('tile-presence').dataset.value !== ''", 90)
        live_presence = float(board_tile(page, "tile-presence"))
        assert 0 < live_presence < 0.5, live_presence
        assert page.evaluate("document.querySelector('#tile-presence .value').textContent").endswith("%")
        assert page.evaluate("document.getElementById('connection').dataset.state") == "live"
        # Six of fourteen on camera for half a minute: the alert reaches the page through the stream.
        page.wait_for("!!document.querySelector('#alerts li.alert.started[data-index=\"presence\"]')", 120)
        assert "Presence below 50\u00a0%" in page.evaluate("document.getElementById('alert-banner').textContent")
        page.wait_for("Number(document.getElementById('chart-emotions').dataset.buckets) >= 20", 60)
        shot = page.screenshot(tmp_path / "dashboard.png")
        stdout, stderr = demo.communicate(timeout=300)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, stderr[-2000:]
    published = json.loads(stdout.strip().splitlines()[-1])
    assert published["frames"] == 120

    # Every chart holds what the API holds for the same range and bucket, drawn inside its frame.
    start_ms = session["started_at_ms"]
    with_emotions = wait_until_chart_matches_api(page, "chart-emotions", class_id, start_ms, "emotions")
    assert with_emotions >= 20
    assert wait_until_chart_matches_api(page, "chart-mood", class_id, start_ms, "mood_index") == with_emotions
    assert wait_until_chart_matches_api(page, "chart-presence", class_id, start_ms, "presence") >= with_emotions
    assert page.evaluate("document.querySelectorAll('#chart-emotions path.stack').length") == 7
    for selector in ("#chart-emotions path[data-series='happy']", "#chart-mood path.signed-line",
                     "#chart-presence path[data-series='presence']", "#chart-presence path[data-series='attention_risk']"):
        points = path_points(page, selector)
        assert len(points) >= with_emotions, selector
        assert inside_the_chart(page, selector.split()[0][1:], points), selector
    legend = page.evaluate("[...document.querySelectorAll('#legend-emotions li b')].map(b => b.textContent)")
    assert len(legend) == 7 and abs(sum(int(share.rstrip(" %")) for share in legend) - 100) <= 4, legend

    # Alerts as the API lists them, and the lesson's arc from its summary.
    with api_client(API) as admin:
        events = admin.get(f"/v1/classes/{class_id}/events").json()["items"]
    assert any(event["index"] == "presence" and event["kind"] == "started" for event in events)
    page.wait_for(f"document.querySelectorAll('#alerts li.alert').length === {len(events)}", 40)
    shown_times = page.evaluate("[...document.querySelectorAll('#alerts li.alert')].map(li => Number(li.dataset.t))")
    assert shown_times == [event["t"] for event in events]
    assert page.evaluate("document.querySelectorAll('#arc li.phase').length") >= 3

    # The teacher ends the lesson from the page.
    page.evaluate("document.getElementById('lesson-toggle').click()")
    page.wait_for("!!document.querySelector('#sessions li.session:not(.running)')", 15)
    with api_client(API) as admin:
        assert admin.get(f"/v1/classes/{class_id}/sessions").json()["items"][0]["ended_at_ms"] is not None
    assert page.evaluate("window.sameDocumentSinceTheLessonStarted") is True
    assert page.errors == []

    # The screenshot shows the charts themselves: the emotion chart's colours cover a good part of it.
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] == 1280
    assert share_of_pixels_near(image, "#5cb85c") > 0.003 and share_of_pixels_near(image, "#4a88c7") > 0.003
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)


def test_presence_only_class_shows_presence_and_says_emotions_are_off(stack, sample_video, teacher, new_class, chromium):
    class_id = new_class(emotion_enabled=False, expected_students=STUDENTS_ON_CAMERA)
    started_ms = int(time.time() * 1000)
    subprocess.run(demo_command(sample_video, class_id, "--presence-only", "--fps", "1"), cwd=REPO_ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page = chromium

    # A wrong key is refused with a plain message, and the right one opens the class.
    page.navigate(f"{API}/dashboard#class={class_id}")
    page.wait_for("!document.getElementById('key-panel').hidden", 20)
    enter_key(page, "cpk_nosuchkey_nosecret")
    assert "not accepted" in page.wait_for("document.getElementById('key-error').textContent", 20)
    enter_key(page, teacher.key)
    page.wait_for(f"document.getElementById('board').dataset.classId === {js(class_id)}"
                  " && Number(document.getElementById('chart-presence').dataset.buckets) > 0", 40)

    assert board(page)["emotions"] == "off"
    notice = page.evaluate("document.getElementById('emotions-off').innerText")
    assert page.evaluate("getComputedStyle(document.getElementById('emotions-off')).display") != "none"
    assert "Emotions are off for this class" in notice
    hidden = page.evaluate("[...document.querySelectorAll('.emotion-only')].map(e => getComputedStyle(e).display)")
    assert hidden and set(hidden) == {"none"}
    assert page.evaluate("document.getElementById('presence-title').textContent") == "Presence"
    assert page.evaluate("document.querySelector('#chart-presence path[data-series=\"attention_risk\"]') === null") is True
    # The shown range is the last 15 minutes: the presence chart holds every bucket the API has for it.
    recent_start = int(time.time() * 1000) - 15 * 60_000
    assert recent_start < started_ms
    shown = wait_until_chart_matches_api(page, "chart-presence", class_id, recent_start, "presence")
    assert shown > 0
    # Only the refused key's 401 was logged: no script error, no blocked resource.
    assert [error for error in page.errors if "401" not in error] == []


def test_a_webcam_class_reads_how_many_students_are_on_camera(webcam_classes, chromium, tmp_path):
    """12 students on their own webcams through the student-token route, 7 of them off for most of a minute: the
    presence tile says "x of 12 on camera" with the API's own count, and falls while the cameras are off. The lesson
    is the session's one run of the webcam class, which tests/e2e/test_webcam_class.py then reads back."""
    webcam_class = webcam_classes.to_watch()
    lesson = webcam_class.lesson
    page = chromium
    open_dashboard(page, webcam_class.class_id, webcam_classes.teacher_key)
    webcam_class.start()
    detail = "#tile-presence .detail"
    page.wait_for(f"/^([0-9]+) of 12 on camera$/.test(document.querySelector({js(detail)}).textContent)", 60)
    time.sleep(lesson.off_from_s)  # all on camera for a while, then the cameras go off
    page.wait_for(f"Number(document.querySelector({js(detail)}).textContent.split(' ')[0]) <= 5", 45)
    shot = page.screenshot(tmp_path / "dashboard-webcams.png")
    shown = page.evaluate(f"document.querySelector({js(detail)}).textContent")
    with api_client(API) as admin:
        live = admin.get(f"/v1/classes/{webcam_class.class_id}/live").json()
    assert abs(int(shown.split(" ")[0]) - live["on_camera"]) <= 1.5, (shown, live)
    # The posting so far went through; the rest of the lesson (about a minute) posts while the next tests run:
    # tests/e2e/test_webcam_class.py waits for its end and checks every snapshot, and the session's webcam_classes
    # fixture raises at its end if the posting failed later.
    webcam_class.raise_if_failed()
    assert page.errors == []
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] == 1280
    WEBCAM_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, WEBCAM_SCREENSHOT)
