"""gRPC client of the emotion model on TensorFlow Serving (PredictionService.Predict and GetModelMetadata,
ModelService.GetModelStatus).

Model contract: model "emotion", signatures "serving_default" (flip averaging) and "emotion_single_pass" (the
classifier's default), input "faces" (uint8 [N,48,48,1]) and output "probabilities" (float32 [N,7]); a model that names
its outputs (signature "emotion_labels", classpulse_core.labels) names them in the pipeline's order. Failures come
out as one of two exception types, so that the caller knows what to do:
`ModelServerUnavailable` (retry with backoff) or `ModelRequestRejected` (the same request fails again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import grpc
import numpy as np

from classpulse_core.backoff import Backoff, Retries
from classpulse_core.labels import EMOTIONS, LABELS_OUTPUT, LABELS_SIGNATURE
from classpulse_core.schemas import CROP_SIDE, PROBABILITY_SUM_TOLERANCE
from classpulse_tfserving.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from classpulse_tfserving.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

log = logging.getLogger(__name__)

FACE_SHAPE = (CROP_SIDE, CROP_SIDE, 1)
EMOTION_COUNT = len(EMOTIONS)

# Codes after which the same request may well succeed later: the server is down or restarting, overloaded, or slow.
# ABORTED is there too because gRPC defines it as "retry at a higher level".
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)

_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""A batch of 4096 faces is 9.4 MB; gRPC's default 4 MB receive limit would cut batches at about 1700 faces."""

CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    # Keepalive pings find a dead connection during a call. TF Serving keeps gRPC's server defaults, which count a
    # ping on a connection without calls, or one sooner than 5 minutes after the last without data, as a strike and
    # hang up after two: so pings only while calls are in flight. An idle channel is re-checked by the next call.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Reconnect soon after the model server comes back (gRPC's default backoff grows to 2 minutes).
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # With a dns:/// target naming a headless Service, calls are spread over every model-server replica rather than
    # pinned to the one the channel first reached.
    ("grpc.lb_policy_name", "round_robin"),
)


class ModelServerError(Exception):
    """A failed call to the model server; `code` is the gRPC status, or None for a reply that breaks the contract."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class ModelServerUnavailable(ModelServerError):
    """Transient: the server is down, overloaded or too slow. Retry with backoff."""


class ModelRequestRejected(ModelServerError):
    """Permanent: the server refused this request (bad input, unknown model or signature). Do not retry it."""


class UnexpectedModelResponse(ModelServerError):
    """Permanent: the server answered, but not with the contract's output (wrong model exported?)."""


def error_for_status(code: grpc.StatusCode, details: str | None, call: str) -> ModelServerError:
    """The typed exception for a failed RPC: transient codes become ModelServerUnavailable, the rest rejections."""
    error_type = ModelServerUnavailable if code in TRANSIENT_CODES else ModelRequestRejected
    return error_type(f"{call} failed: {code.name}: {details}", code)


class ModelOutput(NamedTuple):
    probabilities: np.ndarray
    """float32 [N, 7], rows in the order Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral."""
    model_version: int
    """The version that answered: it changes when the server switches to a newly exported model."""


def check_signature(signatures: get_model_metadata_pb2.SignatureDefMap, signature_name: str, input_key: str, output_key: str) -> None:
    """UnexpectedModelResponse unless `signature_name` takes `input_key` as uint8 [N,48,48,1] and gives `output_key`
    as float32 [N,7] (N: any batch size, -1 in the signature). The label order is not in a SignatureDef: the
    model's LABELS_SIGNATURE gives it (check_labels)."""
    if signature_name not in signatures.signature_def:
        raise UnexpectedModelResponse(f"no signature {signature_name!r}; the model has {sorted(signatures.signature_def)}")
    signature = signatures.signature_def[signature_name]
    for role, tensors, key, dtype, shape in (
        ("input", signature.inputs, input_key, types_pb2.DT_UINT8, [-1, *FACE_SHAPE]),
        ("output", signature.outputs, output_key, types_pb2.DT_FLOAT, [-1, EMOTION_COUNT]),
    ):
        if key not in tensors:
            raise UnexpectedModelResponse(f"signature {signature_name!r} has no {role} {key!r}: {sorted(tensors)}")
        info = tensors[key]
        found = [dim.size for dim in info.tensor_shape.dim]
        if info.dtype != dtype or info.tensor_shape.unknown_rank or found[1:] != shape[1:] or found[:1] != [-1]:
            raise UnexpectedModelResponse(
                f"{role} {key!r} of {signature_name!r} is {types_pb2.DataType.Name(info.dtype)} {found}, "
                f"expected {types_pb2.DataType.Name(dtype)} {shape}"
            )


