"""xAPI export against a real Ralph LRS (`ralph runserver`, filesystem backend, basic auth) started here, in its own
venv: the API (`python -m classpulse_api`) starts while the LRS is still down, so the first statements are retried;
once Ralph is up every statement arrives, read back through its GET /xAPI/statements, none with a student's emotion
and none with any emotion field for a presence-only class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from classpulse_api.dispatcher import Dispatcher
from classpulse_api.outbox import Message, Outbox
from classpulse_api.store import ClassStore
from classpulse_api.webhooks import WebhookSender, WebhookStore
from classpulse_api.xapi import TARGET, XapiExport, XapiSender, XapiStatements, extension
from classpulse_core.alerts import EVENTS_MAXLEN, AlertEvent, events_key
from classpulse_core.labels import EMOTIONS
from classpulse_store.registry import ClassRecord
from free_ports import free_port
from outbox_support import deliver_queued, give_up, read_pages

# The outbox, the classes and their lessons are the deployment's: on database 0 this API would also export whatever
# other tests left there, and other tests' APIs (with their own settings) could take this one's messages.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]

REPO = Path(__file__).resolve().parents[2]
RALPH_VENV = REPO / ".cache" / "ralph-venv"
LRS_USER, LRS_PASSWORD = "classpulse", "lrs-test-password"
XAPI = "https://w3id.org/classpulse/xapi"
SUMMARY_INTERVAL_S = 10


@pytest.fixture(scope="session")
def ralph() -> Path:
    """The `ralph` command, installed in .cache/ralph-venv from requirements-ralph.txt on first use."""
    command = RALPH_VENV / "bin" / "ralph"
    if not command.exists():
        subprocess.run([sys.executable, "-m", "venv", str(RALPH_VENV)], check=True)
        subprocess.run([str(RALPH_VENV / "bin" / "pip"), "install", "-q", "-r", str(REPO / "requirements-ralph.txt")], check=True)
    return command


@pytest.fixture
def start_lrs(ralph: Path, tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """`start_lrs(port)`: Ralph's LRS on that port (ralph_lrs.py: `ralph runserver --backend fs`, fixed to append),
    one user with write and read scopes; returns its xAPI URL."""
    processes: list[subprocess.Popen] = []

    def start(port: int) -> str:
        env = {**os.environ, "RALPH_AUTH_FILE": str(tmp_path / "auth.json"), "RALPH_APP_DIR": str(tmp_path / "ralph"),
               "RALPH_RUNSERVER_BACKEND": "fs"}
        subprocess.run([str(ralph), "auth", "-u", LRS_USER, "-p", LRS_PASSWORD, "-s", "statements/write", "-s", "statements/read",
                        "-M", "mailto:classpulse@example.org", "-w"], env=env, cwd=tmp_path, check=True, capture_output=True)
        log = (tmp_path / "ralph.log").open("w")
        (tmp_path / "statements").mkdir()
        process = subprocess.Popen(
            [str(ralph.parent / "python"), str(Path(__file__).with_name("ralph_lrs.py")), "127.0.0.1", str(port), str(tmp_path / "statements")],
            env=env, cwd=tmp_path, stdout=log, stderr=log,
        )
        processes.append(process)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/__heartbeat__", timeout=2).status_code == 200:
                    return f"http://127.0.0.1:{port}/xAPI"
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "ralph.log").read_text()
            assert time.monotonic() < deadline, "Ralph not up after 90 s"
            time.sleep(0.5)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def statements(lrs: str) -> list[dict]:
    response = httpx.get(f"{lrs}/statements", params={"limit": 500}, auth=(LRS_USER, LRS_PASSWORD),
                         headers={"X-Experience-API-Version": "1.0.3"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["statements"]


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.5)
    return value


def test_class_level_statements_reach_the_lrs_with_no_emotion_for_presence_only(start_api, start_lrs, redis_client) -> None:
    lrs_port = free_port()
    api = start_api(xapi_endpoint=f"http://127.0.0.1:{lrs_port}/xAPI", xapi_username=LRS_USER, xapi_password=LRS_PASSWORD,
                    xapi_summary_interval_s=str(SUMMARY_INTERVAL_S), public_url="https://classpulse.school.example",
                    webhook_retry_initial_s="0.5", webhook_retry_max_s="2", webhook_max_attempts="50")
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    emotions_class, presence_class = f"xe-{uuid.uuid4().hex[:6]}", f"xp-{uuid.uuid4().hex[:6]}"
    for class_id, emotions in ((emotions_class, True), (presence_class, False)):
        created = admin.post("/v1/classes", json={"class_id": class_id, "name": f"Class {class_id}", "expected_students": 12,
                                                  "emotion_enabled": emotions})
        assert created.status_code == 201
    lessons = {c: admin.post(f"/v1/classes/{c}/sessions", json={"name": "Fractions"}).json() for c in (emotions_class, presence_class)}
    now = int(time.time() * 1000)
    alerts = [(emotions_class, "mood_index", -0.5), (emotions_class, "presence", 0.3),
              (presence_class, "presence", 0.2), (presence_class, "attention_risk", 0.8)]
    for i, (class_id, index, value) in enumerate(alerts):
        event = AlertEvent(class_id=class_id, kind="started", index=index, value=value, threshold=0.5, t=now + i)
        redis_client.xadd(events_key(class_id), event.to_fields(), maxlen=EVENTS_MAXLEN)

    # The LRS is down: statements are retried, and the log says so.
    log = lambda: admin.get("/v1/xapi/deliveries", params={"limit": 500}).json()["items"]  # noqa: E731
    wait_until(lambda: any(a["outcome"] == "retrying" and a["error"] for a in log()), 30, "a failed attempt logged")
    lrs = start_lrs(lrs_port)

    def summarised() -> bool:  # one whole interval of each lesson, and the lag after it, summarised and delivered
        delivered = [a["message_id"] for a in log() if a["outcome"] == "delivered"]
        return all(any(m.startswith(f"xapi_summary_{c}_") for m in delivered) for c in lessons)

    wait_until(summarised, 60, "an interval of each lesson summarised")
    for class_id, lesson in lessons.items():
        assert admin.post(f"/v1/classes/{class_id}/sessions/{lesson['session_id']}/end").status_code == 200

    def arrived() -> list[dict]:
        found = [s for s in statements(lrs) if s["actor"]["account"]["name"] in lessons]
        verbs = {(s["actor"]["account"]["name"], s["verb"]["id"].rsplit("/", 1)[1]) for s in found}
        wanted = {(c, v) for c in lessons for v in ("initialized", "terminated", "summarized", "raised-alert")}
        return found if wanted <= verbs else []

    found = wait_until(arrived, 90, "every kind of statement in Ralph")
    by_class = {c: [s for s in found if s["actor"]["account"]["name"] == c] for c in lessons}
    assert len({s["id"] for s in found}) == len(found)  # retried, yet stored once each

    for statement in found:
        assert statement["actor"]["objectType"] == "Group" and "member" not in statement["actor"]
        assert statement["actor"]["account"]["homePage"] == "https://classpulse.school.example"
        text = json.dumps(statement).lower()
        assert not any(emotion in text for emotion in EMOTIONS), statement  # no emotion, of a student or the class
    presence_only = by_class[presence_class]
    for statement in presence_only:
        keys = {*statement.get("result", {}).get("extensions", {}), *statement["context"]["extensions"]}
        emotion_fields = ("mood-index", "attention-risk", "classified-faces", "classified-share")
        assert not {f"{XAPI}/extensions/{name}" for name in emotion_fields} & keys, statement
        assert statement["context"]["extensions"][f"{XAPI}/extensions/emotion-enabled"] is False
    assert [s["result"]["extensions"][f"{XAPI}/extensions/alert-index"] for s in presence_only
            if s["verb"]["id"].endswith("raised-alert")] == ["presence"]  # the attention-risk alert stayed home
    summary = next(s for s in by_class[emotions_class] if s["verb"]["id"] == f"{XAPI}/verbs/summarized")
    assert {f"{XAPI}/extensions/mood-index", f"{XAPI}/extensions/presence"} <= set(summary["result"]["extensions"])
    read_from = summary["result"]["extensions"]  # no frame was sent: no face seen, none read, no share of them
    assert (read_from[f"{XAPI}/extensions/classified-faces"], read_from[f"{XAPI}/extensions/classified-share"]) == (0, None)
    assert summary["object"]["id"] == f"https://classpulse.school.example/classes/{emotions_class}/lessons/{lessons[emotions_class]['session_id']}"
    ended = next(s for s in presence_only if s["verb"]["id"].endswith("terminated"))
    assert ended["result"]["extensions"][f"{XAPI}/extensions/expected-students"] == 12

    cursors = [field.decode() for field in redis_client.hkeys("{outbox}:cursors")]
    assert not [field for field in cursors if field.startswith("summary:") and field.split(":")[1] in lessons]  # ended lessons

    def every_retried_delivered() -> bool:  # soon, not necessarily before the last kind of statement arrived
        attempts = [a for a in log() if any(f"_{class_id}_" in a["message_id"] for class_id in lessons)]
        retried = {a["message_id"] for a in attempts if a["outcome"] == "retrying"}
        delivered = {a["message_id"] for a in attempts if a["outcome"] == "delivered"}
        return bool(delivered) and retried <= delivered

    wait_until(every_retried_delivered, 30, "every statement retried while the LRS was down delivered")
    for class_id in lessons:
        admin.delete(f"/v1/classes/{class_id}")


def test_what_was_queued_before_a_class_went_presence_only_or_was_deleted_leaves_as_the_class_is_now(
    start_api, start_lrs, redis_client
) -> None:
    """Statements were built when queued and sent as built: while the LRS was down, a lesson's end with its mood index,
    an alert on the mood index and everything of a class deleted since were all sent once it was back, after the class
    was switched to presence-only (the privacy page: "off from that moment at every stage, whatever is in flight") and
    after the other class was deleted. Now a statement leaves as its class is when it is sent: without its emotion
    fields, not at all for an alert on an emotion index or a class that is gone."""
    lrs_port = free_port()
    api = start_api(xapi_endpoint=f"http://127.0.0.1:{lrs_port}/xAPI", xapi_username=LRS_USER, xapi_password=LRS_PASSWORD,
                    public_url="https://classpulse.school.example",
                    webhook_retry_initial_s="0.5", webhook_retry_max_s="1", webhook_max_attempts="50")
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    switched, deleted = f"xs-{uuid.uuid4().hex[:6]}", f"xd-{uuid.uuid4().hex[:6]}"
    for class_id in (switched, deleted):
        created = admin.post("/v1/classes", json={"class_id": class_id, "name": f"Class {class_id}", "expected_students": 12})
        assert created.status_code == 201
    lessons = {c: admin.post(f"/v1/classes/{c}/sessions", json={"name": "Fractions"}).json() for c in (switched, deleted)}
    now = int(time.time() * 1000)
    for i, (class_id, index, value) in enumerate([(switched, "mood_index", -0.5), (switched, "presence", 0.3), (deleted, "presence", 0.2)]):
        event = AlertEvent(class_id=class_id, kind="started", index=index, value=value, threshold=0.5, t=now + i)
        redis_client.xadd(events_key(class_id), event.to_fields(), maxlen=EVENTS_MAXLEN)
    assert admin.post(f"/v1/classes/{switched}/sessions/{lessons[switched]['session_id']}/end").status_code == 200

    # The LRS is down: every statement is queued, built while the class ran with emotions, and retried.
    log = lambda: admin.get("/v1/xapi/deliveries", params={"limit": 500}).json()["items"]  # noqa: E731
    queued = {f"xapi_alert_{switched}_", f"xapi_alert_{deleted}_", f"xapi_lesson.started_{deleted}_", f"xapi_lesson.ended_{switched}_"}
    wait_until(lambda: all(any(a["message_id"].startswith(m) and a["outcome"] == "retrying" for a in log()) for m in queued),
               30, "each statement tried once while the LRS was down")
    assert admin.patch(f"/v1/classes/{switched}", json={"emotion_enabled": False}).status_code == 200
    assert admin.delete(f"/v1/classes/{deleted}").status_code == 204
    lrs = start_lrs(lrs_port)

    def settled() -> bool:  # nothing queued nor waiting for a retry, the lesson's end in the LRS
        idle = redis_client.xlen("{outbox}:queue") == 0 and redis_client.zcard("{outbox}:retry") == 0
        return idle and any(s["verb"]["id"].endswith("terminated") for s in statements(lrs))

    wait_until(settled, 60, "every statement sent or dropped")
    sent = statements(lrs)
    assert not [s for s in sent if s["actor"]["account"]["name"] == deleted]
    mine = [s for s in sent if s["actor"]["account"]["name"] == switched]
    assert sorted(s["verb"]["id"].rsplit("/", 1)[1] for s in mine) == ["initialized", "raised-alert", "terminated"]
    for statement in mine:
        assert statement["context"]["extensions"][f"{XAPI}/extensions/emotion-enabled"] is False, statement
        emotion_fields = ("mood-index", "attention-risk", "classified-faces", "classified-share")
        assert not {f"{XAPI}/extensions/{name}" for name in emotion_fields} & set(statement["result"].get("extensions", {})), statement
    (alert,) = [s for s in mine if s["verb"]["id"].endswith("raised-alert")]
    assert alert["result"]["extensions"][f"{XAPI}/extensions/alert-index"] == "presence"
    ended = next(s for s in mine if s["verb"]["id"].endswith("terminated"))
    assert ended["result"]["extensions"][f"{XAPI}/extensions/expected-students"] == 12  # its other numbers still sent
    assert 'classpulse_outbox_attempts_total{outcome="dropped",target="xapi"} 3.0' in httpx.get(f"{api.base_url}/metrics").text
    admin.delete(f"/v1/classes/{switched}")


@pytest.mark.anyio
async def test_a_statement_the_lrs_refuses_is_dead_lettered_at_once_with_its_answer(start_lrs, redis_url, class_id) -> None:
    """A statement the LRS refuses for good (here Ralph's 409: it holds another statement under that id, as after a
    Redis restored from an older backup rebuilt a statement with other numbers) was retried like an LRS that is down,
    CLASSPULSE_WEBHOOK_MAX_ATTEMPTS times over an hour, its answer unrecorded, and meanwhile the LRS counted as failing:
    its every other statement held to a few at a time. It is now dead-lettered at its first answer, with that answer."""
    lrs = start_lrs(free_port())
    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
        classes = ClassStore(client, ["1s"])
        record = ClassRecord(class_id=class_id, name="Fractions", expected_students=12)
        await classes.create(record)
        built = XapiStatements("https://classpulse.school.example", True)
        export = XapiExport(built, None, XapiSender(lrs, LRS_USER, SecretStr(LRS_PASSWORD), 5.0), 300_000)  # type: ignore[arg-type]  # no summaries
        dispatcher = Dispatcher(client, Outbox(client), WebhookStore(client), classes, WebhookSender([], ["https"], 5.0), 8, 60.0, 60.0, export)
        await dispatcher.outbox.ensure_group()
        alert = AlertEvent(event_id="1796430067000-0", class_id=class_id, kind="started", index="presence", value=0.3,
                           threshold=0.5, t=1796430067000)
        message = built.alert(record, alert)
        assert message is not None
        held = json.loads(message.body)
        held["result"]["extensions"][extension("alert_value")] = 0.2
        stored = await export.sender.client.put(f"{lrs}/statements", params={"statementId": held["id"]}, json=held)
        assert stored.status_code == 204, stored.text
        await dispatcher.outbox.enqueue(message)

        try:
            await deliver_queued(dispatcher)
        finally:
            await export.sender.aclose()
        attempts, _total = await dispatcher.outbox.attempts(TARGET, 0, 500)
        dead, _total = await dispatcher.outbox.dead_letters(TARGET, 0, 500)
    (attempt,) = [attempt for attempt in attempts if attempt.message_id == message.message_id]
    assert (attempt.outcome, attempt.attempt, attempt.http_status) == ("dead", 1, 409)
    assert attempt.error == 'the LRS refused the statement: {"detail":"A different statement already exists with the same ID"}'
    assert [letter["message"]["message_id"] for letter in dead] == [message.message_id]
    assert TARGET not in dispatcher._failing  # the LRS answered: its other statements are not held back


@pytest.mark.anyio
async def test_two_deployments_sharing_an_lrs_and_a_class_id_both_have_their_statements_stored(start_lrs) -> None:
    """Two ClassPulse deployments sending to one LRS, each with a class of the same id, gave the same statement id to
    their different statements of it (an alert with the same event id): the second was refused (409) and
    dead-lettered. The id now names the deployment too, and each one's retry still PUTs the statement the LRS has."""
    lrs = start_lrs(free_port())
    record = ClassRecord(class_id="math-101", name="Algebra", expected_students=12)
    alert = AlertEvent(event_id="1796430067000-0", class_id="math-101", kind="started", index="presence", value=0.3,
                       threshold=0.5, t=1796430067000)
    deployments = ["https://north.school.example", "https://south.school.example"]
    sender = XapiSender(lrs, LRS_USER, SecretStr(LRS_PASSWORD), 5.0)
    try:
        results = []
        for deployment in deployments:
            message = XapiStatements(deployment, True).alert(record, alert)
            assert message is not None
            results += [await sender.send(message), await sender.send(message)]  # sent, and retried
    finally:
        await sender.aclose()
    assert [(result.ok, result.http_status) for result in results] == [(True, 204)] * 4, results
    stored = [s for s in statements(lrs) if s["actor"]["account"]["name"] == "math-101"]
    assert sorted(s["actor"]["account"]["homePage"] for s in stored) == deployments


