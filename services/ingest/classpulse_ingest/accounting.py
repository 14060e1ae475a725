"""Where every frame ends up, per source and in metrics: acknowledged by Kafka, or dropped for a stated reason."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from enum import StrEnum

from prometheus_client import Counter

FRAMES_PUBLISHED = Counter(
    "classpulse_ingest_frames_published_total", "Frames acknowledged by Kafka", ["source_kind"]
)
FRAMES_DROPPED = Counter(
    "classpulse_ingest_frames_dropped_total", "Frames dropped on purpose or lost, by reason", ["source_kind", "reason"]
)


class DropReason(StrEnum):
    CLASS_QUOTA = "class_quota"  # the class is over its frame quota (live sources skip frames)
    BUFFER_FULL = "buffer_full"  # Kafka is slower than capture: the oldest waiting frame made room
    KAFKA_UNAVAILABLE = "kafka_unavailable"  # the producer could not take the frame in time (no metadata)
    DELIVERY_FAILED = "delivery_failed"  # Kafka did not acknowledge the frame within the delivery timeout
    SHUTDOWN = "shutdown"  # still waiting when the process stopped and the drain time ran out
    CAPTURE_TIME = "capture_time"  # stamped in the future or before the raw retention (classpulse_common.capture)


class SourceTally:
    """Counts of one source's frames; updated from capture, sender and producer threads."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._published = 0
        self._dropped: Tally[str] = Tally()

    def published(self) -> None:
        FRAMES_PUBLISHED.labels(self.kind).inc()
        with self._lock:
            self._published += 1

    def dropped(self, reason: DropReason) -> None:
        FRAMES_DROPPED.labels(self.kind, reason.value).inc()
        with self._lock:
            self._dropped[reason.value] += 1

    @property
    def published_count(self) -> int:
        with self._lock:
            return self._published

    def dropped_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._dropped)
