"""Request and response bodies of the API, documented in its OpenAPI schema."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from classpulse_core.schemas import ClassId
from classpulse_store.registry import ClassRecord
from classpulse_web.auth import Role

T = TypeVar("T")

EMOTIONS_OFF = "off: this class runs presence-only; no emotion is inferred or stored"
EMOTIONS_ON = "on"


class EmotionShares(BaseModel):
    angry: float
    disgust: float
    fear: float
    happy: float
    sad: float
    surprise: float
    neutral: float


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


TOTAL_COUNT = "X-Total-Count"
TOTAL_COUNT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"headers": {TOTAL_COUNT: {"description": "how many there are in all, past this page too", "schema": {"type": "integer"}}}}
}
"""The `responses` of a paged route whose body is a bare list, kept for its clients (a Page would break them): the
total is in a header."""


class ClassCreate(BaseModel):
    class_id: ClassId
    name: str = Field("", max_length=200)
    teacher: str | None = Field(None, max_length=128)
    expected_students: int = Field(0, ge=0, le=10_000)
    emotion_enabled: bool = True


class ClassUpdate(BaseModel):
    name: str | None = Field(None, max_length=200)
    teacher: str | None = Field(None, max_length=128)
    expected_students: int | None = Field(None, ge=0, le=10_000)
    emotion_enabled: bool | None = None


class ClassOut(ClassRecord):
    pass


class SessionStart(BaseModel):
    name: str = Field("", max_length=200)


class KeyCreate(BaseModel):
    role: Role
    name: str = Field("", max_length=200)
    teacher_id: str | None = Field(None, max_length=128, description="required for teacher keys")


class KeyCreated(BaseModel):
    key_id: str
    role: Role
    teacher_id: str | None
    api_key: str = Field(description="shown once: only its hash is stored")


class Indices(BaseModel):
    frames: int = Field(description="frames processed")
    faces: int = Field(description="faces seen")
    faces_per_frame: float | None
    on_camera: float | None = Field(
        description="students on camera, on average over the seconds the class was watched (live: the whole window)"
    )
    presence: float | None = Field(description="students on camera / expected students, capped at 1")
    facing_screen: float | None = Field(
        description="share of the students on camera with a head pose whose head faced their camera (|yaw| <= 30 deg,"
        " |pitch| <= 25 deg): a movement, not an emotion, so shown in presence-only classes too; null when no face"
        " had a pose (a Haar-only camera)"
    )
    classified_faces: int | None = Field(
        description="faces whose emotions were read: the faces the emotion shares come from (the sum of their"
        " probabilities); fewer than `faces` where part of the range was presence-only or faces were seen but not"
        " classified; null when off"
    )
    classified_share: float | None = Field(
        description="classified_faces / faces, 0..1: how much of what was seen the emotion shares were read from; null"
        " when off or without faces"
    )
    emotions: EmotionShares | None = Field(
        description="share of each emotion, corrected for the model's known errors (probabilistic adjusted classify-"
        "and-count from the mean probabilities); null when off or without faces"
    )
    emotions_raw: EmotionShares | None = Field(
        description="the raw mean of the faces' emotion probabilities, which leans towards the mix the model learnt"
        " from; null when off or without faces"
    )
    dominant_emotion: str | None
    mood_index: float | None = Field(description="valence-weighted emotion shares, -1..1")
    attention_risk: float | None = Field(description="share of the class away or in negative affect, 0..1")


class ReadCoverage(BaseModel):
    """Which stored series answered: the range is read from the finest series still holding each part of it."""

    bucket_ms: int = Field(description="the width of the buckets the answer was computed from")
    resolutions: list[str] = Field(description="the series read, finest first: 1s (raw), 10s, 1m, 1h")
    held_from: str = Field(description="ISO 8601: the oldest instant any series still keeps; earlier parts are gone")


class ClassSummary(Indices):
    class_id: str
    start: str = Field(description="ISO 8601, inclusive")
    end: str = Field(description="ISO 8601, inclusive")
    session_id: str | None = None
    emotion_enabled: bool
    emotion_status: str
    phases: list[PhaseSummary] = Field(default_factory=list, description="per part of the range: dominant emotion, and the faces it was read from")
    peaks: list[Peak] = Field(default_factory=list, description="moments of highest negative affect")
    coverage: ReadCoverage


class PhaseSummary(BaseModel):
    start: str
    end: str
    faces: int
    classified_faces: int = Field(description="faces of the part whose emotions were read (its dominant emotion's)")
    classified_share: float | None = Field(description="classified_faces / faces; null without faces")
    dominant_emotion: str | None
    mood_index: float | None


class Peak(BaseModel):
    time: str
    t: int
    negative_share: float
    attention_risk: float | None


METRIC_NAMES = tuple(Indices.model_fields)


class SeriesPoint(BaseModel):
    """One bucket: its start, and the metrics asked for (all of them by default)."""

    t: int = Field(description="bucket start, epoch ms")
    time: str = Field(description="bucket start, ISO 8601")
    frames: int | None = None
    faces: int | None = None
    faces_per_frame: float | None = None
    on_camera: float | None = None
    presence: float | None = None
    facing_screen: float | None = None
    classified_faces: int | None = None
    classified_share: float | None = None
    emotions: EmotionShares | None = None
    emotions_raw: EmotionShares | None = None
    dominant_emotion: str | None = None
    mood_index: float | None = None
    attention_risk: float | None = None


class ClassTimeseries(BaseModel):
    class_id: str
    start: str
    end: str
    bucket: str = Field(description="the bucket width of the points (wider than asked where only coarser series hold the range)")
    bucket_ms: int
    emotion_enabled: bool
    emotion_status: str
    coverage: ReadCoverage
    points: list[SeriesPoint]


class LiveWindow(Indices):
    class_id: str
    window_s: int
    at: str
    emotion_enabled: bool
    emotion_status: str


class Replayed(BaseModel):
    replayed: int = Field(description="dead letters put back into the outbox")


ClassSummary.model_rebuild()
