"""How the classifier cuts a batch into Predict calls: equal parts, several in flight at once, answers put back in
the order of the faces, and a model server outage reported as a dependency outage (retry), not a failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import numpy as np
import pytest
from prometheus_client import REGISTRY

from classpulse_classifier.serving_client import (
    EmotionModelClient,
    ModelOutput,
    ModelRequestRejected,
    ModelServerError,
    ModelServerUnavailable,
    UnexpectedModelResponse,
)
from classpulse_classifier.stage import CALL_TRIES, ClassifyFaces
from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.labels import LABELS_OUTPUT, LABELS_SIGNATURE
from classpulse_core.schemas import DetectedFaces
from classpulse_stream.stage import ContractBroken, Delivery
from classpulse_tfserving.tensorflow.core.framework import types_pb2
from classpulse_tfserving.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

pytestmark = pytest.mark.unit


class _ModelServer:
    """Answers each face with probabilities that encode its first pixel, so the order can be checked; records
    call sizes and how many calls were in flight at most. With an `error`, raises it instead for the calls whose
    numbers (0 for the first) are in `failing_calls`, or for every call. `versions`: the model version that answers
    each call, by number (the last one from there on)."""

    def __init__(
        self,
        error: ModelServerError | None = None,
        failing_calls: frozenset[int] | None = None,
        versions: tuple[int, ...] = (3,),
    ) -> None:
        self.error = error
        self.failing_calls = failing_calls
        self.versions = versions
        self.sizes: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def predict_with_version(self, crops: np.ndarray) -> ModelOutput:
        with self._lock:
            call = len(self.sizes)
            self.sizes.append(len(crops))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.05)  # long enough for a second call to start meanwhile, if calls run concurrently
        with self._lock:
            self.in_flight -= 1
        if self.error and (self.failing_calls is None or call in self.failing_calls):
            raise self.error
        probabilities = np.zeros((len(crops), 7), dtype=np.float32)
        probabilities[:, 0] = crops[:, 0, 0, 0] / 255
        probabilities[:, 6] = 1 - probabilities[:, 0]
        return ModelOutput(probabilities, self.versions[min(call, len(self.versions) - 1)])


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


def test_each_frame_names_the_version_that_answered_its_faces():
    """The server switched to a new version between the calls of a batch (a new export, a label moved)."""
    server = _ModelServer(versions=(8, 9))
    outcomes = ClassifyFaces(server, _Registry(), "p", max_batch_faces=150, concurrent_calls=1)(_deliveries([6] * 50))
    assert server.sizes == [150, 150]
    assert [outcome.message.model_version for outcome in outcomes] == ["8"] * 25 + ["9"] * 25


def test_a_frame_whose_faces_two_versions_answered_is_an_outage_tried_again_whole():
    """Frame 16's faces are 96-101: the end of the first call (version 8) and the start of the second (version 9)."""
    server = _ModelServer(versions=(8, 9))
    classify = ClassifyFaces(server, _Registry(), "p", max_batch_faces=100, concurrent_calls=1)
    with pytest.raises(DependencyUnavailable, match=r"versions \[8, 9\] answered the faces of one frame"):
        classify(_deliveries([6] * 50))


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


_TURNED_AWAY = ModelServerUnavailable("Predict failed: UNAVAILABLE: the batch queue is full", grpc.StatusCode.UNAVAILABLE)


def test_a_call_the_server_turned_away_is_tried_again_alone_and_the_others_are_kept():
    """Failing the batch would send every call again: the most load when the server has the least room."""
    server = _ModelServer(_TURNED_AWAY, failing_calls=frozenset({1, 3}))
    outcomes = ClassifyFaces(server, _Registry(), "p", max_batch_faces=100, concurrent_calls=2)(_deliveries([6] * 50))
    assert server.sizes == [100] * 5  # three calls, and the two tries turned away each tried again
    first_pixels = [round(p[0] * 255) for o in outcomes for p in o.message.probabilities]
    assert first_pixels == [face % 256 for face in range(300)]


def test_each_answered_call_is_measured_in_faces():
    """classpulse_classifier_faces_per_call: what the dashboard's "Faces per Predict call" charts, wherever the model
    server runs (TF Serving exports no batch size of its own)."""
    def counted() -> tuple[float, float]:
        return (REGISTRY.get_sample_value("classpulse_classifier_faces_per_call_count") or 0.0,
                REGISTRY.get_sample_value("classpulse_classifier_faces_per_call_sum") or 0.0)

    calls_before, faces_before = counted()
    server = _ModelServer(_TURNED_AWAY, failing_calls=frozenset({1}))
    ClassifyFaces(server, _Registry(), "p", max_batch_faces=100, concurrent_calls=2)(_deliveries([6] * 50))
    calls, faces = counted()
    assert (calls - calls_before, faces - faces_before) == (3, 300)  # three calls of 100; the try turned away is none


@pytest.mark.parametrize(
    "error, tries",
    [
        (_TURNED_AWAY, CALL_TRIES),
        (ModelServerUnavailable("Predict failed: DEADLINE_EXCEEDED", grpc.StatusCode.DEADLINE_EXCEEDED), 1),
    ],
    ids=["turned-away", "timed-out"],
)
def test_a_call_that_keeps_failing_is_an_outage_after_its_tries(error, tries):
    """A call that timed out is not tried again: the server may still be working on it, and it took its deadline."""
    server = _ModelServer(error)
    with pytest.raises(DependencyUnavailable):
        ClassifyFaces(server, _Registry(), "p", max_batch_faces=256, concurrent_calls=1)(_deliveries([6]))
    assert len(server.sizes) == tries