def parse_labels(response: predict_pb2.PredictResponse) -> list[str]:
    """The label names of the model's LABELS_SIGNATURE answer; UnexpectedModelResponse if they are not there."""
    if LABELS_OUTPUT not in response.outputs:
        raise UnexpectedModelResponse(f"{LABELS_SIGNATURE!r} answered without output {LABELS_OUTPUT!r}: {sorted(response.outputs)}")
    tensor = response.outputs[LABELS_OUTPUT]
    if tensor.dtype != types_pb2.DT_STRING:
        raise UnexpectedModelResponse(f"output {LABELS_OUTPUT!r} is {types_pb2.DataType.Name(tensor.dtype)}, not DT_STRING")
    try:
        return [value.decode() for value in tensor.string_val]
    except UnicodeDecodeError as exc:
        raise UnexpectedModelResponse(f"output {LABELS_OUTPUT!r} holds a label that is not UTF-8: {exc}") from exc


def check_labels(labels: list[str]) -> None:
    """UnexpectedModelResponse unless the model numbers its outputs as the pipeline does (labels.EMOTIONS): a model
    exported with another order would put every probability under the wrong emotion."""
    if labels != list(EMOTIONS):
        raise UnexpectedModelResponse(f"the model's outputs are {labels}, the pipeline reads them as {list(EMOTIONS)}")


def build_predict_request(
    crops: np.ndarray,
    model_name: str,
    signature_name: str,
    input_key: str,
    output_key: str,
    version_label: str | None = None,
) -> predict_pb2.PredictRequest:
    """A PredictRequest carrying `crops` (uint8 [N,48,48,1]) as raw little-endian bytes in tensor_content.

    tensor_content is one bytes field the server reads in place; the per-element int_val alternative costs a varint
    per pixel on both sides.
    """
    if crops.dtype != np.uint8:
        raise ValueError(f"crops must be uint8, got {crops.dtype}")
    if crops.ndim != 4 or crops.shape[1:] != FACE_SHAPE:
        raise ValueError(f"crops must have shape [N,{','.join(map(str, FACE_SHAPE))}], got {list(crops.shape)}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version_label:
        request.model_spec.version_label = version_label
    request.output_filter.append(output_key)
    tensor = request.inputs[input_key]
    tensor.dtype = types_pb2.DT_UINT8
    tensor.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in crops.shape)
    tensor.tensor_content = np.ascontiguousarray(crops).tobytes()
    return request


def _float_values(tensor: tensor_pb2.TensorProto, count: int) -> np.ndarray:
    """The float32 elements of `tensor`, from tensor_content or from float_val.

    TF Serving writes float_val (Tensor::AsProtoField); tf.make_tensor_proto writes tensor_content. A float_val
    shorter than the shape is TensorFlow's compressed form: the last value repeats (as in tf.make_ndarray).
    """
    if tensor.tensor_content:
        if len(tensor.tensor_content) % 4:
            size = len(tensor.tensor_content)
            raise UnexpectedModelResponse(f"tensor_content of {size} bytes is not a whole number of float32s")
        return np.frombuffer(tensor.tensor_content, dtype="<f4").astype(np.float32, copy=False)
    values = np.asarray(tensor.float_val, dtype=np.float32)
    if 0 < values.size < count:
        values = np.pad(values, (0, count - values.size), mode="edge")
    return values


@contextmanager
def _reading_reply(call: str) -> Iterator[None]:
    """Any failure to read a reply as UnexpectedModelResponse: whatever trips the parser (a corrupt or proxied reply,
    an export of another kind) breaks the contract alike, and is never the fault of the crops that were sent."""
    try:
        yield
    except ModelServerError:
        raise
    except Exception as exc:
        raise UnexpectedModelResponse(f"the reply to {call} cannot be read: {exc!r}") from exc


