"""Alert webhooks against the running API (`python -m classpulse_api`) on the real Redis, delivering to a real HTTP
receiver in this test that fails (500), then times out, then recovers; a second one that never recovers. Events are
written to the class's event stream as the aggregator writes them. The API is restarted halfway: nothing is lost. A
receiver that never answers, with a backlog of messages, holds back no other subscription's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from classpulse_api.outbox import Message
from classpulse_core.alerts import EVENTS_MAXLEN, AlertEvent, events_key
from outbox_support import give_up, read_pages

# The outbox is the deployment's: on database 0, other tests' APIs (with their own settings) would send this module's
# messages, and a backlog this module leaves would be theirs to send.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]

TIMEOUT_S = 1.0
MAX_ATTEMPTS = 4
SETTINGS = {
    "webhook_allowed_networks": '["127.0.0.0/8"]',
    "webhook_allowed_schemes": '["http"]',
    "webhook_timeout_s": str(TIMEOUT_S),
    "webhook_max_attempts": str(MAX_ATTEMPTS),
    "webhook_retry_initial_s": "0.3",
    "webhook_retry_max_s": "1",
}


class Receiver:
    """`/flaky` answers each message's first attempt with 500, its second too late, and 200 after; `/down`, always 500;
    `/silent` never answers; anything else, 200 at once."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.attempts: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    key = f"{self.path}|{self.headers['webhook-id']}"
                    receiver.attempts[key] += 1
                    attempt = receiver.attempts[key]
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body, "attempt": attempt})
                if self.path == "/silent":
                    time.sleep(TIMEOUT_S * 3)
                    return
                if self.path == "/flaky" and attempt == 2:
                    time.sleep(TIMEOUT_S * 2)
                status = 500 if self.path == "/down" or (self.path == "/flaky" and attempt < 2) else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


def verify(secret: str, request: dict) -> bool:
    """The Standard Webhooks check a receiver makes, written out independently of ClassPulse's code."""
    headers = {name.lower(): value for name, value in request["headers"].items()}
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request["body"]
    expected = base64.b64encode(hmac.new(base64.b64decode(secret.removeprefix("whsec_")), signed, hashlib.sha256).digest())
    scheme, _, value = headers["webhook-signature"].partition(",")
    return scheme == "v1" and hmac.compare_digest(value.encode(), expected)


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.2)


