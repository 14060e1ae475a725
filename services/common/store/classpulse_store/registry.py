"""The class registry in Redis: written by the API, read by the API and the detector.

`class:{<class_id>}` is a hash of the class's fields; `classes` is a sorted set of class ids by creation time (for
listing with pagination). A class's own `emotion_enabled` switches emotion inference off for that class alone
(presence-only), where the deployment allows emotions at all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis
from pydantic import BaseModel, Field

from classpulse_core.schemas import ClassId

CLASS_INDEX = "classes"


def class_key(class_id: str) -> str:
    return f"class:{{{class_id}}}"


def hash_fields(values: Mapping[str, object]) -> dict[str, str]:
    """Fields of a class as its hash keeps them (a boolean as 1 or 0)."""
    return {k: ("1" if v is True else "0" if v is False else str(v)) for k, v in values.items()}


class ClassRecord(BaseModel):
    class_id: ClassId
    name: str = Field("", max_length=200)
    teacher: str | None = Field(None, max_length=128, description="teacher id whose key may read this class")
    expected_students: int = Field(0, ge=0, le=10_000, description="registered class size, for presence")
    emotion_enabled: bool = Field(True, description="false: presence-only for this class, no emotion inferred")
    created_at_ms: int = 0

    def to_hash(self) -> dict[str, str]:
        return hash_fields(self.model_dump(exclude_none=True))

    @classmethod
    def from_hash(cls, fields: Mapping[bytes | str, bytes | str]) -> ClassRecord:
        decoded = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
        return cls.model_validate(decoded)


class ClassDirectory:
    """A synchronous, cached view of the registry for the pipeline's stages (refreshed every `ttl_s`)."""

    MAX_CACHED = 100_000  # ids of classes that do not exist also get cached; bound the memory they can take

    def __init__(self, client: redis.Redis, ttl_s: float = 5.0) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, ClassRecord | None]] = {}

    def get(self, class_id: str) -> ClassRecord | None:
        now = time.monotonic()
        cached = self._cache.get(class_id)
        if cached and now - cached[0] < self.ttl_s:
            return cached[1]
        fields = self.client.hgetall(class_key(class_id))
        record = ClassRecord.from_hash(fields) if fields else None
        if len(self._cache) >= self.MAX_CACHED:
            self._cache.clear()
        self._cache[class_id] = (now, record)
        return record

    def emotion_allowed_now(self, class_ids: set[str]) -> set[str]:
        """Which of these classes allow emotions at this moment, read in one round trip and never cached: a class
        switched to presence-only gets nothing inferred from then on, whatever a cache still says. An unknown
        (deleted) class allows nothing."""
        ordered = sorted(class_ids)
        pipeline = self.client.pipeline(transaction=False)
        for class_id in ordered:
            pipeline.hmget(class_key(class_id), "class_id", "emotion_enabled")
        return {
            class_id
            for class_id, (exists, enabled) in zip(ordered, pipeline.execute(), strict=True)
            if exists is not None and enabled not in (b"0", "0")
        }