def parse_probabilities(response: predict_pb2.PredictResponse, output_key: str, batch_size: int) -> np.ndarray:
    """The [batch_size, 7] float32 probabilities in `response`; UnexpectedModelResponse if they are not there."""
    if output_key not in response.outputs:
        raise UnexpectedModelResponse(f"Predict response has no output {output_key!r}: {sorted(response.outputs)}")
    tensor = response.outputs[output_key]
    if tensor.dtype != types_pb2.DT_FLOAT:
        raise UnexpectedModelResponse(f"output {output_key!r} is {types_pb2.DataType.Name(tensor.dtype)}, not DT_FLOAT")
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    expected = [batch_size, EMOTION_COUNT]
    if shape != expected:
        raise UnexpectedModelResponse(f"output {output_key!r} has shape {shape}, expected {expected}")
    values = _float_values(tensor, batch_size * EMOTION_COUNT)
    if values.size != batch_size * EMOTION_COUNT:
        raise UnexpectedModelResponse(f"output {output_key!r} holds {values.size} values for shape {shape}")
    probabilities = values.reshape(batch_size, EMOTION_COUNT)
    sums = probabilities.sum(axis=1)
    if not np.all(np.abs(sums - 1) <= PROBABILITY_SUM_TOLERANCE) or probabilities.min(initial=0.0) < 0:
        worst = sums[np.argmax(np.abs(sums - 1))] if len(sums) else 1.0
        raise UnexpectedModelResponse(
            f"output {output_key!r} is not probabilities (a face's sum {worst:.4g}, the least value "
            f"{probabilities.min(initial=0.0):.4g}): an export whose output is scores or logits?"
        )
    return probabilities


