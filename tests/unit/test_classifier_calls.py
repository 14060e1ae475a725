"""How the classifier cuts a batch into Predict calls: equal parts, several in flight at once, answers put back in
the order of the faces, and a model server outage reported as a dependency outage (retry), not a failure."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from classpulse_classifier.serving_client import (
    ModelOutput,
    ModelRequestRejected,
    ModelServerError,
    ModelServerUnavailable,
    UnexpectedModelResponse,
)
from classpulse_classifier.stage import ClassifyFaces
from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.schemas import DetectedFaces
from classpulse_stream.stage import ContractBroken, Delivery

pytestmark = pytest.mark.unit


class _ModelServer:
    """Answers each face with probabilities that encode its first pixel, so the order can be checked; records
    call sizes and how many calls were in flight at most."""

    def __init__(self, error: ModelServerError | None = None) -> None:
        self.error = error
        self.sizes: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def predict_with_version(self, crops: np.ndarray) -> ModelOutput:
        with self._lock:
            self.sizes.append(len(crops))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.05)  # long enough for a second call to start meanwhile, if calls run concurrently
        with self._lock:
            self.in_flight -= 1
        if self.error:
            raise self.error
        probabilities = np.zeros((len(crops), 7), dtype=np.float32)
        probabilities[:, 0] = crops[:, 0, 0, 0] / 255
        probabilities[:, 6] = 1 - probabilities[:, 0]
        return ModelOutput(probabilities, 3)


class _Registry:
    """The class registry's answer to "which classes allow emotions now" (the real one reads Redis: see
    tests/integration/test_class_numbers.py)."""

    def __init__(self, presence_only: frozenset[str] = frozenset()) -> None:
        self.presence_only = presence_only

    def emotion_allowed_now(self, class_ids: set[str]) -> set[str]:
        return class_ids - self.presence_only


def _deliveries(faces_per_frame: list[int], class_id: str = "class") -> list[Delivery[DetectedFaces]]:
    deliveries, face = [], 0
    for sequence, count in enumerate(faces_per_frame):
        crops = np.zeros((count, 48, 48), dtype=np.uint8)
        crops[:, 0, 0] = np.arange(face, face + count) % 256
        face += count
        message = DetectedFaces(
            class_id=class_id, source_id="src", frame_id=f"src:{sequence}", sequence=sequence, captured_at_ms=1_000,
            detected_at_ms=1_001, frame_width=640, frame_height=480, boxes=[[0, 0, 48, 48]] * count,
            crops=crops.tobytes(),
        )
        deliveries.append(Delivery("classpulse.faces", 0, sequence, class_id.encode(), b"", message))
    return deliveries


def test_a_batch_is_cut_into_equal_calls_run_at_once_and_answered_in_order():
    server = _ModelServer()
    classify = ClassifyFaces(server, _Registry(), "classpulse.predictions", max_batch_faces=256, concurrent_calls=2)
    outcomes = classify(_deliveries([6] * 50))  # 300 faces
    assert sorted(server.sizes) == [150, 150]  # not 256 + 44
    assert server.most_in_flight == 2
    first_pixels = [round(p[0] * 255) for o in outcomes for p in o.message.probabilities]
    assert first_pixels == [face % 256 for face in range(300)]
    assert {o.message.model_version for o in outcomes} == {"3"}


def test_a_small_batch_is_split_for_concurrency_only_down_to_a_useful_call_size():
    server = _ModelServer()
    ClassifyFaces(server, _Registry(), "p", max_batch_faces=256, concurrent_calls=4)(_deliveries([5] * 20))  # 100 faces
    assert sorted(server.sizes) == [33, 33, 34]  # 4 calls would be under 32 faces each
    server.sizes.clear()
    ClassifyFaces(server, _Registry(), "p", max_batch_faces=256, concurrent_calls=4)(_deliveries([5] * 4))
    assert server.sizes == [20]


def test_one_call_at_a_time_when_told():
    server = _ModelServer()
    ClassifyFaces(server, _Registry(), "p", max_batch_faces=100, concurrent_calls=1)(_deliveries([6] * 50))
    assert server.sizes == [100, 100, 100] and server.most_in_flight == 1


@pytest.mark.parametrize(
    "error, broken",
    [
        (ModelServerUnavailable("Predict failed: UNAVAILABLE: connection refused", grpc.StatusCode.UNAVAILABLE), False),
        (ModelRequestRejected("Predict failed: NOT_FOUND: Servable not found", grpc.StatusCode.NOT_FOUND), True),
        (UnexpectedModelResponse("output 'probabilities' has shape [6, 8], expected [6, 7]"), True),
    ],
)
def test_model_server_errors_are_an_outage_or_a_broken_contract_never_the_messages_fault(error, broken):
    """A bad rollout (model or signature gone, another output shape) fails every message alike: dead-lettering them
    would drain the topic, so it stalls the stage like an outage (ContractBroken is a DependencyUnavailable)."""
    with pytest.raises(DependencyUnavailable) as raised:
        ClassifyFaces(_ModelServer(error), _Registry(), "p", max_batch_faces=256, concurrent_calls=2)(_deliveries([6] * 50))
    assert raised.value.dependency == "model_server"
    assert isinstance(raised.value, ContractBroken) is broken


def test_crops_of_a_class_switched_to_presence_only_are_not_classified():
    server = _ModelServer()
    batch = _deliveries([3, 2], class_id="on") + _deliveries([4], class_id="off") + _deliveries([1], class_id="on")
    outcomes = ClassifyFaces(server, _Registry(frozenset({"off"})), "p", max_batch_faces=256)(batch)
    assert sum(server.sizes) == 6  # only the crops of the class whose emotions are on reached the model
    results = [outcome.message for outcome in outcomes]
    assert [len(r.boxes) for r in results] == [3, 2, 4, 1]
    assert [r.probabilities is None for r in results] == [False, False, True, False]
    assert results[2].model_version is None and results[3].probabilities[0][0] == pytest.approx(0.0)


def test_a_presence_only_deployment_classifies_nothing():
    server = _ModelServer()
    outcomes = ClassifyFaces(server, _Registry(), "p", max_batch_faces=256, emotion_enabled=False)(_deliveries([2, 3]))
    assert server.sizes == [] and [outcome.message.probabilities for outcome in outcomes] == [None, None]
