"""Alerts: when a class index stays past its threshold for a while, record an event and let live listeners know.

Evaluated on event time (the newest capture time seen for the class), over the latest `window_s` of raw sums, at most
every `interval_s` per class. A rule's state (pending since / active) lives in Redis, so a restarted or rebalanced
aggregator carries on where the last one stopped. Events go to the class's capped stream `events:{class}`, which the
API's live stream reads.
"""

from __future__ import annotations

import logging
from typing import Literal, cast

import redis
from pydantic import BaseModel, Field

from classpulse_core import indices
from classpulse_core.alerts import EVENTS_MAXLEN, AlertEvent, events_key
from classpulse_core.timeseries import RAW_RESOLUTION, parse_ranges, range_commands
from classpulse_store.classkeys import alert_state_key
from classpulse_store.redis_clients import redis_fields
from classpulse_store.registry import ClassDirectory, ClassRecord

log = logging.getLogger(__name__)


class AlertRule(BaseModel):
    index: Literal["attention_risk", "mood_index", "presence"]
    direction: Literal["above", "below"]
    threshold: float
    for_s: int = Field(30, ge=1, description="how long the index must stay past the threshold")

    @property
    def name(self) -> str:
        return f"{self.index}_{self.direction}_{self.threshold:g}"

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold


DEFAULT_RULES = (
    AlertRule(index="attention_risk", direction="above", threshold=0.6, for_s=30),
    AlertRule(index="mood_index", direction="below", threshold=-0.3, for_s=60),
    AlertRule(index="presence", direction="below", threshold=0.5, for_s=30),
)


class AlertEvaluator:
    def __init__(
        self, client: redis.Redis, classes: ClassDirectory, rules: tuple[AlertRule, ...], window_s: int = 10, interval_s: float = 5.0
    ) -> None:
        self.client = client
        self.classes = classes
        self.rules = rules
        self.window_ms = window_s * 1000
        self.interval_ms = int(interval_s * 1000)
        self._last_evaluated: dict[str, int] = {}

    def observe(self, latest_capture_ms: dict[str, int]) -> list[AlertEvent]:
        """Evaluate the classes of a batch whose turn has come; returns the events recorded."""
        events: list[AlertEvent] = []
        for class_id, at_ms in latest_capture_ms.items():
            if at_ms - self._last_evaluated.get(class_id, 0) < self.interval_ms:
                continue
            self._last_evaluated[class_id] = at_ms
            record = self.classes.get(class_id)
            if record is not None:
                events += self._evaluate(record, at_ms)
        return events

    def current_indices(self, record: ClassRecord, at_ms: int) -> dict[str, float | None]:
        # The window's whole seconds up to the one at_ms falls in: samples are stamped at their second's start.
        last_second = at_ms - at_ms % 1000
        pipe = self.client.pipeline(transaction=False)
        for command in range_commands(
            record.class_id, RAW_RESOLUTION, last_second - self.window_ms + 1000, last_second, 2, self.window_ms * 2
        ):
            pipe.execute_command(*command)
        sums = {metric: sum(v for _, v in samples) for metric, samples in parse_ranges(pipe.execute(raise_on_error=False)).items()}
        shares = indices.emotion_shares(sums) if record.emotion_enabled else None
        # Over the whole window, as the live view reads it: cameras that all went off read 0, not "no data".
        present = indices.presence(sums, record.expected_students, seconds=self.window_ms / 1000)
        return {
            "presence": present,
            "mood_index": indices.mood_index(shares),
            "attention_risk": indices.attention_risk(shares, present),
        }

    def _evaluate(self, record: ClassRecord, at_ms: int) -> list[AlertEvent]:
        values = self.current_indices(record, at_ms)
        state = cast(dict[bytes, bytes], self.client.hgetall(alert_state_key(record.class_id)))  # not decoded
        events = []
        for rule in self.rules:
            value = values[rule.index]
            since, active = _parse_state(state.get(rule.name.encode()))
            if rule.breached(value):
                since = since or at_ms
                if not active and at_ms - since >= rule.for_s * 1000:
                    active = True
                    events.append(self._record(record.class_id, "started", rule, value, at_ms))
            else:
                if active:
                    events.append(self._record(record.class_id, "ended", rule, value, at_ms))
                since, active = 0, False
            self.client.hset(alert_state_key(record.class_id), rule.name, f"{since}|{int(active)}")
        return events

    def _record(self, class_id: str, kind: str, rule: AlertRule, value: float | None, at_ms: int) -> AlertEvent:
        event = AlertEvent(class_id=class_id, kind=kind, index=rule.index, value=value, threshold=rule.threshold, t=at_ms)
        event_id = self.client.xadd(events_key(class_id), redis_fields(event.to_fields()), maxlen=EVENTS_MAXLEN, approximate=True)
        log.info("alert %s", kind, extra={"class_id": class_id, "rule": rule.name, "value": value})
        return event.model_copy(update={"event_id": event_id.decode() if isinstance(event_id, bytes) else event_id})


def _parse_state(raw: bytes | None) -> tuple[int, bool]:
    if not raw:
        return 0, False
    since, active = raw.decode().split("|")
    return int(since), active == "1"
