"""Classifier stage: face crops in, per-face emotion probabilities out.

Crops of all frames in a consumed batch are stacked and sent to the model server in as few Predict calls as
`max_batch_faces` allows (per-call overhead, not the model, dominates at small batches), up to `concurrent_calls`
of them at once: one call keeps only part of a multi-core model server busy. A call the server turns away (UNAVAILABLE:
TF Serving's answer when its batching queue is full) is tried again on its own, after a short jittered wait: failing
the batch for it would throw away every call that succeeded and send them all again, the most load when the server
has the least room for it.

Before any call, the classes of the batch are checked against the registry (one round trip, uncached): crops of a
class that is presence-only at this moment (switched while they were in flight) are not classified; their frames go
on with their face boxes and no emotions, as the detector sends them for such a class.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import grpc
import numpy as np
import redis
from prometheus_client import Counter, Histogram

from classpulse_classifier.serving_client import (
    EmotionModelClient,
    ModelOutput,
    ModelServerError,
    ModelServerUnavailable,
)
from classpulse_core.backoff import Backoff, Retries
from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.schemas import DetectedFaces, FrameResult
from classpulse_store.registry import ClassDirectory
from classpulse_stream import metrics
from classpulse_stream.stage import ContractBroken, Delivery, Emit, Outcome

STAGE = "classifier"
EMOTION_OFF_FRAMES = Counter(
    "classpulse_classifier_emotion_off_frames_total",
    "Frames whose crops were not classified: their class was presence-only when the batch was checked",
)
PREDICT_RETRIES = Counter(
    "classpulse_classifier_predict_retries_total",
    "Predict calls tried again within their batch after the model server turned them away",
)
FACES_PER_CALL = Histogram(
    "classpulse_classifier_faces_per_call",
    "Faces in each Predict call the model server answered",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
MIN_CALL_FACES = 32
"""Calls are split for concurrency only down to this size: below it the call overhead outweighs the overlap."""
CALL_TRIES = 4
CALL_BACKOFF = Backoff(initial_s=0.1, max_s=1.0, jitter=0.5)
CALL_RETRY_WINDOW_S = 10.0
"""No call of a batch is tried again later than this after the batch's first: the batch gives up as an outage (the
runner retries it with its own backoff) well within the consumer's max.poll.interval and the liveness window."""


