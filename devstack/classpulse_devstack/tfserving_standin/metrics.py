"""Prometheus metrics of the stand-in, under its own names: the real TF Serving exports :tensorflow:serving:* ones."""

from __future__ import annotations

import grpc
from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("tfserving_standin_requests", "RPCs answered, by API and gRPC status code", ["api", "status"])
REQUEST_LATENCY = Histogram(
    "tfserving_standin_request_latency_seconds",
    "Time to answer one RPC, by API",
    ["api"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REQUESTS_IN_FLIGHT = Gauge("tfserving_standin_requests_in_flight", "RPCs being answered right now")
PREDICT_BATCH_SIZE = Histogram(
    "tfserving_standin_predict_batch_size",
    "Rows (dimension 0 of the inputs) of answered Predict requests",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
SERVED_VERSION = Gauge(
    "tfserving_standin_served_version",
    "Highest version of the model being served: the one a call naming no version or label gets",
    ["model_name"],
)


def record_request(api: str, code: grpc.StatusCode, seconds: float) -> None:
    REQUESTS.labels(api, code.name).inc()
    REQUEST_LATENCY.labels(api).observe(seconds)