class EmotionModelClient:
    """One gRPC channel to the model server, shared by all calls (it is thread-safe); every call has a deadline."""

    def __init__(
        self,
        target: str = "127.0.0.1:8500",
        model_name: str = "emotion",
        signature_name: str = "serving_default",
        input_key: str = "faces",
        output_key: str = "probabilities",
        timeout_s: float = 2.0,
        version_label: str | None = None,
    ) -> None:
        self.target = target
        self.version_label = version_label
        self.model_name = model_name
        self.signature_name = signature_name
        self.input_key = input_key
        self.output_key = output_key
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._unlabelled_model_seen = False
        # Versions whose signature and labels passed the check: immutable once exported, so checked once each.
        self._contract_versions: set[int] = set()

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """float32 [N,7] emotion probabilities for uint8 [N,48,48,1] face crops."""
        return self.predict_with_version(crops).probabilities

    def predict_with_version(self, crops: np.ndarray) -> ModelOutput:
        request = build_predict_request(
            crops, self.model_name, self.signature_name, self.input_key, self.output_key, self.version_label
        )
        call = f"Predict of {len(crops)} faces"
        try:
            response = self._predictions.Predict(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise error_for_status(error.code(), error.details(), call) from error
        with _reading_reply(call):
            probabilities = parse_probabilities(response, self.output_key, len(crops))
            version: int = response.model_spec.version.value
        # A version the server switched to (a new export, a label moved to a canary or back, a replica on another
        # version) is checked before its answers are used: probabilities in another label order would pass every
        # check of their own and go under the wrong emotions.
        if version not in self._contract_versions:
            self.check_version(version)
        return ModelOutput(probabilities, version)

    def check_contract(self) -> int:
        """The version the server would answer with, once its metadata shows the contract's signature, input and
        output; ModelServerUnavailable when it cannot be asked, a ModelServerError that is not when it breaks it."""
        request = self._metadata_request()
        if self.version_label:
            request.model_spec.version_label = self.version_label
        return self._check_metadata(request)

    def check_version(self, version: int) -> None:
        """check_contract of one version of the model, whichever the label or the server's latest is."""
        request = self._metadata_request()
        request.model_spec.version.value = version
        self._check_metadata(request)

    def _metadata_request(self) -> get_model_metadata_pb2.GetModelMetadataRequest:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        request.metadata_field.append("signature_def")
        return request

    def _metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            response: get_model_metadata_pb2.GetModelMetadataResponse = self._predictions.GetModelMetadata(
                request, timeout=self.timeout_s
            )
        except grpc.RpcError as error:
            details = error.details()
            if request.model_spec.version_label and error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                details = f"{details} (the model server's config gives no version the label {request.model_spec.version_label!r})"
            raise error_for_status(error.code(), details, "GetModelMetadata") from error
        return response

    def labelled_version(self) -> int:
        """The version the server's label `version_label` names now, as it resolves the label for a call (TF
        Serving's GetModelStatus takes no label): NOT_FOUND while that version is not loaded, INVALID_ARGUMENT for a
        label its config does not give."""
        request = self._metadata_request()
        request.model_spec.version_label = self.version_label or ""
        response = self._metadata(request)
        with _reading_reply("GetModelMetadata"):
            version: int = response.model_spec.version.value
        return version

    def _check_metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest) -> int:
        response = self._metadata(request)
        with _reading_reply("GetModelMetadata"):
            if response.model_spec.name != self.model_name:
                raise UnexpectedModelResponse(f"asked for model {self.model_name!r}, {response.model_spec.name!r} answered")
            signatures = get_model_metadata_pb2.SignatureDefMap()
            if not response.metadata["signature_def"].Unpack(signatures):
                raise UnexpectedModelResponse("GetModelMetadata answered without a SignatureDefMap")
            check_signature(signatures, self.signature_name, self.input_key, self.output_key)
            version: int = response.model_spec.version.value
        if LABELS_SIGNATURE in signatures.signature_def:
            check_labels(self.model_labels(version))
        elif not self._unlabelled_model_seen:
            self._unlabelled_model_seen = True
            log.warning(
                "the model names no labels: its outputs are taken in the pipeline's order",
                extra={"model": self.model_name, "version": version, "signature": LABELS_SIGNATURE},
            )
        self._contract_versions.add(version)
        return version

    def model_labels(self, version: int) -> list[str]:
        """The label names `version` of the model gives its outputs, from its LABELS_SIGNATURE."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = LABELS_SIGNATURE
        request.model_spec.version.value = version  # the version whose metadata was just checked
        request.output_filter.append(LABELS_OUTPUT)
        try:
            response = self._predictions.Predict(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise error_for_status(error.code(), error.details(), f"Predict of {LABELS_SIGNATURE!r}") from error
        with _reading_reply(f"Predict of {LABELS_SIGNATURE!r}"):
            return parse_labels(response)

    def model_status(self) -> dict[int, str]:
        """{version: state name} of every version the server knows, e.g. {1: "END", 2: "AVAILABLE"}."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        try:
            response = self._models.GetModelStatus(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise error_for_status(error.code(), error.details(), "GetModelStatus") from error
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return {status.version: state_name(status.state) for status in response.model_version_status}

    def wait_until_available(self, timeout_s: float, poll_interval_s: float = 0.5) -> int:
        """Waits until the version this client calls is AVAILABLE and returns it: the one `version_label` names (its
        metadata, which TF Serving answers only for a loaded version), else the highest AVAILABLE;
        ModelServerUnavailable on timeout, and at once a ModelRequestRejected for a label the server's config does not
        give. Another version AVAILABLE is no answer: a classifier on `stable` would be declared ready while only the
        canary serves.

        Until then the server may be unreachable (TF Serving opens its port only after the first load) or may not
        know the model or the labelled version yet (NOT_FOUND while they load); both are waited out.
        """
        deadline = time.monotonic() + timeout_s
        retries = Retries(Backoff(initial_s=poll_interval_s, max_s=poll_interval_s))  # steady: a model loads in seconds
        while True:
            try:
                if self.version_label:
                    return self.labelled_version()  # its metadata answers once that version serves: NOT_FOUND till then
                states = self.model_status()
                available = [version for version, state in states.items() if state == "AVAILABLE"]
                if available:
                    return max(available)
                last_seen = f"versions {states}"
            except ModelServerError as error:
                if not isinstance(error, ModelServerUnavailable) and error.code != grpc.StatusCode.NOT_FOUND:
                    raise
                last_seen = str(error)
            if time.monotonic() >= deadline:
                raise ModelServerUnavailable(
                    f"model {self.model_name!r} at {self.target} not AVAILABLE after {timeout_s:g} s; "
                    f"last: {last_seen}",
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            delay = retries.failed()
            log.debug("waiting for the model server", extra={"target": self.target, "last_seen": last_seen, "retry_in_s": delay})
            time.sleep(delay)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EmotionModelClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
