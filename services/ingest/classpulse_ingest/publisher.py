"""Turning images into `Frame` messages: downscale if oversized, JPEG-encode, key by class id, queue for Kafka."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import cv2
import numpy as np
import redis
from prometheus_client import Counter

from classpulse_core.schemas import CameraKind, Frame
from classpulse_ingest.accounting import SourceTally
from classpulse_ingest.buffer import FrameBuffer, OutgoingFrame
from classpulse_store.classkeys import keys_index, sequence_key

FRAMES_RESIZED = Counter("classpulse_ingest_frames_resized_total", "Frames downscaled to the maximum side before publishing")
# Outlives any lesson and the aggregator's dedup window (6 h by default), within which a number must never name two
# frames; an idle source's counter is forgotten after a day.
SEQUENCE_TTL_S = 24 * 3600


def new_source_id(kind: str) -> str:
    """A source id unique to this run, so frame ids never collide with an earlier run of the same source."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


RUN_SEQUENCE_BLOCK = 1 << 32
"""The frame numbers one run of a source takes: more than it can publish (4.5 years at 30 frames/s), few enough for
2^21 runs of one source id within the schema's 2^53."""


def reserve_sequences(client: redis.Redis, class_id: str, source_id: str, count: int) -> int:
    """The first of `count` frame numbers of a source that were never handed out: they count in Redis, so they stay
    unique across ingest replicas, restarts and runs under the same source id (the aggregator drops a frame whose
    number it already counted in the same minute as a duplicate)."""
    counter = sequence_key(class_id, source_id)
    pipe = client.pipeline(transaction=True)
    pipe.incrby(counter, count)
    pipe.expire(counter, SEQUENCE_TTL_S)
    # In the class's key index, so that deleting the class finds it (classpulse_store.classkeys).
    pipe.zadd(keys_index(class_id), {counter: int((time.time() + SEQUENCE_TTL_S) * 1000)})
    return int(pipe.execute()[0]) - count


@dataclass(frozen=True)
class FrameIdentity:
    """Which frame this is: frame ids are '<source_id>:<sequence>', unique per source."""

    class_id: str
    source_id: str
    sequence: int
    captured_at_ms: int
    session_id: str | None = None
    camera_kind: CameraKind = "room"


class FramePublisher:
    def __init__(self, buffer: FrameBuffer, jpeg_quality: int, max_side: int) -> None:
        self.buffer = buffer
        self.jpeg_quality = jpeg_quality
        self.max_side = max_side

    def encode(self, image: np.ndarray) -> tuple[bytes, int, int]:
        """JPEG bytes, width and height of the image as published (downscaled to `max_side` if larger)."""
        height, width = image.shape[:2]
        scale = self.max_side / max(height, width)
        if scale < 1.0:
            # Each side at least a pixel: a very thin picture (a camera's, refused sooner where it comes from a
            # sender) must not round to an empty one, which OpenCV refuses with an exception.
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            height, width = image.shape[:2]
            FRAMES_RESIZED.inc()
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise ValueError("image could not be JPEG-encoded")
        return jpeg.tobytes(), width, height

    def publish(self, image: np.ndarray, identity: FrameIdentity, tally: SourceTally, wait_s: float = 0.0) -> Frame:
        """Queue the frame for Kafka; `wait_s`: how long to wait for room before the oldest waiting frame is dropped."""
        frame = self.frame(image, identity)
        self.queue(frame, tally, wait_s)
        return frame

    def frame(self, image: np.ndarray, identity: FrameIdentity) -> Frame:
        """The message of the image, encoded but not queued: an upload records its answer between the two."""
        jpeg, width, height = self.encode(image)
        return Frame(
            class_id=identity.class_id,
            session_id=identity.session_id,
            source_id=identity.source_id,
            frame_id=f"{identity.source_id}:{identity.sequence}",
            sequence=identity.sequence,
            captured_at_ms=identity.captured_at_ms,
            camera_kind=identity.camera_kind,
            published_at_ms=now_ms(),
            width=width,
            height=height,
            jpeg=jpeg,
        )

    def queue(self, frame: Frame, tally: SourceTally, wait_s: float = 0.0) -> None:
        """Hand the frame to the Kafka sender (at once with `wait_s` 0: the oldest waiting frame makes room)."""
        self.buffer.put(OutgoingFrame(frame.key, frame.encode(), frame.frame_id, tally), wait_s)