def test_events_reach_every_subscriber_signed_retried_and_dead_lettered(start_api, redis_client) -> None:
    receiver = Receiver()
    api = start_api(**SETTINGS)
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    teacher_id, class_id = f"t-{uuid.uuid4().hex[:6]}", f"wh-{uuid.uuid4().hex[:6]}"
    assert admin.post("/v1/classes", json={"class_id": class_id, "teacher": teacher_id}).status_code == 201
    teacher_key = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": teacher_id}).json()["api_key"]
    teacher = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {teacher_key}"}, timeout=10)

    # SSRF: the camera sources' rules, with the webhooks' own networks and schemes.
    for url, reason in (("http://169.254.169.254/latest", "outside the networks"), ("https://127.0.0.1/x", "unsupported URL scheme"),
                        ("http://10.1.2.3/hook", "outside the networks")):
        refused = teacher.post("/v1/webhooks", json={"url": url})
        assert refused.status_code == 422 and reason in refused.json()["error"]["message"], url
    other = teacher.post("/v1/webhooks", json={"url": f"{receiver.url}/x", "teacher_id": "someone-else"})
    assert other.status_code == 403

    flaky = teacher.post("/v1/webhooks", json={"url": f"{receiver.url}/flaky", "description": "platform alerts"})
    assert flaky.status_code == 201, flaky.text
    flaky = flaky.json()
    assert flaky["teacher_id"] == teacher_id and flaky["secret"].startswith("whsec_")
    down = admin.post("/v1/webhooks", json={"url": f"{receiver.url}/down", "class_id": class_id}).json()
    listed = teacher.get("/v1/webhooks").json()
    assert {h["webhook_id"] for h in listed} == {flaky["webhook_id"], down["webhook_id"]}  # the class is the teacher's
    assert all("secret" not in h for h in listed)
    stranger_key = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": "t-stranger"}).json()["api_key"]
    stranger = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {stranger_key}"}, timeout=10)
    assert stranger.get("/v1/webhooks").json() == []
    assert stranger.get(f"/v1/webhooks/{flaky['webhook_id']}/deliveries").status_code == 404
    assert stranger.delete(f"/v1/webhooks/{flaky['webhook_id']}").status_code == 404

    try:
        events = [("started", "presence", 0.3), ("ended", "presence", 0.7), ("started", "attention_risk", 0.8)]
        now = int(time.time() * 1000)
        ids = []
        for i, (kind, index, value) in enumerate(events):
            event = AlertEvent(class_id=class_id, kind=kind, index=index, value=value, threshold=0.5, t=now + i)
            ids.append(redis_client.xadd(events_key(class_id), event.to_fields(), maxlen=EVENTS_MAXLEN).decode())

        # Halfway through the retries, the API restarts: the queue, the retry schedule and the logs are in Redis.
        wait_until(lambda: len(receiver.received("/flaky")) >= 3, 30, "first attempts of every event")
        api.process.terminate()
        api.process.wait(timeout=30)
        api = start_api(**SETTINGS)
        # The keys are in Redis: the first API's admin key and the teacher's work on the second.
        admin = httpx.Client(base_url=api.base_url, headers=admin.headers, timeout=10)
        teacher = httpx.Client(base_url=api.base_url, headers=teacher.headers, timeout=10)

        expected_ids = {f"msg_{class_id}_{entry_id}" for entry_id in ids}
        delivered = lambda: {r["headers"]["webhook-id"] for r in receiver.received("/flaky") if r["attempt"] >= 3}  # noqa: E731
        wait_until(lambda: delivered() == expected_ids, 60, "every event delivered to /flaky")
        dead = lambda: teacher.get(f"/v1/webhooks/{down['webhook_id']}/dead-letters").json()  # noqa: E731
        wait_until(lambda: len(dead()) == 3, 60, "every event dead-lettered for /down")

        for request in receiver.requests:
            secret = flaky["secret"] if request["path"] == "/flaky" else down["secret"]
            assert verify(secret, request), request["headers"]
            assert abs(int(request["headers"]["webhook-timestamp"]) - time.time()) < 120
        bodies = {r["headers"]["webhook-id"]: json.loads(r["body"]) for r in receiver.received("/flaky")}
        assert sorted(b["type"] for b in bodies.values()) == ["alert.ended", "alert.started", "alert.started"]
        assert {b["data"]["class_id"] for b in bodies.values()} == {class_id}
        assert len(receiver.received("/down")) == 3 * MAX_ATTEMPTS

        log = teacher.get(f"/v1/webhooks/{flaky['webhook_id']}/deliveries", params={"limit": 100}).json()
        by_message = defaultdict(list)
        for attempt in reversed(log["items"]):
            by_message[attempt["message_id"]].append(attempt)
        assert set(by_message) == expected_ids
        for attempts in by_message.values():
            outcomes = [(a["attempt"], a["outcome"], a["http_status"]) for a in attempts]
            assert outcomes[0] == (1, "retrying", 500) and outcomes[-1][1:] == ("delivered", 200), outcomes
            assert any(a["error"] and "no answer" in a["error"] for a in attempts), attempts  # the timeout
            assert all(a["next_attempt_at_ms"] > a["at_ms"] for a in attempts if a["outcome"] == "retrying")
        down_log = teacher.get(f"/v1/webhooks/{down['webhook_id']}/deliveries", params={"limit": 100}).json()["items"]
        assert sorted(a["outcome"] for a in down_log) == ["dead"] * 3 + ["retrying"] * 3 * (MAX_ATTEMPTS - 1)
        letters = dead()
        assert {letter["message"]["message_id"] for letter in letters} == expected_ids
        assert all(letter["last_attempt"]["attempt"] == MAX_ATTEMPTS for letter in letters)
    finally:
        admin.delete(f"/v1/webhooks/{flaky['webhook_id']}")
        admin.delete(f"/v1/classes/{class_id}")
        receiver.server.shutdown()
    assert teacher.get(f"/v1/webhooks/{flaky['webhook_id']}/deliveries").status_code == 404
    # Deleting the class deleted its subscription and its log.
    assert down["webhook_id"] not in {h["webhook_id"] for h in admin.get("/v1/webhooks").json()}
    assert admin.get(f"/v1/webhooks/{down['webhook_id']}/deliveries").status_code == 404


