"""The bounded buffer between capture and Kafka: it never blocks a live source and never grows past its bounds.

When Kafka is slow or down the buffer fills; then each new frame pushes out the oldest waiting one (counted as
dropped): for a live class the newest frame is worth more than a stale one. A recording (which loses nothing by
waiting) may first wait a bounded time for room.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from prometheus_client import Gauge

from classpulse_ingest.accounting import DropReason, SourceTally

BUFFER_FRAMES = Gauge("classpulse_ingest_buffer_frames", "Frames waiting for Kafka")
BUFFER_BYTES = Gauge("classpulse_ingest_buffer_bytes", "Bytes of frames waiting for Kafka")


@dataclass(frozen=True)
class OutgoingFrame:
    key: bytes
    value: bytes
    frame_id: str
    tally: SourceTally

    @property
    def size(self) -> int:
        return len(self.key) + len(self.value)


class FrameBuffer:
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[OutgoingFrame] = deque()
        self._bytes = 0
        self._changed = threading.Condition()

    def put(self, frame: OutgoingFrame, wait_s: float = 0.0) -> None:
        """Queue a frame; if there is no room after up to `wait_s`, drop the oldest frames until there is."""
        deadline = time.monotonic() + wait_s
        with self._changed:
            while not self._has_room_for(frame) and self._changed.wait(max(0.0, deadline - time.monotonic())):
                pass
            while self._frames and not self._has_room_for(frame):
                oldest = self._frames.popleft()
                self._bytes -= oldest.size
                oldest.tally.dropped(DropReason.BUFFER_FULL, oldest.frame_id)
            self._frames.append(frame)
            self._bytes += frame.size
            self._publish_gauges()
            self._changed.notify_all()

    def get(self, timeout_s: float) -> OutgoingFrame | None:
        """The oldest waiting frame, or None if none came within `timeout_s`."""
        with self._changed:
            if not self._frames:
                self._changed.wait(timeout_s)
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._bytes -= frame.size
            self._publish_gauges()
            self._changed.notify_all()
            return frame

    def drain(self) -> list[OutgoingFrame]:
        with self._changed:
            frames = list(self._frames)
            self._frames.clear()
            self._bytes = 0
            self._publish_gauges()
            self._changed.notify_all()
            return frames

    @property
    def depth(self) -> tuple[int, int]:
        """(frames, bytes) waiting."""
        with self._changed:
            return len(self._frames), self._bytes

    def _has_room_for(self, frame: OutgoingFrame) -> bool:
        return len(self._frames) < self.max_frames and self._bytes + frame.size <= self.max_bytes

    def _publish_gauges(self) -> None:
        BUFFER_FRAMES.set(len(self._frames))
        BUFFER_BYTES.set(self._bytes)
