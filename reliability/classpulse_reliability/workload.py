"""The drills' workload: the sample class video (built from FER2013, as the demo does) decoded once into JPEG frames,
so every run publishes byte-identical frames, and what one class's run left in Kafka and Redis.

Frames are stamped on a fixed timeline (`origin_ms` + sequence / fps): a publisher restarted with the same source
id and origin re-sends exactly the messages it sent before, which the aggregator's per-frame dedup absorbs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import msgpack
import numpy as np
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from classpulse_core.schemas import Frame, FrameResult
from classpulse_core.timeseries import EMOTION_METRICS, FACES, FRAMES, series_key
from classpulse_demo.sample_class import generate_sample_class

JPEG_QUALITY = 85
"""Ingest's default quality, so the detector sees what it would see from a real source."""
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "reliability"
METRICS = (FRAMES, FACES, *EMOTION_METRICS)


@dataclass(frozen=True)
class Workload:
    jpegs: tuple[bytes, ...]
    width: int
    height: int
    fps: float
    students: int

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"jpegs": list(self.jpegs), "width": self.width, "height": self.height, "fps": self.fps, "students": self.students}
        path.write_bytes(msgpack.packb(body, use_bin_type=True))

    @classmethod
    def load(cls, path: Path) -> Workload:
        body = msgpack.unpackb(path.read_bytes(), raw=False)
        return cls(tuple(body["jpegs"]), body["width"], body["height"], body["fps"], body["students"])

    def frame(self, sequence: int, class_id: str, source_id: str, origin_ms: int) -> Frame:
        """Frame `sequence` of this workload as one class's source publishes it; the same arguments, the same bytes
        (but for published_at_ms, which nothing downstream keys on)."""
        return Frame(
            class_id=class_id,
            source_id=source_id,
            frame_id=f"{source_id}:{sequence}",
            sequence=sequence,
            captured_at_ms=origin_ms + round(sequence * 1000 / self.fps),
            published_at_ms=int(time.time() * 1000),
            width=self.width,
            height=self.height,
            jpeg=self.jpegs[sequence],
        )


def sample_class_workload(seconds: float, fps: float, students: int, seed: int = 7, webcam_like: bool = False) -> Path:
    """The sample class's frames as a workload file, built once per set of parameters and cached under .cache/.

    The sample class is a still picture between its scripted changes; `webcam_like` adds what a real camera adds
    (`webcam_like_frame`), for measuring anything that reuses work from frame to frame honestly."""
    variant = "-webcam" if webcam_like else ""
    path = CACHE_DIR / f"workload-{students}s-{seconds:g}x{fps:g}fps-seed{seed}{variant}.msgpack"
    if path.exists():
        return path
    paths = generate_sample_class(None, CACHE_DIR / path.stem, students=students, seconds=seconds, fps=fps, seed=seed)
    capture = cv2.VideoCapture(str(paths.video))
    jpegs = []
    rng = np.random.default_rng(seed)
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            height, width = image.shape[:2]
            if webcam_like:
                image = webcam_like_frame(image, rng)
            jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes())
    finally:
        capture.release()
    if not jpegs:
        raise RuntimeError(f"OpenCV decoded no frame of {paths.video}")
    Workload(tuple(jpegs), width, height, fps, students).save(path)
    return path


def webcam_like_frame(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame as a webcam would give it: up to 3 pixels of camera shake, +-3% brightness flicker and sensor noise
    (sigma 4 gray levels)."""
    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(image, shift, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    noisy = moved * (1 + rng.uniform(-0.03, 0.03)) + rng.normal(0, 4, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


class FrameSender:
    """Sends frames at least once: after each flush, any frame Kafka did not acknowledge is sent again."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._pending: list[tuple[Frame, object]] = []

    def send(self, frame: Frame) -> None:
        self._pending.append((frame, self.producer.send(self.topic, key=frame.key, value=frame.encode())))

    def flush(self, attempts: int = 20) -> None:
        """Block until every frame sent so far is acknowledged, re-sending those that failed."""
        for _ in range(attempts):
            try:
                self.producer.flush(timeout=60)
            except KafkaError:
                pass  # a flush that timed out leaves futures unfinished: they are looked at below
            failed = [frame for frame, future in self._pending if not future.is_done or future.failed()]
            if not failed:
                self._pending.clear()
                return
            self._pending.clear()
            time.sleep(1.0)
            for frame in failed:
                self.send(frame)
        raise KafkaError(f"{len(self._pending)} frames still not acknowledged after {attempts} attempts")


def register_class(api_url: str, admin_key: str, class_id: str, students: int) -> None:
    """Register the class through the API, as an operator would (the detector refuses frames of unknown classes)."""
    body = {"class_id": class_id, "name": f"{class_id} (reliability)", "expected_students": students}
    response = httpx.post(f"{api_url}/v1/classes", json=body, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    response.raise_for_status()


def class_totals(client: redis.Redis, class_id: str) -> dict[str, float]:
    """Every metric of the class summed over all its raw per-second samples (0 for a series not created yet)."""
    totals = {}
    for metric in METRICS:
        key = series_key(class_id, metric)
        samples = client.ts().range(key, "-", "+") if client.exists(key) else []
        totals[metric] = sum(value for _, value in samples)
    return totals


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, since: dict[int, int]) -> list:
    """Every record of `topic` from the offsets `since` (partition -> offset) up to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=5_000)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        wanted = [tp for tp in partitions if ends[tp] > since.get(tp.partition, 0)]
        if not wanted:
            return []
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, since.get(tp.partition, 0))
        records = []
        remaining = {tp: ends[tp] for tp in wanted}
        for record in consumer:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset < remaining.get(tp, 0):
                records.append(record)
            if record.offset >= remaining.get(tp, 0) - 1:
                remaining.pop(tp, None)
            if not remaining:
                break
        return records
    finally:
        consumer.close()


@dataclass(frozen=True)
class PredictionsSeen:
    messages: int
    """Frame results of the class on the predictions topic, redeliveries included."""
    frames: int
    """Distinct frames among them."""
    faces: int
    """Faces classified, over distinct frames."""


def predictions_of(records: list, class_ids: set[str]) -> PredictionsSeen:
    """What the predictions topic holds of the classes (keyed by class id)."""
    keys = {class_id.encode() for class_id in class_ids}
    results = [FrameResult.decode(record.value) for record in records if record.key in keys]
    distinct = {result.frame_id: result for result in results}
    faces = sum(len(result.probabilities or ()) for result in distinct.values())
    return PredictionsSeen(len(results), len(distinct), faces)
