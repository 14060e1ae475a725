"""A PredictRequest checked against a SignatureDef, with TF Serving's status codes and, where it has one, its wording.

TF Serving lets the TensorFlow session reject a wrong dtype or shape; the stand-in checks both up front against the
SignatureDef, so that a wrong request gets INVALID_ARGUMENT naming the input instead of a message from graph code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from classpulse_devstack.tfserving_standin.errors import ServingError


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _dtype_name(dtype: int) -> str:
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return f"DataType({dtype})"


def _shape_text(shape: tensor_shape_pb2.TensorShapeProto) -> str:
    return "<unknown rank>" if shape.unknown_rank else "[" + ",".join(str(dim.size) for dim in shape.dim) + "]"


def _shape_fits(expected: tensor_shape_pb2.TensorShapeProto, actual: tensor_shape_pb2.TensorShapeProto) -> bool:
    """True if `actual` is one of the shapes `expected` allows (-1 is any size, unknown rank is any shape)."""
    if expected.unknown_rank:
        return True
    if len(expected.dim) != len(actual.dim):
        return False
    return all(want.size < 0 or want.size == got.size for want, got in zip(expected.dim, actual.dim, strict=True))


def _check_input_keys(signature: meta_graph_pb2.SignatureDef, sent: set[str]) -> None:
    expected = set(signature.inputs)
    if len(sent) != len(expected):
        raise _invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    unknown = sorted(sent - expected)
    if unknown:
        raise _invalid(
            f"input tensor alias not found in signature: {','.join(unknown)}. "
            f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}."
        )


def _decode_input(alias: str, info: meta_graph_pb2.TensorInfo, tensor: tensor_pb2.TensorProto) -> np.ndarray:
    if tensor.dtype != info.dtype:
        raise _invalid(
            f"Expects input '{alias}' to be {_dtype_name(info.dtype)} but {_dtype_name(tensor.dtype)} is provided"
        )
    if not _shape_fits(info.tensor_shape, tensor.tensor_shape):
        raise _invalid(
            f"input '{alias}' has shape {_shape_text(tensor.tensor_shape)}, "
            f"incompatible with the signature's {_shape_text(info.tensor_shape)}"
        )
    try:
        return tf.make_ndarray(tensor)
    except (ValueError, TypeError) as error:  # e.g. tensor_content of the wrong length for the shape
        raise _invalid(f"input '{alias}' does not decode as {_shape_text(tensor.tensor_shape)}: {error}") from error


def decode_inputs(
    signature: meta_graph_pb2.SignatureDef, inputs: Mapping[str, tensor_pb2.TensorProto]
) -> dict[str, np.ndarray]:
    """The request's input tensors as arrays, after checking their keys, dtypes and shapes against `signature`."""
    _check_input_keys(signature, set(inputs))
    return {alias: _decode_input(alias, signature.inputs[alias], tensor) for alias, tensor in inputs.items()}


def select_outputs(signature: meta_graph_pb2.SignatureDef, output_filter: Iterable[str]) -> list[str]:
    """The output aliases to return: those in `output_filter`, or all of the signature's when it is empty."""
    selected: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise _invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in selected:
            raise _invalid(f"duplicate output tensor alias: {alias}")
        selected.append(alias)
    return selected or list(signature.outputs)
