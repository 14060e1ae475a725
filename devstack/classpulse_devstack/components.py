"""The registry: every component of the local stack, in start order. Adding a component is adding one entry here."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from classpulse_devstack import kafka_broker, model_server, probes, prometheus_server, redis_exporter, redis_server
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.kafka_topics import ensure_pipeline_topics

INFRA = "infra"
MODEL = "model"
SERVICES = "services"

MODEL_NAME = "emotion"
MODEL_SERVER_MONITORING_PORT = 8501
"""The stand-in's Prometheus metrics (plus the stack's port offset), on the port where TF Serving serves its REST API
and metrics: deploy/prometheus/prometheus.yml scrapes it."""
SERVICE_PORTS: Mapping[str, int] = {
    "ingest": 8001,
    "detector": 8002,
    "classifier": 8003,
    "aggregator": 8004,
    "api": 8000,
}
"""Default ports, in start order: each stage before the one that consumes its output; the api last, it only reads.
A stack with a port offset (config.port_offset) adds it to each."""


@dataclass(frozen=True)
class Component:
    name: str
    group: str
    command: list[str]
    port: int
    """The port it listens on: used to notice a copy the stack did not start."""
    address: str
    ready: probes.Probe
    env: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    """Runs before each start (config files, data dirs, first-time formatting)."""
    after_ready: Callable[[], None] | None = None
    """Runs after every `up` that finds it ready, started now or before (idempotent set-up such as topics)."""
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 20.0


def registry(config: DevstackConfig) -> list[Component]:
    return [
        Component(
            name="kafka",
            group=INFRA,
            command=kafka_broker.broker_command(config),
            port=config.kafka_port,
            address=f"{config.kafka_bootstrap} (controller :{config.kafka_controller_port})",
            ready=probes.kafka_broker(config.kafka_port),
            prepare=partial(kafka_broker.prepare, config),
            after_ready=partial(ensure_pipeline_topics, config),
            start_timeout_s=120.0,
            # A clean shutdown flushes and closes every segment, so the next start skips log recovery.
            stop_timeout_s=60.0,
        ),
        _redis(config, "redis", redis_server.server_command(config), config.redis_port,
               probes.redis_with_module(config.redis_port, "timeseries"), partial(redis_server.prepare, config)),
        *(_redis_failover(config) if config.redis_sentinel else ()),
        _http_server(config.redis_exporter_port, "redis-exporter", redis_exporter.server_command(config), "/health",
                     about=f"/metrics (of redis :{config.redis_port})"),
        _http_server(config.prometheus_port, "prometheus", prometheus_server.server_command(config), "/-/ready",
                     prepare=partial(prometheus_server.prepare, config)),
        Component(
            name="model-server",
            group=MODEL,
            command=_model_server_command(config),
            port=config.model_server_port,
            address=f"127.0.0.1:{config.model_server_port} (gRPC, model {MODEL_NAME!r})",
            ready=probes.model_available(config.model_server_port, MODEL_NAME, model_server.CLASSIFIER_VERSION_LABEL),
            prepare=partial(model_server.prepare, config),
            # Loading TensorFlow and the SavedModel takes a while on two busy cores.
            start_timeout_s=240.0,
        ),
        *(_service(config, name, port + config.port_offset) for name, port in SERVICE_PORTS.items()),
    ]


def _http_server(
    port: int, name: str, command: list[str], ready_path: str, about: str = "", prepare: Callable[[], None] | None = None
) -> Component:
    """A server of the stack's own that answers HTTP on `port`, ready once `ready_path` answers 200."""
    address = f"http://127.0.0.1:{port}"
    return Component(
        name=name,
        group=INFRA,
        command=command,
        port=port,
        address=address + about,
        ready=probes.http_ok(address + ready_path),
        prepare=prepare,
    )


def _redis(
    config: DevstackConfig, name: str, command: list[str], port: int, ready: probes.Probe, prepare: Callable[[], None]
) -> Component:
    return Component(
        name=name,
        group=INFRA,
        command=command,
        port=port,
        address=f"redis://127.0.0.1:{port}",
        ready=ready,
        env=redis_server.server_env(config),
        prepare=prepare,
        stop_timeout_s=30.0,
    )


