"""Stage costs measured in this process, without Kafka: the detector's work per frame (decode, cascade, crops) and
its recall and precision on the labelled frames; the model server through gRPC at several batch sizes; and the
messages' sizes, encode/decode and compression costs."""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from classpulse_bench.accuracy import FaceGuess, Score
from classpulse_core.schemas import CROP_BYTES, DetectedFaces, Frame, FrameResult
from classpulse_detector.faces import Box, FaceDetector, decode_gray
from classpulse_detector.settings import DetectorSettings

PLAIN_HAAR = {"scale_factor": 1.1, "min_neighbors": 5, "min_face_px": 60, "detect_max_side": 100_000}
"""Plain Haar as the demo's haar_check and most tutorials run it: the default frontal-face cascade, full frame."""


Locate = Callable[[int, np.ndarray], list[Box]]
"""Boxes for the n-th frame of a video, given its grayscale image."""


def full_scans(detector: FaceDetector) -> Locate:
    return lambda _n, gray: detector.detect(gray)


def tracked(settings: DetectorSettings, fps: float) -> Locate:
    """The detector as the service runs it: one source, frames `1/fps` apart in capture time."""
    tracker = settings.tracking_detector()
    return lambda n, gray: tracker.detect(("bench", "cam"), n + 1, round(n * 1000 / fps), gray)


def detector_figures(
    locate: Locate, crop: Callable[[np.ndarray, list[Box]], bytes], jpegs: Sequence[bytes], per_frame: Sequence[dict]
) -> dict[str, float]:
    """Frames/s of one thread (OpenCV single-threaded, as each process of a busy machine effectively is), CPU per
    frame (decode, boxes, crops), and recall and precision of the boxes against the labels."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        score = Score()
        wall, cpu = time.perf_counter(), time.process_time()
        found = []
        for n, jpeg in enumerate(jpegs):
            gray = decode_gray(jpeg)
            boxes = locate(n, gray)
            crop(gray, boxes)
            found.append(boxes)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        cv2.setNumThreads(threads)
    for boxes, labels in zip(found, per_frame, strict=False):
        score.add_frame(labels["faces"], [FaceGuess(box, None) for box in boxes])
    quality = score.figures()
    return {
        "frames_per_s_one_core": round(len(jpegs) / wall, 1),
        "cpu_ms_per_frame": round(cpu / len(jpegs) * 1000, 2),
        "frames_per_s_all_cores": round(len(os.sched_getaffinity(0)) * len(jpegs) / cpu, 1),
        "recall": quality["recall"],
        "precision": quality["precision"],
    }


def model_server_figures(
    predict: Callable[[np.ndarray], object], crops: np.ndarray, batch: int, concurrency: int, seconds: float
) -> dict[str, float]:
    """Faces/s through `predict` (a gRPC client's) with `concurrency` callers each sending `batch` faces."""
    faces = np.resize(crops, (batch, *crops.shape[1:]))
    predict(faces)
    deadline = time.monotonic() + seconds

    def caller() -> tuple[int, list[float]]:
        calls, latencies = 0, []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            predict(faces)
            latencies.append(time.perf_counter() - started)
            calls += 1
        return calls, latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: caller(), range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies = sorted(latency for _, per_caller in results for latency in per_caller)
    return {
        "faces_per_s": round(sum(calls for calls, _ in results) * batch / elapsed, 1),
        "call_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "call_p95_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000, 1),
    }


def sample_messages(jpeg: bytes, crops: np.ndarray, width: int, height: int) -> dict[str, bytes]:
    """One of each pipeline message for a frame with `len(crops)` faces, encoded as the stages send them."""
    identity = {
        "class_id": "bench", "source_id": "bench-src", "frame_id": "bench-src:1", "sequence": 1, "captured_at_ms": 1,
    }
    boxes = [[10 * i, 10, 100, 100] for i in range(len(crops))]
    probabilities = np.random.default_rng(0).dirichlet(np.ones(7), len(crops)).astype(np.float32)
    return {
        "frame": Frame(**identity, published_at_ms=1, width=width, height=height, jpeg=jpeg).encode(),
        "faces": DetectedFaces(
            **identity, detected_at_ms=1, frame_width=width, frame_height=height, boxes=boxes, crops=crops.tobytes()
        ).encode(),
        "prediction": FrameResult(
            **identity, completed_at_ms=1, boxes=boxes, probabilities=probabilities.tolist(), model_version="2"
        ).encode(),
    }


SCHEMAS = {"frame": Frame, "faces": DetectedFaces, "prediction": FrameResult}


def _per_call_us(function: Callable[[], object], repeat: int) -> float:
    started = time.process_time()
    for _ in range(repeat):
        function()
    return round((time.process_time() - started) / repeat * 1e6, 1)


def serialisation_figures(messages: dict[str, bytes], repeat: int = 200) -> dict[str, dict[str, float]]:
    """Per message kind: bytes on the wire, decode (msgpack + validation) cost, gzip's size ratio and cost (kafka-
    python's built-in codec, level 9 as it calls it, and level 1), and CRC-32C cost (every record batch is checked
    on produce and on fetch) with and without the `crc32c` C extension."""
    from kafka.record._crc32c import crc as crc32c_python
    from kafka.record.util import crc32c_c

    figures = {}
    for kind, payload in messages.items():
        row = {
            "bytes": len(payload),
            "decode_us": _per_call_us(lambda kind=kind, payload=payload: SCHEMAS[kind].decode(payload), repeat),
        }
        for level in (9, 1):
            compressed = zlib.compress(payload, level)
            row[f"gzip{level}_ratio"] = round(len(payload) / len(compressed), 2)
            row[f"gzip{level}_us"] = _per_call_us(
                lambda payload=payload, level=level: zlib.compress(payload, level), max(5, repeat // 10)
            )
        row["crc32c_python_us"] = _per_call_us(lambda payload=payload: crc32c_python(payload), 3)
        row["crc32c_c_us"] = _per_call_us(lambda payload=payload: crc32c_c(payload), repeat) if crc32c_c else None
        figures[kind] = row
    return figures


def crops_of(detector: FaceDetector, jpegs: Sequence[bytes], limit: int = 256) -> np.ndarray:
    """Real face crops from the frames (uint8 [N,48,48,1]), for the model server benches."""
    crops = []
    for jpeg in jpegs:
        gray = decode_gray(jpeg)
        data = detector.crop(gray, detector.detect(gray))
        crops.extend(np.frombuffer(data, np.uint8).reshape(-1, CROP_BYTES))
        if len(crops) >= limit:
            break
    return np.stack(crops).reshape(-1, 48, 48, 1)