def test_a_receiver_that_never_answers_holds_back_no_other_subscription(start_api, redis_client) -> None:
    """A platform's thousands of classes share one outbox: messages to a receiver that times out, queued first, hold
    some delivery slots for their timeout (a few once it has failed), and a message to another subscription goes out
    at once."""
    receiver = Receiver()
    api = start_api(**SETTINGS)
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    silent_class, prompt_class = f"wh-{uuid.uuid4().hex[:6]}", f"wh-{uuid.uuid4().hex[:6]}"
    try:
        for class_id, path in ((silent_class, "/silent"), (prompt_class, "/prompt")):
            assert admin.post("/v1/classes", json={"class_id": class_id}).status_code == 201
            created = admin.post("/v1/webhooks", json={"url": f"{receiver.url}{path}", "class_id": class_id})
            assert created.status_code == 201, created.text
        backlog = 300  # 16 a second, one timeout a batch, before every batch waited for its slowest delivery: ~20 s
        now = int(time.time() * 1000)
        for i in range(backlog):
            event = AlertEvent(class_id=silent_class, kind="started", index="presence", value=0.3, threshold=0.5, t=now + i)
            redis_client.xadd(events_key(silent_class), event.to_fields(), maxlen=EVENTS_MAXLEN)
        wait_until(lambda: receiver.received("/silent"), 30, "the backlog queued, its first message being sent")

        event = AlertEvent(class_id=prompt_class, kind="started", index="presence", value=0.2, threshold=0.5, t=now + backlog)
        redis_client.xadd(events_key(prompt_class), event.to_fields(), maxlen=EVENTS_MAXLEN)
        queued_at = time.monotonic()
        wait_until(lambda: receiver.received("/prompt"), 60, "the other subscription's message delivered")
        waited_s = time.monotonic() - queued_at
        silent_at_once = len(receiver.received("/silent"))
    finally:
        for class_id in (silent_class, prompt_class):  # its subscription with it: the rest of the backlog is dropped
            admin.delete(f"/v1/classes/{class_id}")
        receiver.server.shutdown()

    # Fan-out each second, then one delivery: a few seconds on a busy machine, not the backlog's ~20 s.
    assert waited_s < 5, f"{waited_s:.1f} s behind the silent receiver's backlog"
    assert silent_at_once < backlog  # the backlog was still there when the other message went out