def _redis_failover(config: DevstackConfig) -> list[Component]:
    """Two replicas of the primary and three sentinels watching it (CLASSPULSE_DEVSTACK_REDIS_SENTINEL=1)."""
    replicas = [
        _redis(config, name, redis_server.replica_command(config, name), port,
               probes.redis_replica_in_sync(port, "timeseries"), partial(redis_server.prepare_replica, config, name, port))
        for name, port in zip(redis_server.REPLICAS, config.redis_replica_ports, strict=True)
    ]
    sentinels = [
        Component(
            name=f"redis-sentinel-{index}",
            group=INFRA,
            command=redis_server.sentinel_command(config, index),
            port=port,
            address=f"127.0.0.1:{port} (sentinel of {redis_server.MASTER_NAME!r})",
            ready=probes.sentinel_knows_primary(port, redis_server.MASTER_NAME),
            env=redis_server.server_env(config),
            prepare=partial(redis_server.prepare_sentinel, config, index),
        )
        for index, port in enumerate(config.redis_sentinel_ports, start=1)
    ]
    return [*replicas, *sentinels]


def _model_server_command(config: DevstackConfig) -> list[str]:
    """The TF Serving stand-in by default; CLASSPULSE_DEVSTACK_MODEL_SERVER_COMMAND runs another server instead
    (e.g. a real tensorflow_model_server) as long as it serves the same gRPC API on the same port."""
    override = os.environ.get("CLASSPULSE_DEVSTACK_MODEL_SERVER_COMMAND")
    if override:
        return shlex.split(override)
    return [
        config.python,
        "-m",
        "classpulse_devstack.tfserving_standin",
        "--port",
        str(config.model_server_port),
        "--model-config-file",
        str(model_server.rendered_config_file(config)),
        "--model-config-file-poll-wait-seconds",
        str(model_server.CONFIG_POLL_WAIT_S),
        # As the deployment's TF Serving does: the labels name versions that load only after the config is read.
        "--allow-version-labels-for-unavailable-models",
        "--monitoring-port",
        str(MODEL_SERVER_MONITORING_PORT + config.port_offset),
        "--mixed-precision",
        config.model_server_mixed_precision,
    ]


REPLICA_PORT_STEP = 100
"""Replica n of a service listens on its port + n * 100 (say 8102 for a second detector of the default stack)."""


def service_replica(config: DevstackConfig, name: str, index: int) -> Component:
    """Another copy of service `name` (index >= 1), named `<name>-<index>`, in the same consumer group as the first:
    starting and stopping one makes the group rebalance, as scaling a Deployment does."""
    port = SERVICE_PORTS[name] + config.port_offset + index * REPLICA_PORT_STEP
    return dataclasses.replace(_service(config, name, port), name=f"{name}-{index}")


def _service(config: DevstackConfig, name: str, port: int) -> Component:
    return Component(
        name=name,
        group=SERVICES,
        command=[config.python, "-m", f"classpulse_{name}"],
        port=port,
        address=f"http://127.0.0.1:{port}",
        ready=probes.http_ok(f"http://127.0.0.1:{port}/readyz"),
        # Every service gets every address (each reads the ones it needs), so the stack's port overrides reach
        # the services and a developer's own CLASSPULSE_* settings cannot point them at another server.
        env={
            "CLASSPULSE_HTTP_PORT": str(port),
            "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap,
            "CLASSPULSE_REDIS_URL": f"redis://127.0.0.1:{config.redis_port}/0",
            "CLASSPULSE_MODEL_SERVER": f"127.0.0.1:{config.model_server_port}",
            "CLASSPULSE_ADMIN_API_KEY": config.admin_api_key(),
            # Where a browser reaches the API and the student page (LTI launches send it to both).
            "CLASSPULSE_PUBLIC_URL": f"http://127.0.0.1:{SERVICE_PORTS['api'] + config.port_offset}",
            "CLASSPULSE_STUDENT_PAGE_URL": f"http://127.0.0.1:{SERVICE_PORTS['ingest'] + config.port_offset}",
            # Empty without sentinels: a developer's own setting must not send the services to another stack's.
            "CLASSPULSE_REDIS_SENTINELS": redis_server.sentinel_addresses(config) if config.redis_sentinel else "",
        },
    )
