"""Detector stage: frames in; per frame, its face crops out (to the classifier), or, in presence-only mode, its face
boxes straight to the predictions topic so that no crop ever reaches the classifier."""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis
from prometheus_client import Counter

from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.schemas import MAX_FACES, CameraKind, DetectedFaces, Frame, FrameResult
from classpulse_core.settings import KafkaSettings
from classpulse_detector.faces import Box, UndecodableFrame, decode_gray, image_size, landmarks_of, reading_order
from classpulse_detector.headpose import facing
from classpulse_detector.tracking import TrackingDetector
from classpulse_store.registry import ClassDirectory
from classpulse_stream import metrics
from classpulse_stream.stage import Delivery, Emit, Outcome, Reject

STAGE = "detector"

FACES_BEYOND_LIMIT = Counter(
    "classpulse_detector_faces_beyond_limit_total",
    f"Faces found in a frame beyond the {MAX_FACES} a message carries (its smallest): counted present, no pose or emotion",
)


class DetectFaces:
    def __init__(
        self,
        detectors: Mapping[CameraKind, TrackingDetector],
        classes: ClassDirectory,
        kafka: KafkaSettings,
        emotion_enabled: bool,
    ) -> None:
        """`detectors`: one per kind of camera (a student's own webcam shows one large face, a room many small ones)."""
        self.detectors = detectors
        self.classes = classes
        self.kafka = kafka
        self.emotion_enabled = emotion_enabled

    def __call__(self, deliveries: list[Delivery[Frame]]) -> list[Outcome]:
        # Emotions only where the deployment allows them and the class has them on at this moment: read once a batch
        # and never cached, as the classifier does, so a class switched back on gets crops from its next batch (from
        # the cached record, its faces went on without crops, counted and never classified, for up to 5 s).
        try:
            allowed = self.classes.emotion_allowed_now({d.message.class_id for d in deliveries}) if self.emotion_enabled else set()
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", repr(exc)) from exc
        return [self._one(delivery, delivery.message.class_id in allowed) for delivery in deliveries]

    def _one(self, delivery: Delivery[Frame], emotion_enabled: bool) -> Outcome:
        frame = delivery.message
        try:
            registered = self.classes.get(frame.class_id)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", repr(exc)) from exc
        if registered is None:
            return Reject(delivery, f"unknown class: {frame.class_id!r} is not registered")
        try:
            # The image's own header is checked against the frame's declared size (at most MAX_FRAME_SIDE a side)
            # before anything is decoded; the decoded size is checked again in case OpenCV read the header otherwise.
            width, height = image_size(frame.jpeg)
            if (width, height) == (frame.width, frame.height):
                gray = decode_gray(frame.jpeg)
                height, width = gray.shape
        except UndecodableFrame as exc:
            return Reject(delivery, f"undecodable frame: {exc}")
        if (width, height) != (frame.width, frame.height):
            return Reject(delivery, f"wrong size: header says {frame.width}x{frame.height}, image is {width}x{height}")
        detector = self.detectors[frame.camera_kind]
        found = detector.detect((frame.class_id, frame.source_id), frame.sequence, frame.captured_at_ms, gray)
        metrics.FACES.labels(STAGE).inc(len(found))
        # A message refusing a frame's faces would dead-letter the frame, and a replay would refuse it again: a lecture
        # hall's whole count lost, frame after frame. Its largest faces are sent, the nearest and best cropped, and
        # the others are counted.
        boxes = _largest(found, MAX_FACES)
        beyond = len(found) - len(boxes)
        FACES_BEYOND_LIMIT.inc(beyond)
        now_ms = int(time.time() * 1000)
        metrics.LATENCY_SECONDS.labels(STAGE).observe(max(0, now_ms - frame.captured_at_ms) / 1000)
        identity = frame.identity()
        box_lists = [list(box) for box in boxes]
        # Head pose is a movement, not an emotion: it is carried in presence-only mode too.
        facing_flags = [facing(landmarks_of(box)) for box in boxes]
        if not emotion_enabled:
            return Emit(
                self.kafka.predictions_topic,
                FrameResult(**identity, completed_at_ms=now_ms, boxes=box_lists, facing=facing_flags, faces_beyond=beyond),
            )
        faces = DetectedFaces(
            **identity,
            detected_at_ms=now_ms,
            frame_width=width,
            frame_height=height,
            boxes=box_lists,
            crops=detector.detector.crop(gray, boxes),
            facing=facing_flags,
            faces_beyond=beyond,
        )
        return Emit(self.kafka.faces_topic, faces)


def _largest(boxes: list[Box], count: int) -> list[Box]:
    """The `count` largest of `boxes` (all of them when there are no more), in reading order."""
    if len(boxes) <= count:
        return boxes
    return reading_order(sorted(boxes, key=lambda box: box[2] * box[3], reverse=True)[:count])
