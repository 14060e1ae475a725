"""xAPI export: what happened in a class, as statements sent to a Learning Record Store (CLASSPULSE_XAPI_ENDPOINT,
HTTP basic auth), through the outbox (retried, dead-lettered, logged like webhooks).

Every statement is about the class, never a student: its actor is the class as an identified xAPI Group (an account
on this ClassPulse, CLASSPULSE_PUBLIC_URL, named by the class id), with no member. Statements:

- lesson started / ended (ADL's `initialized` / `terminated`) on the lesson's activity; the ended one carries the
  lesson's indices;
- the indices of each CLASSPULSE_XAPI_SUMMARY_INTERVAL_S of a running lesson (`summarized`, ClassPulse's verb);
- alerts raised and cleared (ClassPulse's verbs), with the index, its value and threshold.

No verb of the xAPI registry covers affect, so ClassPulse's verbs and extensions are IRIs under XAPI_IRI (listed in
docs/integrations.md). Emotions leave only as class-level indices (mood, attention at risk), and not at all for a
presence-only class: its statements carry no emotion field, and alerts on emotion-derived indices are not sent.
Each statement's id is derived from the deployment (its public URL) and its outbox message id (UUID 5): a retry PUTs the
same statement again, which an LRS accepts as the one it already has, and another ClassPulse sending to the same LRS
(its classes' ids may be this one's) names its statements apart. A statement leaves as its class is when it is sent,
not when it was queued (`XapiStatements.as_sent_now`): none for a class deleted since, none of an alert on an emotion
index and no emotion field for a class presence-only since.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from classpulse_api import views
from classpulse_api.outbox import Message
from classpulse_api.series import SeriesReader
from classpulse_api.store import Session
from classpulse_api.timeparams import iso
from classpulse_api.webhooks import SendResult
from classpulse_core.alerts import EMOTION_INDICES, AlertEvent
from classpulse_core.share_correction import ShareCorrection
from classpulse_store.registry import ClassRecord

XAPI_IRI = "https://w3id.org/classpulse/xapi"
XAPI_VERSION = "1.0.3"
TARGET = "xapi"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, XAPI_IRI)
REFUSED_STATUSES = frozenset({400, 409, 413, 422})
"""What an LRS answers a statement it will never store (xAPI 1.0.3: malformed, another statement under its id, too
large; 422: the validation of an LRS built on FastAPI, Ralph's): no retry changes it. Any other failure (a password or
endpoint wrong, a 5xx, no answer) is the LRS's or its settings' and passes: retried."""
REFUSAL_DETAIL_CHARS = 300

VERBS = {
    "lesson.started": ("http://adlnet.gov/expapi/verbs/initialized", "started"),
    "lesson.ended": ("http://adlnet.gov/expapi/verbs/terminated", "ended"),
    "summary": (f"{XAPI_IRI}/verbs/summarized", "summarized"),
    "alert.started": (f"{XAPI_IRI}/verbs/raised-alert", "raised an alert"),
    "alert.ended": (f"{XAPI_IRI}/verbs/cleared-alert", "cleared an alert"),
}
LESSON_TYPE = "http://adlnet.gov/expapi/activities/meeting"
CLASS_TYPE = f"{XAPI_IRI}/activities/class"
SUMMARY_FIELDS = ("frames", "faces", "on_camera", "presence")
CLASSIFIED_FIELDS = ("classified_faces", "classified_share")
"""How many of the faces the emotion indices were read from: sent beside them, left out with them."""


def extension(name: str) -> str:
    return f"{XAPI_IRI}/extensions/{name.replace('_', '-')}"


EMOTION_EXTENSIONS = frozenset(extension(name) for name in EMOTION_INDICES + CLASSIFIED_FIELDS)


def statement_class(message: Message) -> str:
    """The class a statement is about: its actor's account."""
    class_id: str = json.loads(message.body)["actor"]["account"]["name"]
    return class_id


