"""The student page in headless Chromium with a fake camera showing FER2013 faces, against a real ingest service
(`python -m classpulse_ingest serve`) on the real Kafka and Redis: nothing is captured before consent, snapshots
arrive in Kafka once the student agrees, and Pause stops them (and the camera); they keep coming, fresh, when the
browser refuses to play the preview."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis
from kafka import KafkaConsumer, TopicPartition

from cdp import CHROMIUM, STUDENT_SNAPSHOT_INTERVAL_S, Chromium
from classpulse_core.schemas import Frame
from classpulse_demo.fer_csv import FerCsvNotFoundError
from classpulse_demo.sample_class import generate_sample_class
from classpulse_store.registry import ClassRecord, class_key
from classpulse_web.auth import Role, new_key
from classpulse_web.keystore import KeyStore

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

FAKE_CAMERA_FLAGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def write_y4m(video: Path, out: Path) -> Path:
    """The video's frames as raw YUV 4:2:0 in a y4m file: what Chromium's fake camera plays (in a loop)."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    height, width = image_size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    capture.release()
    assert frames and all(image_size)
    with out.open("wb") as y4m:
        y4m.write(f"YUV4MPEG2 W{width} H{height} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y4m.write(b"FRAME\n" + frame)
    return out


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory) -> Path:
    """A camera that films a gallery of four FER2013 faces (from the demo's sample class generator)."""
    out = tmp_path_factory.mktemp("camera")
    try:
        sample = generate_sample_class(None, out, students=4, seconds=2, fps=5, size=(640, 480))
    except FerCsvNotFoundError as exc:
        pytest.skip(f"FER2013 is needed for the fake camera's faces: {exc}")
    return write_y4m(sample.video, out / "camera.y4m")


@pytest.fixture
def student_link(infra, ingest_service) -> Iterator[tuple[str, str, str]]:
    """(page URL with its token, class id, student key id): a class registered and a token issued by an admin."""
    base, _topic = ingest_service
    class_id = f"browser-{uuid.uuid4().hex[:8]}"
    admin_key = new_key()[1]

    async def set_up() -> None:
        client = aioredis.Redis(host="127.0.0.1", port=infra.config.redis_port, decode_responses=True)
        await KeyStore(client).install(admin_key, Role.ADMIN, "browser test admin")
        await client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id).to_hash())
        await client.aclose()

    asyncio.run(set_up())
    issued = httpx.post(f"{base}/v1/classes/{class_id}/student-tokens", headers={"Authorization": f"Bearer {admin_key}"})
    assert issued.status_code == 201, issued.text
    yield base + issued.json()["page_url"], class_id, issued.json()["key_id"]

    async def tear_down() -> None:
        client = aioredis.Redis(host="127.0.0.1", port=infra.config.redis_port)
        await client.delete(class_key(class_id), f"apikey:{admin_key.split('_')[1]}", f"apikey:{issued.json()['key_id']}")
        await client.aclose()

    asyncio.run(tear_down())


