"""What the platform integrations send, checked without a server: Standard Webhooks signatures, and xAPI statements
that carry no emotion for a presence-only class."""

from __future__ import annotations

import json

import pytest

from classpulse_api.store import Session
from classpulse_api.webhooks import signature
from classpulse_api.xapi import XAPI_IRI, XapiStatements
from classpulse_core.alerts import AlertEvent
from classpulse_core.labels import EMOTIONS
from classpulse_store.registry import ClassRecord

pytestmark = pytest.mark.unit

INDICES = {"frames": 40, "faces": 300, "on_camera": 7.5, "presence": 0.62, "mood_index": 0.1, "attention_risk": 0.45,
           "classified_faces": 200, "classified_share": 2 / 3, "emotions": {name: 1 / 7 for name in EMOTIONS},
           "dominant_emotion": "neutral"}


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The example of the Standard Webhooks specification's reference libraries.
    body = b'{"test": 2432232314}'
    signed = signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("emotion_enabled", [True, False])
def test_statements_carry_class_indices_and_never_an_emotion(emotion_enabled: bool) -> None:
    record = ClassRecord(class_id="c1", name="Algebra", expected_students=12, emotion_enabled=emotion_enabled)
    lesson = Session(session_id="s1", class_id="c1", name="Fractions", started_at_ms=1_000_000, ended_at_ms=2_000_000)
    statements = XapiStatements("https://cp.example/", emotion_allowed=True)
    messages = [
        statements.lesson(record, lesson, ended=True, indices=INDICES),
        statements.summary(record, lesson, 1_000_000, 1_300_000, INDICES),
        statements.alert(record, AlertEvent(event_id="1-0", class_id="c1", kind="started", index="presence", value=0.3, threshold=0.5, t=1)),
    ]
    for message in messages:
        statement = json.loads(message.body)
        assert not any(name in message.body for name in EMOTIONS)
        extensions = statement["result"]["extensions"]
        assert (f"{XAPI_IRI}/extensions/mood-index" in extensions) is (emotion_enabled and message.type != "alert.started")
        # The faces the emotion indices were read from go with them: a platform can tell a lesson read throughout
        # from one read over part of it.
        with_indices = emotion_enabled and message.type != "alert.started"
        read_from = {name: extensions.get(f"{XAPI_IRI}/extensions/{name}") for name in ("classified-faces", "classified-share")}
        assert read_from == ({"classified-faces": 200, "classified-share": 2 / 3} if with_indices else dict.fromkeys(read_from))
        assert statement["actor"] == {"objectType": "Group", "name": "Algebra", "account": {"homePage": "https://cp.example", "name": "c1"}}
    emotion_alert = AlertEvent(event_id="2-0", class_id="c1", kind="started", index="attention_risk", value=0.8, threshold=0.6, t=2)
    assert (statements.alert(record, emotion_alert) is None) is not emotion_enabled
    # A presence-only deployment overrides every class.
    assert XapiStatements("https://cp.example", emotion_allowed=False).alert(record, emotion_alert) is None


def test_a_retry_sends_the_same_statement() -> None:
    record = ClassRecord(class_id="c1")
    lesson = Session(session_id="s1", class_id="c1", started_at_ms=1_000_000)
    statements = XapiStatements("https://cp.example", emotion_allowed=True)
    first, again = (statements.lesson(record, lesson, ended=False, indices=None) for _ in range(2))
    assert first.body == again.body and first.message_id == again.message_id


def test_two_deployments_name_the_same_statement_of_a_class_apart() -> None:
    """Statement ids were derived from the message id alone: two ClassPulse deployments sending to one LRS, each with a
    class `c1`, gave their lessons' and alerts' statements the same id, and the LRS refused the second one's (409)."""
    record = ClassRecord(class_id="c1")
    event = AlertEvent(event_id="1-0", class_id="c1", kind="started", index="presence", value=0.3, threshold=0.5, t=1)
    north, south = (XapiStatements(url, emotion_allowed=True).alert(record, event) for url in ("https://north.example", "https://south.example"))
    assert north is not None and south is not None
    assert json.loads(north.body)["id"] != json.loads(south.body)["id"]
    again = XapiStatements("https://north.example/", emotion_allowed=True).alert(record, event)
    assert again is not None and json.loads(again.body)["id"] == json.loads(north.body)["id"]