def test_an_admin_reads_the_statements_given_up_and_sends_them_again(start_api, start_lrs, redis_client) -> None:
    """xAPI dead letters could be neither read nor sent again through the API: a statement given up while the LRS was
    down (or refused) stayed in Redis for good, its reason in the delivery log only. An admin now lists them, each with
    its last attempt, and puts one or all of them back into the outbox once the cause is fixed."""
    lrs_port = free_port()
    api = start_api(xapi_endpoint=f"http://127.0.0.1:{lrs_port}/xAPI", xapi_username=LRS_USER, xapi_password=LRS_PASSWORD,
                    public_url="https://classpulse.school.example", webhook_max_attempts="1")
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    class_id = f"xr-{uuid.uuid4().hex[:6]}"
    assert admin.post("/v1/classes", json={"class_id": class_id, "teacher": "t-xr"}).status_code == 201
    assert admin.post(f"/v1/classes/{class_id}/sessions", json={"name": "Fractions"}).status_code == 201
    event = AlertEvent(class_id=class_id, kind="started", index="presence", value=0.3, threshold=0.5, t=int(time.time() * 1000))
    redis_client.xadd(events_key(class_id), event.to_fields(), maxlen=EVENTS_MAXLEN)

    def mine() -> list[dict]:
        listed = admin.get("/v1/xapi/dead-letters", params={"limit": 500})
        assert listed.status_code == 200, listed.text
        return [letter for letter in listed.json() if f"_{class_id}_" in letter["message"]["message_id"]]

    # The LRS is down and a statement has one attempt: both are given up, with why.
    letters = wait_until(lambda: len(found := mine()) == 2 and found, 30, "both statements dead-lettered")
    assert {letter["message"]["type"] for letter in letters} == {"lesson.started", "alert.started"}
    for letter in letters:
        assert letter["last_attempt"]["outcome"] == "dead" and letter["last_attempt"]["error"] == "ConnectError reaching the LRS"
    teacher_key = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": "t-xr"}).json()["api_key"]
    teacher = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {teacher_key}"}, timeout=10)
    assert teacher.get("/v1/xapi/dead-letters").status_code == 403
    assert teacher.post("/v1/xapi/dead-letters/replay").status_code == 403
    assert admin.post("/v1/xapi/dead-letters/xapi_alert_nothing_0-0/replay").status_code == 404

    lrs = start_lrs(lrs_port)
    started = next(letter["message"]["message_id"] for letter in letters if letter["message"]["type"] == "lesson.started")
    assert admin.post(f"/v1/xapi/dead-letters/{started}/replay").json() == {"replayed": 1}
    verbs = lambda: sorted(s["verb"]["id"].rsplit("/", 1)[1] for s in statements(lrs) if s["actor"]["account"]["name"] == class_id)  # noqa: E731
    wait_until(lambda: verbs() == ["initialized"], 30, "the replayed statement in Ralph")
    assert [letter["message"]["type"] for letter in mine()] == ["alert.started"]
    assert admin.post(f"/v1/xapi/dead-letters/{started}/replay").status_code == 404  # replayed once

    waiting = len(admin.get("/v1/xapi/dead-letters", params={"limit": 500}).json())  # other tests' too: the LRS's all
    assert admin.post("/v1/xapi/dead-letters/replay").json() == {"replayed": waiting}
    wait_until(lambda: verbs() == ["initialized", "raised-alert"], 30, "every replayed statement in Ralph")
    assert mine() == []
    admin.delete(f"/v1/classes/{class_id}")


