"""Alert events of a class: written by the aggregator when an index stays past its threshold, read by the API.

Each class has a Redis stream `events:{<class_id>}` (capped) whose entries are the fields of `AlertEvent`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

EVENTS_MAXLEN = 10_000
EMOTION_INDICES = ("mood_index", "attention_risk")
"""Indices computed from emotions: no alert of theirs is shown or sent for a class that is presence-only now, even
one raised before it was switched."""


def events_key(class_id: str) -> str:
    return f"events:{{{class_id}}}"


class AlertEvent(BaseModel):
    event_id: str = ""
    class_id: str
    kind: str = Field(description="'started' when the condition began to hold long enough, 'ended' when it cleared")
    index: str = Field(description="attention_risk, mood_index or presence")
    value: float | None = Field(description="the index when the event was recorded; null if it could not be computed")
    threshold: float
    t: int = Field(description="epoch ms")

    def shown_for(self, emotions_on: bool) -> bool:
        """Whether the event may be shown or sent for a class whose emotions are on (or not)."""
        return emotions_on or self.index not in EMOTION_INDICES

    def to_fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude={"event_id"}, exclude_none=True).items()}