class ClassifyFaces:
    def __init__(
        self,
        client: EmotionModelClient,
        classes: ClassDirectory,
        predictions_topic: str,
        max_batch_faces: int,
        concurrent_calls: int = 1,
        emotion_enabled: bool = True,
    ) -> None:
        """`emotion_enabled`: the deployment's switch (CLASSPULSE_EMOTION_ENABLED); off, nothing is classified."""
        self.client = client
        self.classes = classes
        self.emotion_enabled = emotion_enabled
        self.predictions_topic = predictions_topic
        self.max_batch_faces = max_batch_faces
        self.concurrent_calls = concurrent_calls
        self._calls = ThreadPoolExecutor(concurrent_calls, thread_name_prefix="predict")

    def __call__(self, deliveries: list[Delivery[DetectedFaces]]) -> list[Outcome]:
        messages = [delivery.message for delivery in deliveries]
        try:
            allowed = self.classes.emotion_allowed_now({m.class_id for m in messages}) if self.emotion_enabled else set()
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", repr(exc)) from exc
        inferred = [message for message in messages if message.class_id in allowed]
        if len(inferred) < len(messages):
            EMOTION_OFF_FRAMES.inc(len(messages) - len(inferred))
        crops = [message.crop_array() for message in inferred]
        probabilities, versions = self._predict(np.concatenate(crops) if crops else np.zeros((0, 48, 48, 1), np.uint8))
        model_versions = _versions_by_message(versions, [len(message.boxes) for message in inferred])
        metrics.FACES.labels(STAGE).inc(len(probabilities))
        now_ms = int(time.time() * 1000)
        outcomes: list[Outcome] = []
        start = 0
        for message in messages:
            count = len(message.boxes)
            emotions = message.class_id in allowed
            model_version = model_versions.pop(0) if emotions else None
            result = FrameResult(
                **message.identity(),
                completed_at_ms=now_ms,
                boxes=message.boxes,
                facing=message.facing,
                faces_beyond=message.faces_beyond,
                probabilities=probabilities[start : start + count].tolist() if emotions else None,
                model_version=model_version,
            )
            start += count if emotions else 0
            metrics.LATENCY_SECONDS.labels(STAGE).observe(max(0, now_ms - message.captured_at_ms) / 1000)
            outcomes.append(Emit(self.predictions_topic, result))
        return outcomes

    def check_contract(self) -> None:
        """The stage runner's check, at start and every so often: the served model, signature and shapes are the
        contract's (a rollout of another export stalls the stage instead of dead-lettering every frame)."""
        with _model_server_errors():
            self.client.check_contract()

    def _predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of every crop, and the model version that produced each."""
        if len(crops) == 0:
            return np.zeros((0, 7), dtype=np.float32), np.zeros(0, dtype=np.int64)
        # Equal calls (300 faces: 150 + 150, not 256 + 44): a small remainder call costs nearly a full one's overhead;
        # and at least as many calls as may run at once, while each keeps a useful size.
        calls = max(-(-len(crops) // self.max_batch_faces), min(self.concurrent_calls, len(crops) // MIN_CALL_FACES))
        retry_until = time.monotonic() + CALL_RETRY_WINDOW_S
        with _model_server_errors():
            outputs = list(self._calls.map(lambda part: self._call(part, retry_until), np.array_split(crops, calls)))
        # float32 softmax outputs can exceed 1 by an ulp; clip so the schema's [0, 1] bounds always hold.
        probabilities = np.clip(np.concatenate([output.probabilities for output in outputs]), 0.0, 1.0)
        versions = np.concatenate([np.full(len(output.probabilities), output.model_version) for output in outputs])
        return probabilities, versions

    def _call(self, crops: np.ndarray, retry_until: float) -> ModelOutput:
        """One Predict call, tried up to CALL_TRIES times while the server turns it away. A call that ran into its
        deadline is not tried again: the server may still be working on it, and it took the whole deadline already."""
        retries = Retries(CALL_BACKOFF)
        while True:
            try:
                output = self.client.predict_with_version(crops)
                FACES_PER_CALL.observe(len(crops))
                return output
            except ModelServerUnavailable as exc:
                wait_s = retries.failed()
                timed_out = exc.code == grpc.StatusCode.DEADLINE_EXCEEDED
                if timed_out or retries.attempt >= CALL_TRIES or time.monotonic() + wait_s > retry_until:
                    raise
            PREDICT_RETRIES.inc()
            time.sleep(wait_s)


def _versions_by_message(versions: np.ndarray, faces_per_message: list[int]) -> list[str | None]:
    """The model version of each message's faces (None for a message without faces). The calls of a batch may be
    answered by different versions (the server switched to a new export, a label moved, replicas differ): a frame
    whose faces two versions answered is no one version's result, and the batch is an outage, tried again whole."""
    by_message: list[str | None] = []
    start = 0
    for count in faces_per_message:
        answered = set(versions[start : start + count].tolist())
        if len(answered) > 1:
            raise DependencyUnavailable("model_server", f"versions {sorted(answered)} answered the faces of one frame")
        by_message.append(str(answered.pop()) if answered else None)
        start += count
    return by_message


@contextmanager
def _model_server_errors() -> Iterator[None]:
    """Model server failures as the runner's: transient ones an outage; the others (model or signature not found,
    an input refused, an output of another shape) a broken contract, since the crops are valid by their schema."""
    try:
        yield
    except ModelServerUnavailable as exc:
        raise DependencyUnavailable("model_server", str(exc)) from exc
    except ModelServerError as exc:
        raise ContractBroken("model_server", str(exc)) from exc
