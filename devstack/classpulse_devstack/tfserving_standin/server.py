"""Runs the stand-in: load the model, open the gRPC port, poll for new versions, stop cleanly on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from prometheus_client import start_http_server
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from classpulse_devstack.tfserving_standin.errors import ServingError
from classpulse_devstack.tfserving_standin.model_config import ModelConfig, read_model_config
from classpulse_devstack.tfserving_standin.model_manager import ModelManager
from classpulse_devstack.tfserving_standin.servable import configure_mixed_precision, configure_tensorflow_threads
from classpulse_devstack.tfserving_standin.services import ModelService, PredictionService

log = logging.getLogger(__name__)

SERVER_OPTIONS = (
    # TF Serving sets no message size limit either (INT_MAX); gRPC's default 4 MB would cut Predict batches short.
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # gRPC on Linux binds with SO_REUSEPORT, so a second server on the same port would silently share it.
    ("grpc.so_reuseport", 0),
)


@dataclass(frozen=True)
class StandinOptions:
    host: str
    port: int
    model_name: str | None
    model_base_path: Path | None
    """The model's name and base path: the highest version served, no labels. Or, instead, model_config_file."""
    model_config_file: Path | None
    model_config_poll_wait_s: float
    allow_labels_for_unavailable: bool
    monitoring_port: int | None
    poll_wait_s: float
    max_load_attempts: int
    grpc_max_threads: int
    intra_op_threads: int
    inter_op_threads: int
    shutdown_grace_s: float
    mixed_precision: str = "off"


def _stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        log.info("received signal, stopping the TF Serving stand-in", extra={"signal": signal.Signals(signum).name})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


def _grpc_server(manager: ModelManager, options: StandinOptions) -> grpc.Server:
    server = grpc.server(
        ThreadPoolExecutor(max_workers=options.grpc_max_threads, thread_name_prefix="grpc"), options=SERVER_OPTIONS
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    server.add_insecure_port(f"{options.host}:{options.port}")
    return server


def _first_config(options: StandinOptions) -> ModelConfig:
    if options.model_config_file is not None:
        return read_model_config(options.model_config_file)
    if options.model_name is None or options.model_base_path is None:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "no model: a model config file, or a name and a base path")
    return ModelConfig(options.model_name, options.model_base_path)


def run(options: StandinOptions) -> int:
    """Serves until SIGTERM or SIGINT (exit status 0); 1 if the model config is refused, the first versions cannot
    be loaded or the port bound."""
    configure_tensorflow_threads(options.intra_op_threads, options.inter_op_threads)
    bfloat16 = configure_mixed_precision(options.mixed_precision)
    log.info("model arithmetic chosen", extra={"mixed_precision": options.mixed_precision, "bfloat16": bfloat16})
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        config = _first_config(options)
        manager = ModelManager(config, options.max_load_attempts, options.allow_labels_for_unavailable)
        manager.apply_config(config)
    except ServingError as error:  # TF Serving, too, fails to start on a config it refuses
        log.error("Failed to start server", extra={"code": error.code.name, "error": error.message})
        return 1
    if not manager.load_first_version(stop, options.poll_wait_s):
        return 0 if stop.is_set() else 1
    try:
        server = _grpc_server(manager, options)
    except RuntimeError as error:  # grpcio raises this when the port cannot be bound
        log.error("cannot open the gRPC port", extra={"port": options.port, "error": str(error)})
        return 1
    if options.monitoring_port is not None:
        start_http_server(options.monitoring_port, addr=options.host)
    server.start()
    log.info(
        "Running gRPC ModelServer (local TF Serving stand-in)",
        extra={"address": f"{options.host}:{options.port}", "monitoring_port": options.monitoring_port},
    )
    manager.start_polling(options.poll_wait_s, options.model_config_file, options.model_config_poll_wait_s)

    stop.wait()
    log.info("refusing new RPCs, finishing in-flight ones", extra={"grace_s": options.shutdown_grace_s})
    server.stop(options.shutdown_grace_s).wait()
    manager.stop_polling(timeout_s=options.shutdown_grace_s)
    log.info("TF Serving stand-in stopped")
    return 0
