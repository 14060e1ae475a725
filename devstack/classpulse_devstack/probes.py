"""Readiness probes: each answers "is this component ready to serve?" quickly, True or False, never raising.

A probe is called repeatedly while a component starts, and once per component by `status`; every network call in
here has a short timeout so that neither waits long on a component that is down.
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Callable

import redis

from classpulse_devstack.kafka_topics import kafka_admin

log = logging.getLogger(__name__)

Probe = Callable[[], bool]

TIMEOUT_S = 2.0


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            return True
    except OSError:
        return False


def _quietly(check: Callable[[], bool], what: str) -> bool:
    """Run `check`; any error means not ready (the component is still starting, or down)."""
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - whatever the client raises, the answer is "not ready yet"
        log.debug("%s not ready: %s", what, error)
        return False


def http_ok(url: str) -> Probe:
    def check() -> bool:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - the devstack's own http:// URLs
            return response.status == 200

    return lambda: _quietly(check, url)


def kafka_broker(port: int) -> Probe:
    """The broker answers metadata requests and has registered itself with the KRaft controller."""

    def check() -> bool:
        if not port_open(port):
            return False
        with kafka_admin(f"127.0.0.1:{port}", timeout_ms=int(TIMEOUT_S * 1000)) as admin:
            return bool(admin.describe_cluster()["brokers"])

    return lambda: _quietly(check, f"kafka on {port}")


def redis_with_module(port: int, module: str) -> Probe:
    """Redis answers PING and has `module` loaded (a server without RedisTimeSeries is no use to the aggregator)."""

    def check() -> bool:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=TIMEOUT_S) as client:
            client.ping()
            return any(entry[b"name"].decode().lower() == module for entry in client.module_list())

    return lambda: _quietly(check, f"redis on {port}")


def redis_replica_in_sync(port: int, module: str) -> Probe:
    """A replica with `module` loaded whose link to its primary is up (or the primary itself, after a failover):
    before its first sync, a WAIT for one replica would time out. One whose primary is not running is ready too: after
    a failover, an `up` starts the servers in their order and the primary may come after it (it syncs then)."""

    def check() -> bool:
        if not redis_with_module(port, module)():
            return False
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=TIMEOUT_S, decode_responses=True) as client:
            replication = client.info("replication")
        if replication["role"] == "master" or replication.get("master_link_status") == "up":
            return True
        return not port_open(int(replication["master_port"]), replication["master_host"])

    return lambda: _quietly(check, f"redis replica on {port}")


def sentinel_knows_primary(port: int, master_name: str) -> Probe:
    """The sentinel answers and names the primary it monitors."""

    def check() -> bool:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=TIMEOUT_S) as client:
            return client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name) is not None

    return lambda: _quietly(check, f"redis sentinel on {port}")


def model_available(port: int, model_name: str, version_label: str) -> Probe:
    """The model server answers GetModelMetadata for the version `version_label` names: TF Serving answers it only
    once that version is loaded (NOT_FOUND before), so a server serving some other version only (a canary, or a
    stand-in from before the label was configured, reused by `up`) is not called ready.

    Asked with the shared TF Serving API, `classpulse_tfserving` (generated modules, no TensorFlow runtime), not with
    the classifier's client: the devstack uses services' declared entry points only.
    """

    def available() -> bool:
        import grpc

        from classpulse_tfserving.tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = model_name
        request.model_spec.version_label = version_label
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=TIMEOUT_S)
        return True

    return lambda: _quietly(available, f"model server on {port}")