def test_crops_of_a_class_switched_to_presence_only_are_not_classified():
    server = _ModelServer()
    batch = _deliveries([3, 2], class_id="on") + _deliveries([4], class_id="off") + _deliveries([1], class_id="on")
    outcomes = ClassifyFaces(server, _Registry(frozenset({"off"})), "p", max_batch_faces=256)(batch)
    assert sum(server.sizes) == 6  # only the crops of the class whose emotions are on reached the model
    results = [outcome.message for outcome in outcomes]
    assert [len(r.boxes) for r in results] == [3, 2, 4, 1]
    assert [r.probabilities is None for r in results] == [False, False, True, False]
    assert results[2].model_version is None and results[3].probabilities[0][0] == pytest.approx(0.0)


def test_the_faces_beyond_those_a_message_carries_go_on_to_be_counted_classified_or_not():
    server = _ModelServer()
    batch = [replace(delivery, message=delivery.message.model_copy(update={"faces_beyond": 44}))
             for delivery in _deliveries([2], class_id="on") + _deliveries([3], class_id="off")]
    outcomes = ClassifyFaces(server, _Registry(frozenset({"off"})), "p", max_batch_faces=256)(batch)
    assert server.sizes == [2]
    assert [(outcome.message.faces_beyond, len(outcome.message.boxes)) for outcome in outcomes] == [(44, 2), (44, 3)]


def test_a_presence_only_deployment_classifies_nothing():
    server = _ModelServer()
    outcomes = ClassifyFaces(server, _Registry(), "p", max_batch_faces=256, emotion_enabled=False)(_deliveries([2, 3]))
    assert server.sizes == [] and [outcome.message.probabilities for outcome in outcomes] == [None, None]


class _UnreadableReplies(prediction_service_pb2_grpc.PredictionServiceServicer):
    """A model server, or a proxy in front of it, whose replies are valid gRPC but cannot be read as the contract's:
    probabilities one byte longer than whole float32s, a label that is not UTF-8, or signatures that do not parse."""

    def __init__(self, breakage: str) -> None:
        self.breakage = breakage

    def Predict(self, request, context):  # noqa: N802 (the gRPC method's name)
        response = predict_pb2.PredictResponse()
        if request.model_spec.signature_name == LABELS_SIGNATURE:
            labels = response.outputs[LABELS_OUTPUT]
            labels.dtype = types_pb2.DT_STRING
            labels.string_val.extend([b"angry", b"\xff\xfe"])
            return response
        faces = request.inputs["faces"].tensor_shape.dim[0].size
        probabilities = response.outputs["probabilities"]
        probabilities.dtype = types_pb2.DT_FLOAT
        probabilities.tensor_shape.dim.add(size=faces)
        probabilities.tensor_shape.dim.add(size=7)
        probabilities.tensor_content = np.full((faces, 7), 1 / 7, "<f4").tobytes() + b"\x00"
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        signatures = get_model_metadata_pb2.SignatureDefMap()
        contract = signatures.signature_def["serving_default"]
        for tensor, dtype, shape in ((contract.inputs["faces"], types_pb2.DT_UINT8, (-1, 48, 48, 1)),
                                     (contract.outputs["probabilities"], types_pb2.DT_FLOAT, (-1, 7))):
            tensor.dtype = dtype
            for size in shape:
                tensor.tensor_shape.dim.add(size=size)
        signatures.signature_def[LABELS_SIGNATURE].outputs[LABELS_OUTPUT].dtype = types_pb2.DT_STRING
        response.metadata["signature_def"].Pack(signatures)
        if self.breakage == "signatures":
            response.metadata["signature_def"].value = b"\xff\xff\xff"
        return response


@pytest.fixture
def unreadable_model_server(request) -> Iterator[EmotionModelClient]:
    server = grpc.server(ThreadPoolExecutor(2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_UnreadableReplies(request.param), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with EmotionModelClient(f"127.0.0.1:{port}") as client:
        yield client
    server.stop(grace=None)


@pytest.mark.parametrize("unreadable_model_server", ["signatures", "labels"], indirect=True)
def test_a_contract_check_answered_unreadably_stalls_the_stage(unreadable_model_server):
    """Not an exception out of the runner's loop: that would end the process, and every restart would end alike."""
    classify = ClassifyFaces(unreadable_model_server, _Registry(), "p", max_batch_faces=256)
    with pytest.raises(ContractBroken, match="model_server"):
        classify.check_contract()


@pytest.mark.parametrize("unreadable_model_server", ["probabilities"], indirect=True)
def test_probabilities_answered_unreadably_stall_the_stage_rather_than_fail_the_messages(unreadable_model_server):
    """Failing the messages would dead-letter every one of them after its retries: the whole topic, drained."""
    classify = ClassifyFaces(unreadable_model_server, _Registry(), "p", max_batch_faces=256)
    with pytest.raises(ContractBroken, match="not a whole number of float32s"):
        classify(_deliveries([2, 3]))