class XapiStatements:
    """Builds the statements of a deployment (its public URL names the classes' accounts and activities, and is the
    UUID 5 namespace of its statements' ids)."""

    def __init__(self, public_url: str, emotion_allowed: bool) -> None:
        self.public_url = public_url.rstrip("/")
        self.emotion_allowed = emotion_allowed
        self.statement_ids = uuid.uuid5(_ID_NAMESPACE, self.public_url)

    def emotions_on(self, record: ClassRecord) -> bool:
        return self.emotion_allowed and record.emotion_enabled

    def _message(self, kind: str, message_id: str, record: ClassRecord, at_ms: int, session_id: str | None,
                 result: Mapping[str, object], context: Mapping[str, object] | None = None) -> Message:
        verb, display = VERBS[kind]
        activity = f"{self.public_url}/classes/{record.class_id}"
        target = {"objectType": "Activity", "id": activity, "definition": {"type": CLASS_TYPE, "name": {"en": record.name or record.class_id}}}
        if session_id:
            target = {"objectType": "Activity", "id": f"{activity}/lessons/{session_id}", "definition": {"type": LESSON_TYPE}}
        statement = {
            "id": str(uuid.uuid5(self.statement_ids, message_id)),
            "actor": {
                "objectType": "Group",
                "name": record.name or record.class_id,
                "account": {"homePage": self.public_url, "name": record.class_id},
            },
            "verb": {"id": verb, "display": {"en": display}},
            "object": target,
            "timestamp": iso(at_ms),
            "result": {"extensions": {extension(name): value for name, value in result.items()}},
            "context": {
                "platform": "ClassPulse",
                "extensions": {
                    extension("emotion_enabled"): self.emotions_on(record),
                    **{extension(name): value for name, value in (context or {}).items()},
                },
            },
        }
        return Message(target=TARGET, message_id=message_id, type=kind, body=json.dumps(statement))

    def as_sent_now(self, message: Message, record: ClassRecord | None) -> Message | None:
        """The statement as its class (`record`, None: deleted) allows now: a retried statement may have been built
        before the class went presence-only, an alert on an emotion index or a lesson's emotion indices that must not
        leave any more. None: nothing of it may leave."""
        if record is None:
            return None
        if self.emotions_on(record):
            return message
        statement = json.loads(message.body)
        results: dict[str, object] = statement["result"]["extensions"]
        if results.get(extension("alert_index")) in EMOTION_INDICES:
            return None
        statement["result"]["extensions"] = {name: value for name, value in results.items() if name not in EMOTION_EXTENSIONS}
        statement["context"]["extensions"][extension("emotion_enabled")] = False
        return message.model_copy(update={"body": json.dumps(statement)})

    def _indices(self, record: ClassRecord, indices: dict[str, object]) -> dict[str, object]:
        names = SUMMARY_FIELDS + (EMOTION_INDICES + CLASSIFIED_FIELDS if self.emotions_on(record) else ())
        return {"expected_students": record.expected_students, **{name: indices[name] for name in names}}

    def alert(self, record: ClassRecord, event: AlertEvent) -> Message | None:
        if not event.shown_for(self.emotions_on(record)):
            return None
        result = {"alert_index": event.index, "alert_value": event.value, "alert_threshold": event.threshold}
        return self._message(f"alert.{event.kind}", f"xapi_alert_{record.class_id}_{event.event_id}", record, event.t, None, result)

    def lesson(self, record: ClassRecord, session: Session, ended: bool, indices: dict[str, object] | None) -> Message:
        kind = "lesson.ended" if ended else "lesson.started"
        at_ms = session.ended_at_ms if ended and session.ended_at_ms else session.started_at_ms
        result = self._indices(record, indices) if indices is not None else {}
        message_id = f"xapi_{kind}_{record.class_id}_{session.session_id}"
        return self._message(kind, message_id, record, at_ms, session.session_id, result, {"lesson_name": session.name})

    def summary(self, record: ClassRecord, session: Session, start_ms: int, end_ms: int, indices: dict[str, object]) -> Message:
        message_id = f"xapi_summary_{record.class_id}_{session.session_id}_{start_ms}"
        context = {"interval_start": iso(start_ms), "interval_end": iso(end_ms)}
        return self._message("summary", message_id, record, end_ms, session.session_id, self._indices(record, indices), context)


class LessonIndices:
    """The indices of a class over a range, as the API's summary computes them (corrected shares)."""

    def __init__(self, reader: SeriesReader, correction: ShareCorrection) -> None:
        self.reader = reader
        self.correction = correction

    async def over(self, record: ClassRecord, start_ms: int, end_ms: int) -> dict[str, object]:
        """Over the seconds from `start_ms` to `end_ms`, both included."""
        totals = await self.reader.totals(record.class_id, start_ms, end_ms)
        return views.indices_of(self.correction, totals, record)

    async def interval(self, record: ClassRecord, start_ms: int, interval_ms: int) -> dict[str, object]:
        """Over one of a lesson's back-to-back intervals: it ends a millisecond before the next one starts, so no
        second is summed in two of them."""
        return await self.over(record, start_ms, start_ms + interval_ms - 1)


class XapiSender:
    """PUTs a statement by its id: the same statement sent again is accepted as the one the LRS already has."""

    def __init__(self, endpoint: str, username: str, password: SecretStr, timeout_s: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False, auth=(username, password.get_secret_value()),
            headers={"X-Experience-API-Version": XAPI_VERSION, "User-Agent": "ClassPulse-xAPI/1"},
        )

    async def send(self, message: Message) -> SendResult:
        statement_id = json.loads(message.body)["id"]
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole request, as a webhook's (WebhookSender.send)
                response = await self.client.put(
                    f"{self.endpoint}/statements", params={"statementId": statement_id}, content=message.body,
                    headers={"Content-Type": "application/json"},
                )
        except (httpx.TimeoutException, TimeoutError):
            return SendResult(ok=False, error="no answer from the LRS in time")
        except httpx.HTTPError as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__} reaching the LRS")
        if response.status_code in REFUSED_STATUSES:
            return SendResult(
                ok=False, http_status=response.status_code, refused=True,
                error=f"the LRS refused the statement: {response.text[:REFUSAL_DETAIL_CHARS]}",
            )
        return SendResult(ok=response.is_success, http_status=response.status_code)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True)
class XapiExport:
    statements: XapiStatements
    indices: LessonIndices
    sender: XapiSender
    summary_interval_ms: int