@pytest.fixture
def browser(fake_camera, tmp_path) -> Iterator[Chromium]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (python -m classpulse_devstack install)")
    flags = (*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={fake_camera}")
    page = Chromium(tmp_path / "chromium-profile", width=900, height=900, extra_flags=flags)
    yield page
    page.close()


def frames_in(bootstrap: str, topic: str) -> list[Frame]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        frames = []
        while any(consumer.position(p) < ends[p] for p in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                frames.extend(Frame.decode(record.value) for record in records)
        return frames
    finally:
        consumer.close()


def page_state(page: Chromium) -> dict:
    return page.evaluate(
        "({state: document.body.dataset.state, sent: Number(document.body.dataset.sent),"
        " indicator: document.getElementById('indicator').textContent,"
        " camera: !!document.getElementById('preview').srcObject})"
    )


def open_and_agree(browser: Chromium, url: str, *page_scripts: str) -> None:
    """The student opens the link (where the test's scripts then run) and agrees: the camera turns on."""
    browser.navigate(url)
    for script in page_scripts:
        browser.evaluate(script)
    browser.evaluate("document.getElementById('agree').click()")


def test_consent_first_then_snapshots_reach_kafka_and_pause_stops_them(infra, ingest_service, student_link, browser, tmp_path):
    _base, topic = ingest_service
    url, class_id, key_id = student_link
    browser.navigate(url)

    # Consent first: the page explains in plain words and takes nothing while it waits.
    text = browser.evaluate("document.getElementById('consent').innerText")
    assert "Nothing is taken before you agree" in text and "one photo with your camera every second" in text
    assert browser.evaluate("location.hash") == ""  # the token left the address bar at once
    time.sleep(3 * STUDENT_SNAPSHOT_INTERVAL_S)
    assert page_state(browser) == {"state": "consent", "sent": 0, "indicator": "", "camera": False}
    assert frames_in(infra.config.kafka_bootstrap, topic) == []

    # Agree: the camera turns on, the page says so, and snapshots arrive in Kafka.
    browser.evaluate("document.getElementById('agree').click()")
    browser.wait_for("document.body.dataset.state === 'capturing' && Number(document.body.dataset.sent) >= 3", 30)
    capturing = page_state(browser)
    assert capturing["camera"] and capturing["indicator"].startswith("Capture is ON")
    browser.screenshot(Path(os.environ.get("STUDENT_PAGE_SCREENSHOT_DIR", tmp_path)) / "student-page-capturing.png")

    # Pause: the camera is released and no more snapshots are sent.
    browser.evaluate("document.getElementById('pause').click()")
    paused = page_state(browser)
    assert paused["state"] == "paused" and not paused["camera"] and paused["indicator"].startswith("Capture is PAUSED")
    time.sleep(1.5)  # a snapshot already on its way when Pause was pressed may still land
    after_pause = frames_in(infra.config.kafka_bootstrap, topic)
    time.sleep(4 * STUDENT_SNAPSHOT_INTERVAL_S)
    assert len(frames_in(infra.config.kafka_bootstrap, topic)) == len(after_pause)
    assert page_state(browser)["sent"] == len(after_pause) >= 3

    # What arrived: this class, this student's source, consecutive frame numbers, real pictures of the fake camera.
    assert {f.class_id for f in after_pause} == {class_id}
    sources = {f.source_id for f in after_pause}
    assert sources == {f"student-{key_id}"}
    assert {f.camera_kind for f in after_pause} == {"personal"}
    assert sorted(f.sequence for f in after_pause) == list(range(len(after_pause)))
    image = cv2.imdecode(np.frombuffer(after_pause[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) <= 640 and float(image.std()) > 20
    faces = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml").detectMultiScale(
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), scaleFactor=1.1, minNeighbors=5
    )
    assert len(faces) >= 2  # the FER2013 faces of the fake camera reached Kafka as faces
    assert browser.errors == []  # no script error, no Content-Security-Policy violation


LOSE_THE_FIRST_ANSWER = """
(() => {
  const realFetch = window.fetch;
  window.photoKeys = [];
  let answerLost = false;
  window.fetch = async (url, options) => {
    window.photoKeys.push(options.headers["Idempotency-Key"]);
    const response = await realFetch(url, options);
    if (!answerLost) {
      answerLost = true;
      throw new TypeError("Failed to fetch");  // the photo arrived; its answer did not
    }
    return response;
  };
})()
"""


def test_a_photo_whose_answer_was_lost_is_sent_again_and_counted_once(infra, ingest_service, student_link, browser):
    _base, topic = ingest_service
    url, _class_id, _key_id = student_link
    open_and_agree(browser, url, LOSE_THE_FIRST_ANSWER)
    browser.wait_for("Number(document.body.dataset.sent) >= 3", 30)
    browser.evaluate("document.getElementById('pause').click()")
    time.sleep(1.5)  # a snapshot already on its way when Pause was pressed may still land

    keys = browser.evaluate("window.photoKeys")
    frames = frames_in(infra.config.kafka_bootstrap, topic)
    # The first photo was sent again with its own key; every other photo once, each with a key of its own.
    assert keys[0] == keys[1] and len(set(keys)) == len(keys) - 1, keys
    # ClassPulse answered the retry as the first time: each photo is one frame, and the page counted each once.
    assert len(frames) == len(set(keys)) == page_state(browser)["sent"]
    assert sorted(f.sequence for f in frames) == list(range(len(frames)))
    assert browser.errors == []


def test_a_camera_that_stops_sends_no_frozen_picture(infra, ingest_service, student_link, browser):
    _base, topic = ingest_service
    url, _class_id, _key_id = student_link
    open_and_agree(browser, url)
    browser.wait_for("document.body.dataset.state === 'capturing' && Number(document.body.dataset.sent) >= 2", 30)

    def sent_over(seconds: float) -> int:
        time.sleep(1.5)  # a snapshot already on its way may still land
        before = len(frames_in(infra.config.kafka_bootstrap, topic))
        time.sleep(seconds)
        return len(frames_in(infra.config.kafka_bootstrap, topic)) - before

    # The system holds the camera for a while (muted: no new picture comes): the preview's last picture is not sent.
    browser.evaluate(
        "(() => { const track = document.getElementById('preview').srcObject.getVideoTracks()[0];"
        " Object.defineProperty(track, 'muted', {value: true, configurable: true}); })()"
    )
    assert sent_over(4 * STUDENT_SNAPSHOT_INTERVAL_S) == 0
    assert page_state(browser)["state"] == "capturing"

    # The camera goes away (unplugged: its track ends, as the browser announces it): capture stops and the page says so.
    browser.evaluate(
        "(() => { const track = document.getElementById('preview').srcObject.getVideoTracks()[0];"
        " delete track.muted; track.stop(); track.dispatchEvent(new Event('ended')); })()"
    )
    stopped = page_state(browser)
    assert stopped["state"] == "paused" and not stopped["camera"] and stopped["indicator"].startswith("Capture is PAUSED")
    assert "Your camera stopped" in browser.evaluate("document.getElementById('message').textContent")
    assert browser.evaluate("!document.getElementById('resume').hidden")
    assert sent_over(4 * STUDENT_SNAPSHOT_INTERVAL_S) == 0
    assert browser.errors == []


KEEP_CAMERA_STREAMS = """
(() => {
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  window.cameraStreams = [];
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    window.cameraStreams.push(stream);
    return stream;
  };
})()
"""


def test_a_double_click_on_agree_opens_one_camera_that_pause_stops(infra, ingest_service, student_link, browser):
    url, _class_id, _key_id = student_link
    browser.navigate(url)
    browser.evaluate(KEEP_CAMERA_STREAMS)
    browser.evaluate("document.getElementById('agree').click(); document.getElementById('agree').click()")
    browser.wait_for("document.body.dataset.state === 'capturing' && Number(document.body.dataset.sent) >= 2", 30)
    assert browser.evaluate("window.cameraStreams.length") == 1

    browser.evaluate("document.getElementById('pause').click()")
    live_tracks = "window.cameraStreams.flatMap((s) => s.getTracks()).filter((t) => t.readyState === 'live').length"
    assert browser.evaluate(live_tracks) == 0  # the camera (and its light) is off
    assert browser.errors == []


REFUSE_TO_PLAY = """
(() => {
  // As a browser whose policy refuses to play any media the user did not start: neither autoplay nor play().
  window.realPlay = HTMLMediaElement.prototype.play;
  document.getElementById('preview').autoplay = false;
  HTMLMediaElement.prototype.play = () => Promise.reject(new DOMException('play() was refused', 'NotAllowedError'));
})()
"""


def sent_photos(infra, topic: str, count: int) -> set[bytes]:
    """The distinct pictures among the last `count` photos that reached Kafka."""
    time.sleep(1.5)  # a snapshot on its way may still land
    frames = sorted(frames_in(infra.config.kafka_bootstrap, topic), key=lambda f: f.sequence)
    return {f.jpeg for f in frames[-count:]}


def test_a_preview_the_browser_refuses_to_play_stops_no_photo(infra, ingest_service, student_link, browser):
    _base, topic = ingest_service
    url, _class_id, _key_id = student_link
    open_and_agree(browser, url, REFUSE_TO_PLAY)
    # Photos of the camera as it films come all the same: taken from the camera, not from the still preview.
    browser.wait_for("document.body.dataset.state === 'capturing' && Number(document.body.dataset.sent) >= 4", 30)
    assert browser.evaluate("document.getElementById('preview').paused") is True
    assert len(sent_photos(infra, topic, 4)) >= 2
    # The page says so and offers to start the preview by hand; pressed, the preview plays.
    assert browser.evaluate("!document.getElementById('preview-stopped').hidden")
    assert "did not start the picture of your camera (NotAllowedError)" in browser.evaluate(
        "document.getElementById('preview-stopped').textContent.replace(/\\s+/g, ' ')"
    )
    browser.evaluate("HTMLMediaElement.prototype.play = window.realPlay; document.getElementById('show-preview').click()")
    browser.wait_for("!document.getElementById('preview').paused", 10)
    assert browser.evaluate("document.getElementById('preview-stopped').hidden") is True
    assert browser.errors == []  # no unhandled rejection


HELD_CAMERA = """
(() => {
  // A camera whose next frame is late by several intervals, then comes for every grab waiting on it at once; and the
  // uploads in flight at the same time, at the most.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  window.releaseFrames = () => release();
  const grab = ImageCapture.prototype.grabFrame;
  ImageCapture.prototype.grabFrame = function () { return held.then(() => grab.call(this)); };
  window.inFlight = 0;
  window.mostInFlight = 0;
  const realFetch = window.fetch;
  window.fetch = function (...args) {
    window.inFlight += 1;
    window.mostInFlight = Math.max(window.mostInFlight, window.inFlight);
    return realFetch.apply(this, args).finally(() => { window.inFlight -= 1; });
  };
})();
"""


def test_a_camera_late_by_several_intervals_gets_one_photo_posted_not_one_per_tick(infra, ingest_service, student_link, browser):
    # The guard against overlapping uploads was taken once the picture was in hand: every tick while the camera's next
    # frame was late waited for it, and all posted the same picture at once.
    url, _class_id, _key_id = student_link
    open_and_agree(browser, url, REFUSE_TO_PLAY, HELD_CAMERA)
    browser.wait_for("document.body.dataset.state === 'capturing'", 30)
    time.sleep(3 * STUDENT_SNAPSHOT_INTERVAL_S)
    browser.evaluate("window.releaseFrames()")
    browser.wait_for("Number(document.body.dataset.sent) >= 1", 30)
    time.sleep(STUDENT_SNAPSHOT_INTERVAL_S)
    assert browser.evaluate("window.mostInFlight") == 1


def test_without_imagecapture_photos_wait_for_the_preview_to_play(infra, ingest_service, student_link, browser):
    # Browsers without ImageCapture (Firefox, Safari) take the preview's picture: a still one is never sent.
    _base, topic = ingest_service
    url, _class_id, _key_id = student_link
    open_and_agree(browser, url, "delete window.ImageCapture", REFUSE_TO_PLAY)
    browser.wait_for("!document.getElementById('preview-stopped').hidden", 10)
    time.sleep(3 * STUDENT_SNAPSHOT_INTERVAL_S)
    assert page_state(browser)["sent"] == 0 and frames_in(infra.config.kafka_bootstrap, topic) == []
    browser.evaluate("HTMLMediaElement.prototype.play = window.realPlay; document.getElementById('show-preview').click()")
    browser.wait_for("Number(document.body.dataset.sent) >= 3", 30)
    assert len(sent_photos(infra, topic, 3)) >= 2
    assert browser.errors == []


HIDDEN_INTERVAL_S = 1.5
"""Not a whole number of seconds: a hidden page's own timers are held to whole seconds."""


@pytest.mark.parametrize("ingest_service", [HIDDEN_INTERVAL_S], indirect=True)
def test_a_hidden_page_keeps_the_class_pace(infra, ingest_service, student_link, browser):
    # The student watches the lesson in another tab: the page's interval timer was held to whole seconds there (1.5 s
    # read 1 s and 2 s by turns; hidden five minutes, Chrome wakes such timers once a minute). Its pace is a worker's.
    url, _class_id, _key_id = student_link
    record_posts = "window.posts = []; const sendPost = window.fetch; window.fetch = (...request) => { posts.push(performance.now()); return sendPost(...request); }"
    open_and_agree(browser, url, record_posts)
    browser.wait_for("Number(document.body.dataset.sent) >= 1", 30)
    browser.send("Target.createTarget", url="about:blank", newWindow=False, background=False)  # another tab in front
    assert browser.evaluate("document.visibilityState") == "hidden"
    posted_before = browser.evaluate("posts.length")
    time.sleep(8 * HIDDEN_INTERVAL_S)
    posts = browser.evaluate("posts")[posted_before:]
    gaps_ms = [later - earlier for earlier, later in itertools.pairwise(posts)]
    assert len(gaps_ms) >= 5, posts
    assert abs(sorted(gaps_ms)[len(gaps_ms) // 2] - 1000 * HIDDEN_INTERVAL_S) < 150, gaps_ms
    assert page_state(browser)["state"] == "capturing" and browser.errors == []
