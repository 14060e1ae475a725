"""Alerts: when a class index stays past its threshold for a while, record an event and let live listeners know.

Evaluated on event time (the newest capture time seen for the class), over the latest `window_s` of raw sums, at most
every `interval_s` per class. A class that goes silent (no frame of it comes: every camera stopped) raises nothing:
that is what a lesson's end looks like, when every student closes their camera at once (a room camera that shows
nobody still sends frames, and its presence alert fires). Its silence is measured on its Kafka partition's watermark,
the newest capture time of any class of that partition (frames are keyed by class, so a class's frames stay in one
partition): after `idle_s` of it the class is no longer watched, its active alerts end (value null) and its rules
start afresh, so the next lesson inherits no pending or active state; a state found stale on a class's next frame
(left by a replica that stopped before the class went idle) is ended the same way. A stalled pipeline moves no
watermark and ends nothing. A rule's state (pending since / active, and when it was last evaluated) lives in Redis,
so a restarted or rebalanced aggregator carries on where the last one stopped. Events go to the class's capped stream
`events:{class}`, which the API's live stream reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, cast

import redis
from pydantic import BaseModel, Field

from classpulse_core import indices
from classpulse_core.alerts import EVENTS_MAXLEN, AlertEvent, events_key
from classpulse_core.timeseries import RAW_RESOLUTION, parse_ranges, range_commands
from classpulse_store.classkeys import alert_state_key
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


EVALUATED = b"evaluated"
"""The field of a class's alert state holding the event time it was last evaluated at."""
# KEYS: 1 the class's alert state, 2 its event stream. ARGV: 1 the rule, 2 the state it must still hold ('' none),
# 3 its new state ('' none), 4 the stream's length cap, then the event's fields and values, if the move has one.
# Returns nil when the state moved meanwhile, else the event's id ('' without one).
_TRANSITION = """
if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then return nil end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
if #ARGV < 5 then return '' end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
"""


class AlertEvaluator:
    def __init__(
        self, client: redis.Redis, classes: ClassDirectory, rules: tuple[AlertRule, ...], window_s: int = 10,
        interval_s: float = 5.0, idle_s: int = 300,
    ) -> None:
        self.client = client
        self.classes = classes
        self.rules = rules
        self.window_ms = window_s * 1000
        self.interval_ms = int(interval_s * 1000)
        self.idle_ms = idle_s * 1000
        self._last_evaluated: dict[str, int] = {}
        self._newest_capture: dict[str, tuple[int, int]] = {}
        """Each class with frames here and not idle yet: (its partition, its newest capture time)."""
        self._watermarks: dict[int, int] = {}
        """Each partition's newest capture time."""
        self._transition_script = client.register_script(_TRANSITION)

    def observe(self, latest_capture_ms: Mapping[str, int], partitions: Mapping[str, int] | None = None) -> list[AlertEvent]:
        """Evaluate the classes of a batch (their newest capture times, and their partitions) whose turn has come, and
        end the alerts of those silent for `idle_s`; returns the events recorded."""
        for class_id, at_ms in latest_capture_ms.items():
            partition = (partitions or {}).get(class_id, -1)
            newest = max(at_ms, self._newest_capture.get(class_id, (partition, 0))[1])
            self._newest_capture[class_id] = (partition, newest)
            self._watermarks[partition] = max(self._watermarks.get(partition, 0), at_ms)
        events: list[AlertEvent] = []
        for class_id, (partition, newest) in list(self._newest_capture.items()):
            if class_id not in latest_capture_ms:
                if self._watermarks[partition] - newest >= self.idle_ms:
                    events += self._close(class_id, newest + self.idle_ms, self._state(class_id))
                    del self._newest_capture[class_id]
                    self._last_evaluated.pop(class_id, None)
                continue
            at_ms = latest_capture_ms[class_id]
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

    def _state(self, class_id: str) -> dict[bytes, bytes]:
        return cast(dict[bytes, bytes], self.client.hgetall(alert_state_key(class_id)))  # not decoded

    def _close(self, class_id: str, at_ms: int, state: dict[bytes, bytes]) -> list[AlertEvent]:
        """The class is no longer watched: its active alerts end (nothing to read an index from) and its state goes."""
        events = []
        for rule in self.rules:
            held = state.get(rule.name.encode())
            if held is not None:
                ended = AlertEvent(class_id=class_id, kind="ended", index=rule.index, value=None, threshold=rule.threshold, t=at_ms)
                events += self.transition(class_id, rule, held, None, ended if _parse_state(held)[1] else None)
        self.client.hdel(alert_state_key(class_id), EVALUATED)
        return events

    def _evaluate(self, record: ClassRecord, at_ms: int) -> list[AlertEvent]:
        values = self.current_indices(record, at_ms)
        state = self._state(record.class_id)
        events = []
        evaluated = int(state.get(EVALUATED, 0))
        if evaluated and at_ms - evaluated >= self.idle_ms:
            events += self._close(record.class_id, evaluated + self.idle_ms, state)
            state = {}
        self.client.hset(alert_state_key(record.class_id), EVALUATED, max(at_ms, evaluated))
        for rule in self.rules:
            value = values[rule.index]
            held = state.get(rule.name.encode())
            since, active = _parse_state(held)
            kind = None
            if rule.breached(value):
                since = since or at_ms
                if not active and at_ms - since >= rule.for_s * 1000:
                    active, kind = True, "started"
            else:
                kind = "ended" if active else None
                since, active = 0, False
            event = kind and AlertEvent(
                class_id=record.class_id, kind=kind, index=rule.index, value=value, threshold=rule.threshold, t=at_ms
            )
            new_state = f"{since}|{int(active)}".encode()
            if new_state != held:
                events += self.transition(record.class_id, rule, held, new_state, event or None)
        return events

    def transition(
        self, class_id: str, rule: AlertRule, held: bytes | None, new_state: bytes | None, event: AlertEvent | None
    ) -> list[AlertEvent]:
        """The rule's state from `held` to `new_state` (None: gone) and its event, together, only if the state is
        still `held`: a batch retried after a failure, or two replicas evaluating a class during a rebalance,
        record a start or an end once."""
        fields = [item for pair in event.to_fields().items() for item in pair] if event else []
        reply = self._transition_script(
            keys=[alert_state_key(class_id), events_key(class_id)],
            args=[rule.name, held or b"", new_state or b"", EVENTS_MAXLEN, *fields],
        )
        if reply is None or event is None:
            return []
        log.info("alert %s", event.kind, extra={"class_id": class_id, "rule": rule.name, "value": event.value})
        return [event.model_copy(update={"event_id": reply.decode() if isinstance(reply, bytes) else reply})]


def _parse_state(raw: bytes | None) -> tuple[int, bool]:
    if not raw:
        return 0, False
    since, active = raw.decode().split("|")
    return int(since), active == "1"
