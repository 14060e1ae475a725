"""The gRPC servicers: TF Serving's PredictionService and ModelService over one ModelManager."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from classpulse_devstack.tfserving_standin.errors import ServingError
from classpulse_devstack.tfserving_standin.metrics import PREDICT_BATCH_SIZE, REQUESTS_IN_FLIGHT, record_request
from classpulse_devstack.tfserving_standin.model_config import from_proto
from classpulse_devstack.tfserving_standin.model_manager import ModelManager

log = logging.getLogger(__name__)

SIGNATURE_DEF_FIELD = "signature_def"
"""The only GetModelMetadata field TF Serving knows."""

Response = TypeVar("Response", bound=Message)


def _answer(api: str, context: grpc.ServicerContext, handle: Callable[[], Response]) -> Response:
    """Runs one RPC's handler: counts and times it, and turns a ServingError into that gRPC status."""
    started = time.perf_counter()
    with REQUESTS_IN_FLIGHT.track_inprogress():
        try:
            response = handle()
        except ServingError as error:
            code, message = error.code, error.message
        except Exception as error:  # a bug in the stand-in: answer INTERNAL, keep serving
            log.exception("request failed unexpectedly", extra={"api": api})
            code, message = grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}"
        else:
            record_request(api, grpc.StatusCode.OK, time.perf_counter() - started)
            return response
    record_request(api, code, time.perf_counter() - started)
    log.info("request refused", extra={"api": api, "code": code.name, "detail": message})
    context.abort(code, message)


def _model_spec(request: Message) -> model_pb2.ModelSpec:
    if not request.HasField("model_spec"):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    return request.model_spec


def _unimplemented(api: str, context: grpc.ServicerContext) -> Message:
    def refuse() -> Message:
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED, f"{api} is not implemented by the local TF Serving stand-in (Predict is)"
        )

    return _answer(api, context, refuse)


def _batch_size(request: predict_pb2.PredictRequest) -> int:
    """Dimension 0 of the first input (all inputs of a batch share it); 1 for a scalar or no input."""
    first = next(iter(request.inputs.values()), None)
    return first.tensor_shape.dim[0].size if first is not None and first.tensor_shape.dim else 1


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        return _answer("Predict", context, lambda: self._predict(request))

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return _answer("GetModelMetadata", context, lambda: self._metadata(request))

    def Classify(self, request: Message, context: grpc.ServicerContext) -> Message:
        return _unimplemented("Classify", context)

    def Regress(self, request: Message, context: grpc.ServicerContext) -> Message:
        return _unimplemented("Regress", context)

    def MultiInference(self, request: Message, context: grpc.ServicerContext) -> Message:
        return _unimplemented("MultiInference", context)

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        response = self._manager.resolve(_model_spec(request)).predict(request)
        PREDICT_BATCH_SIZE.observe(_batch_size(request))
        return response

    def _metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        model_spec = _model_spec(request)
        if not request.metadata_field:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        servable = self._manager.resolve(model_spec)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signature_defs.signature_def[name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return _answer("GetModelStatus", context, lambda: self._status(request))

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        return _answer("HandleReloadConfigRequest", context, lambda: self._reload(request))

    def _reload(self, request: model_management_pb2.ReloadConfigRequest) -> model_management_pb2.ReloadConfigResponse:
        # A relative base_path of a config sent over gRPC is the server's working directory's, as TF Serving's is.
        self._manager.reload_config(from_proto(request.config, Path.cwd()))
        return model_management_pb2.ReloadConfigResponse()

    def _status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        model_spec = _model_spec(request)
        statuses = self._manager.version_statuses() if model_spec.name == self._manager.model_name else {}
        if model_spec.HasField("version"):
            version = model_spec.version.value
            if version not in statuses:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {model_spec.name}"
                )
            versions = [version]
        else:
            if not statuses:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {model_spec.name}")
            versions = sorted(statuses)
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.extend(statuses[version] for version in versions)
        return response