def test_an_admin_cannot_replay_dead_letters_while_the_export_is_off(start_api, redis_url) -> None:
    """With the export off (no CLASSPULSE_XAPI_ENDPOINT) a replay put the dead letters back into the outbox all the
    same, answered as replayed, and the delivery dropped them (nothing to send them to): lost for good. It is now
    refused, and the letters wait for the export to be on again."""
    record = ClassRecord(class_id=f"xo-{uuid.uuid4().hex[:6]}", expected_students=12)
    alert = AlertEvent(event_id="1796430067000-0", class_id=record.class_id, kind="started", index="presence", value=0.3,
                       threshold=0.5, t=1796430067000)
    message = XapiStatements("https://classpulse.school.example", True).alert(record, alert)
    assert message is not None
    give_up(redis_url, [message])
    api = start_api(public_url="https://classpulse.school.example")
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    for replay in ("/v1/xapi/dead-letters/replay", f"/v1/xapi/dead-letters/{message.message_id}/replay"):
        refused = admin.post(replay)
        assert refused.status_code == 409, refused.text
        assert "the xAPI export is off" in refused.json()["error"]["message"]
    listed = admin.get("/v1/xapi/dead-letters", params={"limit": 500}).json()
    assert [letter["message"]["message_id"] for letter in listed] == [message.message_id]


def test_an_admin_pages_through_every_dead_letter(start_api, redis_url) -> None:
    """The dead letters listed only the newest `limit` (500 at most) of up to LOG_LENGTH kept: an admin could not read
    the others, nor tell how many there were. They are now read a page at a time by offset, with their total in the
    X-Total-Count header, the body still the list it was."""
    run = uuid.uuid4().hex[:6]
    given_up = [Message(target=TARGET, message_id=f"xp_{run}_{n}", type="alert.started", body="{}") for n in range(7)]
    give_up(redis_url, given_up)
    api = start_api(public_url="https://classpulse.school.example")  # the export off: nothing is sent meanwhile
    admin = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=10)
    everyone = [letter["message"]["message_id"] for letter in admin.get("/v1/xapi/dead-letters", params={"limit": 500}).json()]
    assert everyone[: len(given_up)] == [message.message_id for message in reversed(given_up)]  # other tests' after

    pages = read_pages(admin, "/v1/xapi/dead-letters", 3, len(everyone))
    assert [letter["message"]["message_id"] for letters, _total in pages for letter in letters] == everyone
    assert pages[-1][0] == []  # past the end
    assert {total for _letters, total in pages} == {str(len(everyone))}