def test_a_former_teacher_no_longer_sees_the_class_webhook_nor_its_dead_letters(start_api, redis_client) -> None:
    """A class's subscription made by its teacher stops sending once the class is given to another teacher, but its
    former teacher still listed it, read its log and dead letters (the class's alerts) and deleted it: every route of
    it now asks, as the rest of the API does, whether the key may read the class now. Their subscription to all their
    classes stays theirs, without what it logged of that class; an admin sees everything still."""
    receiver = Receiver()
    api = start_api(**SETTINGS)
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    former_id, class_id = f"t-{uuid.uuid4().hex[:6]}", f"wh-{uuid.uuid4().hex[:6]}"
    assert admin.post("/v1/classes", json={"class_id": class_id, "teacher": former_id}).status_code == 201
    teachers = {}
    for teacher_id in (former_id, f"t-{uuid.uuid4().hex[:6]}"):
        key = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": teacher_id}).json()["api_key"]
        teachers[teacher_id] = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    former, successor_id = teachers[former_id], next(t for t in teachers if t != former_id)
    try:
        of_class = former.post("/v1/webhooks", json={"url": f"{receiver.url}/down", "class_id": class_id}).json()
        of_teacher = former.post("/v1/webhooks", json={"url": f"{receiver.url}/down"}).json()
        event = AlertEvent(class_id=class_id, kind="started", index="presence", value=0.3, threshold=0.5, t=int(time.time() * 1000))
        redis_client.xadd(events_key(class_id), event.to_fields(), maxlen=EVENTS_MAXLEN)
        dead = lambda hook: former.get(f"/v1/webhooks/{hook['webhook_id']}/dead-letters").json()  # noqa: E731
        wait_until(lambda: len(dead(of_class)) == len(dead(of_teacher)) == 1, 60, "the event dead-lettered for both")

        assert admin.patch(f"/v1/classes/{class_id}", json={"teacher": successor_id}).status_code == 200
        assert [h["webhook_id"] for h in former.get("/v1/webhooks").json()] == [of_teacher["webhook_id"]]
        for path in ("/deliveries", "/dead-letters"):
            assert former.get(f"/v1/webhooks/{of_class['webhook_id']}{path}").status_code == 404, path
        assert former.delete(f"/v1/webhooks/{of_class['webhook_id']}").status_code == 404
        assert dead(of_teacher) == []
        log = former.get(f"/v1/webhooks/{of_teacher['webhook_id']}/deliveries").json()
        assert (log["items"], log["total"]) == ([], 0)
        assert teachers[successor_id].get("/v1/webhooks").json() == []  # the former teacher's URLs are not theirs

        assert {h["webhook_id"] for h in admin.get("/v1/webhooks").json()} >= {of_class["webhook_id"], of_teacher["webhook_id"]}
        assert len(admin.get(f"/v1/webhooks/{of_class['webhook_id']}/dead-letters").json()) == 1
        assert len(admin.get(f"/v1/webhooks/{of_teacher['webhook_id']}/dead-letters").json()) == 1

        # Given back, the class is theirs to read again, and so is its subscription.
        assert admin.patch(f"/v1/classes/{class_id}", json={"teacher": former_id}).status_code == 200
        assert len(dead(of_class)) == len(dead(of_teacher)) == 1
    finally:
        admin.delete(f"/v1/webhooks/{of_teacher['webhook_id']}")
        admin.delete(f"/v1/classes/{class_id}")
        receiver.server.shutdown()


def test_a_teacher_pages_through_every_dead_letter_of_the_classes_they_read(start_api, redis_url) -> None:
    """The dead letters listed only the newest `limit` (500 at most) of up to LOG_LENGTH kept: the others could not be
    read, nor their number told. They are now read a page at a time by offset, with their total in the X-Total-Count
    header, the body still the list it was; paged once those of classes the key may not read are left out."""
    api = start_api(**SETTINGS)
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    teacher_id, class_id, given_class = f"t-{uuid.uuid4().hex[:6]}", f"wh-{uuid.uuid4().hex[:6]}", f"wh-{uuid.uuid4().hex[:6]}"
    for created, its_teacher in ((class_id, teacher_id), (given_class, f"t-{uuid.uuid4().hex[:6]}")):
        assert admin.post("/v1/classes", json={"class_id": created, "teacher": its_teacher}).status_code == 201
    key = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": teacher_id}).json()["api_key"]
    teacher = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    hook = teacher.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/alerts"})  # all the teacher's classes
    assert hook.status_code == 201, hook.text
    hook = hook.json()
    # Every third letter is of a class since given to another teacher: theirs to read no more.
    given_up = [Message(target=f"webhook:{hook['webhook_id']}", message_id=f"msg_{given_class if n % 3 == 2 else class_id}_1796430067000-{n}",
                        type="alert.started", body="{}") for n in range(10)]
    give_up(redis_url, given_up)
    readable = [message.message_id for message in reversed(given_up) if f"_{class_id}_" in message.message_id]
    path = f"/v1/webhooks/{hook['webhook_id']}/dead-letters"
    try:
        pages = read_pages(teacher, path, 3, len(readable))
        assert [letter["message"]["message_id"] for letters, _total in pages for letter in letters] == readable
        assert pages[-1][0] == []  # past the end
        assert {total for _letters, total in pages} == {str(len(readable))}
        assert admin.get(path, params={"limit": 1}).headers["X-Total-Count"] == str(len(given_up))
    finally:
        admin.delete(f"/v1/webhooks/{hook['webhook_id']}")
        for deleted in (class_id, given_class):
            admin.delete(f"/v1/classes/{deleted}")
