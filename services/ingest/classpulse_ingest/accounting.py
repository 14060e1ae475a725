"""Where every frame ends up, per source and in metrics: acknowledged by Kafka, or dropped for a stated reason."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from enum import StrEnum

from prometheus_client import Counter

from classpulse_ingest.source_store import Lease

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
    SHUTDOWN = "shutdown"  # not acknowledged when the process stopped and the drain time ran out
    CAPTURE_TIME = "capture_time"  # stamped in the future or before the raw retention (classpulse_core.capture)
    LEASE_LOST = "lease_lost"  # waiting to be sent when this replica lost the source to another one


TAKEN_AGAIN = frozenset({DropReason.SHUTDOWN, DropReason.LEASE_LOST})
"""Drops caused only by this process letting the source go: the process that continues a recording takes these
frames again. A frame dropped for any other reason is gone for good (the source running on here would not send it
either; going back for it would pin a recording's progress at its first lost frame for the rest of the lesson)."""


class SourceTally:
    """Counts of one source's frames; updated from capture, sender and producer threads."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._published = 0
        self._dropped: Tally[str] = Tally()

    def published(self, frame_id: str) -> None:
        FRAMES_PUBLISHED.labels(self.kind).inc()
        with self._lock:
            self._published += 1

    def dropped(self, reason: DropReason, frame_id: str | None = None) -> None:
        """`frame_id`: of a frame dropped after it was handed to the buffer."""
        FRAMES_DROPPED.labels(self.kind, reason.value).inc()
        with self._lock:
            self._dropped[reason.value] += 1

    def may_send(self) -> bool:
        """Whether this source's waiting frames may still go to Kafka (not once another replica runs it)."""
        return True

    @property
    def published_count(self) -> int:
        with self._lock:
            return self._published

    def dropped_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._dropped)


class ProgressTally(SourceTally):
    """A source's counts, plus where another process would continue it so that no frame is lost: at the oldest frame
    handed to the buffer that Kafka has not acknowledged, whether still waiting (acknowledgements may come out of
    order) or dropped as this process let the source go (TAKEN_AGAIN), or after the last frame handed out when every
    one was acknowledged or dropped for good; as a frame number and, for a recording, the instant on its timeline
    where reading continues to take that frame again."""

    def __init__(self, kind: str, next_sequence: int, continue_at_ms: float | None, lease: Lease | None) -> None:
        super().__init__(kind)
        self.lease = lease
        self._waiting: dict[int, float | None] = {}  # not yet acknowledged: sequence -> where to continue to take it
        self._left_behind: dict[int, float | None] = {}  # dropped for a reason in TAKEN_AGAIN, the same way
        self._settled = threading.Condition(self._lock)
        self._next_sequence = next_sequence
        self._continue_at_ms = continue_at_ms

    def may_send(self) -> bool:
        return self.lease is None or not self.lease.lost

    def handed(self, sequence: int, continue_after_ms: float) -> None:
        """A frame goes to the buffer; `continue_after_ms`: where reading continues to take the frames after it."""
        with self._lock:
            self._waiting[sequence] = self._continue_at_ms
            self._next_sequence, self._continue_at_ms = sequence + 1, continue_after_ms

    def continuation(self) -> tuple[int, float | None]:
        with self._lock:
            unpublished = self._waiting | self._left_behind
            if not unpublished:
                return self._next_sequence, self._continue_at_ms
            oldest = min(unpublished)
            return oldest, unpublished[oldest]

    def has_unpublished_frames(self) -> bool:
        """Whether some frame handed out was neither acknowledged by Kafka nor dropped for good (it still waits, or was
        dropped as this process let the source go): a process continuing the source takes it again."""
        with self._lock:
            return bool(self._waiting or self._left_behind)

    def published(self, frame_id: str) -> None:
        super().published(frame_id)
        self._settle(frame_id)

    def dropped(self, reason: DropReason, frame_id: str | None = None) -> None:
        super().dropped(reason)
        if frame_id is not None:
            self._settle(frame_id, left_behind=reason in TAKEN_AGAIN)

    def _settle(self, frame_id: str, left_behind: bool = False) -> None:
        sequence = int(frame_id.rsplit(":", 1)[1])
        with self._lock:
            if sequence in self._waiting:
                continue_at_ms = self._waiting.pop(sequence)
                if left_behind:
                    self._left_behind[sequence] = continue_at_ms
            self._settled.notify_all()

    def wait_settled(self, timeout_s: float) -> bool:
        """Wait until every frame handed to the buffer was acknowledged or dropped; False if some still wait."""
        with self._lock:
            return self._settled.wait_for(lambda: not self._waiting, timeout_s)
