"""The model-server client's request building, response parsing and error typing, without a server."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import numpy as np
import pytest

from classpulse_classifier.serving_client import (
    ModelRequestRejected,
    ModelServerUnavailable,
    UnexpectedModelResponse,
    build_predict_request,
    check_labels,
    check_signature,
    error_for_status,
    get_model_metadata_pb2,
    parse_labels,
    parse_probabilities,
    predict_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from classpulse_core.labels import EMOTIONS

pytestmark = pytest.mark.unit


def _crops(count: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(count, 48, 48, 1), dtype=np.uint8)


def _response(probabilities: np.ndarray, as_float_val: bool) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    tensor = response.outputs["probabilities"]
    tensor.dtype = types_pb2.DT_FLOAT
    for size in probabilities.shape:
        tensor.tensor_shape.dim.add(size=size)
    if as_float_val:
        tensor.float_val.extend(probabilities.ravel().tolist())
    else:
        tensor.tensor_content = probabilities.astype("<f4").tobytes()
    return response


def test_request_carries_the_crops_as_uint8_tensor_content() -> None:
    crops = _crops(3)
    request = build_predict_request(crops, "emotion", "serving_default", "faces", "probabilities")
    assert (request.model_spec.name, request.model_spec.signature_name) == ("emotion", "serving_default")
    assert list(request.output_filter) == ["probabilities"]
    tensor = request.inputs["faces"]
    assert tensor.dtype == types_pb2.DT_UINT8
    assert [dim.size for dim in tensor.tensor_shape.dim] == [3, 48, 48, 1]
    assert tensor.tensor_content == crops.tobytes()
    assert not tensor.int_val


def test_request_decodes_to_the_same_array_in_tensorflow() -> None:
    import tensorflow as tf  # only here: the rest of the client's tests run without TensorFlow loaded

    crops = _crops(2)
    request = build_predict_request(crops, "emotion", "serving_default", "faces", "probabilities")
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["faces"]), crops)


def test_request_from_a_non_contiguous_view_carries_its_values() -> None:
    crops = _crops(4)[::2]
    request = build_predict_request(crops, "emotion", "serving_default", "faces", "probabilities")
    assert request.inputs["faces"].tensor_content == np.ascontiguousarray(crops).tobytes()


@pytest.mark.parametrize(
    "crops",
    [
        np.zeros((2, 48, 48, 1), np.float32),
        np.zeros((2, 48, 48), np.uint8),
        np.zeros((2, 64, 64, 1), np.uint8),
        np.zeros((48, 48, 1), np.uint8),
    ],
    ids=["float32", "no-channel", "wrong-size", "no-batch"],
)
def test_request_refuses_crops_outside_the_contract(crops: np.ndarray) -> None:
    with pytest.raises(ValueError):
        build_predict_request(crops, "emotion", "serving_default", "faces", "probabilities")


@pytest.mark.parametrize("as_float_val", [False, True], ids=["tensor_content", "float_val"])
def test_response_parses_from_either_encoding(as_float_val: bool) -> None:
    probabilities = np.random.default_rng(1).dirichlet(np.ones(7), size=5).astype(np.float32)
    parsed = parse_probabilities(_response(probabilities, as_float_val), "probabilities", 5)
    assert parsed.dtype == np.float32
    np.testing.assert_array_equal(parsed, probabilities)


def test_response_with_compressed_float_val_repeats_the_last_value() -> None:
    response = _response(np.zeros((1, 7), np.float32), as_float_val=True)
    del response.outputs["probabilities"].float_val[:]
    response.outputs["probabilities"].float_val.extend([0.4, 0.1])
    expected = np.array([[0.4] + [0.1] * 6], np.float32)
    np.testing.assert_array_equal(parse_probabilities(response, "probabilities", 1), expected)


@pytest.mark.parametrize("scores", [[2.0, -1.0, 0.5, 3.0, 0.0, -2.0, 1.0], [1.0] * 7, [0.1] * 7], ids=["logits", "ones", "tenths"])
def test_an_output_that_is_not_probabilities_breaks_the_contract(scores: list[float]) -> None:
    """An export whose signature answers logits or unnormalised scores: each face would count as several."""
    response = _response(np.array([scores, [1 / 7] * 7], np.float32), as_float_val=False)
    with pytest.raises(UnexpectedModelResponse, match="not probabilities"):
        parse_probabilities(response, "probabilities", 2)


@pytest.mark.parametrize(
    ("output_key", "batch_size", "breakage"),
    [
        ("logits", 2, None),
        ("probabilities", 3, None),
        ("probabilities", 2, "dtype"),
        ("probabilities", 2, "values"),
        ("probabilities", 2, "stray-byte"),
    ],
    ids=["missing-output", "wrong-batch", "wrong-dtype", "too-few-values", "not-whole-float32s"],
)
def test_response_outside_the_contract_is_unexpected(output_key: str, batch_size: int, breakage: str | None) -> None:
    response = _response(np.zeros((2, 7), np.float32), as_float_val=False)
    tensor = response.outputs["probabilities"]
    if breakage == "dtype":
        tensor.dtype = types_pb2.DT_DOUBLE
    elif breakage == "values":
        tensor.tensor_content = tensor.tensor_content[:-4]
    elif breakage == "stray-byte":
        tensor.tensor_content += b"\x00"
    with pytest.raises(UnexpectedModelResponse):
        parse_probabilities(response, output_key, batch_size)


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (grpc.StatusCode.UNAVAILABLE, ModelServerUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ModelServerUnavailable),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ModelServerUnavailable),
        (grpc.StatusCode.INVALID_ARGUMENT, ModelRequestRejected),
        (grpc.StatusCode.NOT_FOUND, ModelRequestRejected),
        (grpc.StatusCode.FAILED_PRECONDITION, ModelRequestRejected),
    ],
)
def test_status_codes_split_into_transient_and_permanent(code: grpc.StatusCode, error_type: type) -> None:
    error = error_for_status(code, "details from the server", "Predict")
    assert type(error) is error_type
    assert error.code == code
    assert "details from the server" in str(error)


def test_importing_the_client_does_not_load_the_tensorflow_runtime() -> None:
    probe = (
        "import json, sys; import classpulse_classifier.serving_client; "
        "print(json.dumps([name for name in sys.modules if name.startswith('tensorflow.python')]))"
    )
    runtime_modules = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout)
    assert runtime_modules == []


def test_a_version_label_selects_the_labelled_version():
    crops = np.zeros((2, 48, 48, 1), dtype=np.uint8)
    labelled = build_predict_request(crops, "emotion", "serving_default", "faces", "probabilities", version_label="canary")
    assert labelled.model_spec.version_label == "canary"
    unlabelled = build_predict_request(crops, "emotion", "serving_default", "faces", "probabilities")
    assert not unlabelled.model_spec.HasField("version_label")


def _signatures(input_dtype: int = types_pb2.DT_UINT8, output_shape: tuple[int, ...] = (-1, 7)) -> get_model_metadata_pb2.SignatureDefMap:
    signatures = get_model_metadata_pb2.SignatureDefMap()
    signature = signatures.signature_def["emotion_single_pass"]
    for tensors, key, dtype, shape in (
        (signature.inputs, "faces", input_dtype, (-1, 48, 48, 1)),
        (signature.outputs, "probabilities", types_pb2.DT_FLOAT, output_shape),
    ):
        tensors[key].dtype = dtype
        tensors[key].tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape)
    return signatures


def test_the_contracts_signature_passes_the_check():
    check_signature(_signatures(), "emotion_single_pass", "faces", "probabilities")


@pytest.mark.parametrize(
    "signatures, signature_name, output_key, complaint",
    [
        (_signatures(), "serving_default", "probabilities", "no signature 'serving_default'"),
        (_signatures(), "emotion_single_pass", "logits", "no output 'logits'"),
        (_signatures(input_dtype=types_pb2.DT_FLOAT), "emotion_single_pass", "probabilities", "input 'faces'"),
        (_signatures(output_shape=(-1, 8)), "emotion_single_pass", "probabilities", r"DT_FLOAT \[-1, 8\]"),
        (_signatures(output_shape=(64, 7)), "emotion_single_pass", "probabilities", r"\[64, 7\]"),
    ],
)
def test_a_signature_outside_the_contract_is_refused(signatures, signature_name, output_key, complaint):
    with pytest.raises(UnexpectedModelResponse, match=complaint):
        check_signature(signatures, signature_name, "faces", output_key)


def _labels_response(values: list[bytes], dtype: int = types_pb2.DT_STRING) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    tensor = response.outputs["labels"]
    tensor.dtype = dtype
    tensor.tensor_shape.dim.add(size=len(values))
    tensor.string_val.extend(values)
    return response


def test_labels_in_the_pipelines_order_pass() -> None:
    check_labels(parse_labels(_labels_response([name.encode() for name in EMOTIONS])))


@pytest.mark.parametrize(
    "labels",
    [
        [*EMOTIONS[1:], EMOTIONS[0]],  # another order
        [name.capitalize() for name in EMOTIONS],  # other names
        list(EMOTIONS[:6]),  # fewer
    ],
)
def test_labels_otherwise_are_unexpected(labels: list[str]) -> None:
    with pytest.raises(UnexpectedModelResponse, match="the pipeline reads them as"):
        check_labels(labels)


def test_labels_that_are_not_strings_are_unexpected() -> None:
    with pytest.raises(UnexpectedModelResponse, match="not DT_STRING"):
        parse_labels(_labels_response([], dtype=types_pb2.DT_INT32))
    with pytest.raises(UnexpectedModelResponse, match="without output 'labels'"):
        parse_labels(predict_pb2.PredictResponse())


def test_labels_that_are_not_utf8_are_unexpected() -> None:
    with pytest.raises(UnexpectedModelResponse, match="not UTF-8"):
        parse_labels(_labels_response([b"angry", b"\xff\xfe"]))
