"""One loaded version of the model, a "servable" in TF Serving's terms: its SavedModel, signatures, Predict, warm-up."""

from __future__ import annotations

from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from classpulse_devstack.tfserving_standin import computes_bfloat16
from classpulse_devstack.tfserving_standin.errors import ServingError
from classpulse_devstack.tfserving_standin.signatures import decode_inputs, select_outputs

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000
"""TF Serving refuses to load a version whose warm-up file holds more records than this."""

_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
"""TensorFlow's error codes are gRPC's canonical codes: tf.errors.OpError.error_code -> grpc.StatusCode."""


def configure_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """Sizes TensorFlow's thread pools; only takes effect before TensorFlow runs its first op."""
    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)


def configure_mixed_precision(mode: str) -> bool:
    """Whether the versions loaded from now on compute in bfloat16: with "bfloat16" (or "auto" where it pays), a
    float32 SavedModel's graphs are rewritten by TensorFlow's oneDNN auto-mixed-precision pass, as TF Serving's
    `--mixed_precision=bfloat16` rewrites them (its session config's `auto_mixed_precision_onednn_bfloat16`). An
    export stays float32, portable to every CPU, and each server computes in what its own CPU runs fastest: on a CPU
    with AVX512-BF16 but no AMX the rewrite makes the emotion network 1.8x slower, with AMX or on AMD Zen 4 about 2.5x
    faster (docs/performance.md, "Arithmetic chosen by the model server's CPU")."""
    bfloat16 = computes_bfloat16(mode)
    tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": bfloat16})
    return bfloat16


def read_signature_defs(export_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the MetaGraph tagged "serve", as saved_model.pb has them (what TF Serving reports)."""
    saved_model = saved_model_pb2.SavedModel.FromString((export_dir / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{export_dir} has no MetaGraph tagged {SERVE_TAG!r}")


class Servable:
    def __init__(self, name: str, version: int, export_dir: Path) -> None:
        self.name = name
        self.version = version
        self.export_dir = export_dir
        self.signature_defs = read_signature_defs(export_dir)
        self._signatures = tf.saved_model.load(str(export_dir), tags=[SERVE_TAG]).signatures

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in self._signatures:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.'
            )
        signature_def = self.signature_defs[signature_name]
        arrays = decode_inputs(signature_def, request.inputs)
        aliases = select_outputs(signature_def, request.output_filter)
        try:
            outputs = self._signatures[signature_name](**{alias: tf.constant(array) for alias, array in arrays.items()})
        except tf.errors.OpError as error:
            raise ServingError(_GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), error.message) from error

        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature_name
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
        return response

    def replay_warmup_requests(self) -> int:
        """Runs the PredictionLog records of assets.extra/tf_serving_warmup_requests, if any; returns how many.

        As in TF Serving, a failing warm-up request fails the load: the version never becomes AVAILABLE.
        """
        path = self.export_dir / WARMUP_FILE
        if not path.exists():
            return 0
        records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
        if len(records) > MAX_WARMUP_RECORDS:
            raise ValueError(f"{path} holds {len(records)} warm-up records, more than the {MAX_WARMUP_RECORDS} allowed")
        for index, record in enumerate(records):
            prediction_log = prediction_log_pb2.PredictionLog.FromString(record)
            log_type = prediction_log.WhichOneof("log_type")
            if log_type != "predict_log":
                raise ValueError(f"warm-up record {index} is a {log_type}; the stand-in replays predict_log only")
            try:
                self.predict(prediction_log.predict_log.request)
            except ServingError as error:
                raise ValueError(f"warm-up record {index} failed: {error.code.name}: {error.message}") from error
        return len(records)
