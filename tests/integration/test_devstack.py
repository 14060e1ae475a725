"""The local stack: the real Kafka broker and redis-stack-server it runs, its topics, its durability across
down/up, Prometheus with the committed rules, Redis's exporter, and how the stack starts and stops processes."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaTimeoutError
from prometheus_client.parser import text_string_to_metric_families

from classpulse_devstack import probes
from classpulse_devstack.components import Component
from classpulse_devstack.config import DAY_MS, MINUTE_MS, REPO_ROOT, DevstackConfig
from classpulse_devstack.kafka_topics import partition_counts
from classpulse_devstack.stack import Stack, StackError
from free_ports import free_port

pytestmark = pytest.mark.integration


def _consume(bootstrap: str, topic: str, count: int, timeout_s: float = 20.0) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of the first `count` records of `topic`, read from the beginning."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=int(timeout_s * 1000)
    )
    try:
        records = []
        for record in consumer:
            records.append((record.partition, record.key, record.value))
            if len(records) == count:
                break
        return records
    finally:
        consumer.close()


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=10)
    finally:
        producer.close()


# --- Kafka -----------------------------------------------------------------------------------------------------


def test_pipeline_topics_have_their_partition_counts(kafka_admin):
    expected = {
        "classpulse.frames": 12,
        "classpulse.faces": 12,
        "classpulse.predictions": 12,
        "classpulse.frames.dlq": 1,
        "classpulse.faces.dlq": 1,
        "classpulse.predictions.dlq": 1,
    }
    assert partition_counts(kafka_admin, list(expected)) == expected


def test_image_topics_keep_minutes_and_predictions_a_day(infra, kafka_admin):
    names = ["classpulse.frames", "classpulse.faces.dlq", "classpulse.predictions"]
    described = kafka_admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    retention = {name: int(described["topic"][name]["retention.ms"]["value"]) for name in names}
    assert retention == {
        "classpulse.frames": infra.config.image_retention_ms,
        "classpulse.faces.dlq": infra.config.image_retention_ms,
        "classpulse.predictions": DAY_MS,
    }
    assert infra.config.image_retention_ms <= 10 * MINUTE_MS


def test_keyed_messages_round_trip_through_the_broker(kafka_bootstrap, topic_factory):
    topic = topic_factory(4)
    sent = [(f"class-{i % 3}".encode(), f"frame-{i}".encode()) for i in range(30)]
    _produce(kafka_bootstrap, topic, sent)

    received = _consume(kafka_bootstrap, topic, len(sent))

    assert sorted((key, value) for _, key, value in received) == sorted(sent)
    partitions_by_key: dict[bytes, set[int]] = {}
    for partition, key, _ in received:
        partitions_by_key.setdefault(key, set()).add(partition)
    # Keyed by class id: all of one class's messages land in one partition, so they stay in order.
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())


def test_the_broker_does_not_create_topics_on_first_use(kafka_bootstrap, kafka_admin):
    topic = f"test.never-created.{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_block_ms=2000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(topic, b"lost").get(timeout=5)
    finally:
        producer.close()
    assert topic not in kafka_admin.list_topics()


# --- Redis -----------------------------------------------------------------------------------------------------


@pytest.fixture
def series_key(redis_client):
    """A unique key prefix for one test's series, deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(redis_client.scan_iter(f"{prefix}*"))
    if keys:
        redis_client.delete(*keys)


def test_timeseries_add_and_range(redis_client, series_key):
    series = redis_client.ts()
    for timestamp_ms, value in [(1_000, 0.2), (2_000, 0.5), (3_000, 0.9)]:
        series.add(series_key, timestamp_ms, value)

    assert series.range(series_key, 1_500, 3_000) == [(2_000, 0.5), (3_000, 0.9)]


def test_compaction_rule_averages_each_closed_bucket(redis_client, series_key):
    raw, per_second = f"{series_key}:raw", f"{series_key}:1s"
    series = redis_client.ts()
    series.create(raw)
    series.create(per_second)
    series.createrule(raw, per_second, "avg", 1_000)
    for timestamp_ms, value in [(0, 1.0), (400, 3.0), (1_000, 10.0), (1_500, 20.0), (2_100, 5.0)]:
        series.add(raw, timestamp_ms, value)

    # A bucket is written when the first sample of a later bucket arrives; the one at 2000 ms is still open.
    assert series.range(per_second, "-", "+") == [(0, 2.0), (1_000, 15.0)]


# --- Durability ------------------------------------------------------------------------------------------------


@pytest.fixture
def private_kafka_and_redis(devstack, tmp_path):
    """A Kafka and a Redis of this test's own (free ports, data under tmp_path): restarting them disturbs nobody's
    running stack."""
    config = dataclasses.replace(
        devstack.config,
        run_dir=tmp_path,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
    )
    stack = Stack(config)
    components = stack.select("kafka,redis")
    assert stack.up(components) == ["kafka", "redis"]
    yield stack, components
    stack.down(components)


def test_written_data_survives_down_and_up(private_kafka_and_redis):
    stack, kafka_and_redis = private_kafka_and_redis
    bootstrap, redis_port = stack.config.kafka_bootstrap, stack.config.redis_port
    topic = "classpulse.predictions"
    messages = [(f"class-{i}".encode(), f"prediction-{i}".encode()) for i in range(5)]
    _produce(bootstrap, topic, messages)
    with redis.Redis(host="127.0.0.1", port=redis_port) as client:
        client.set("plain", "kept")
        client.ts().add("series", 1_000, 42.5)

    assert stack.down(kafka_and_redis) == ["redis", "kafka"]
    assert [status.state for status in stack.status(kafka_and_redis)] == ["stopped", "stopped"]
    assert stack.up(kafka_and_redis) == ["kafka", "redis"]

    with redis.Redis(host="127.0.0.1", port=redis_port) as client:
        assert client.get("plain") == b"kept"
        assert client.ts().range("series", "-", "+") == [(1_000, 42.5)]
    received = _consume(bootstrap, topic, len(messages))
    assert sorted((key, value) for _, key, value in received) == sorted(messages)


# --- The stack's own behaviour ---------------------------------------------------------------------------------


def test_up_leaves_running_components_alone(infra):
    kafka_and_redis = infra.select("kafka,redis")
    pids_before = [status.pid for status in infra.status(kafka_and_redis)]

    assert infra.up(kafka_and_redis) == []
    assert [status.pid for status in infra.status(kafka_and_redis)] == pids_before


def test_status_command_shows_ready_components(infra):
    result = subprocess.run(
        [sys.executable, "-m", "classpulse_devstack", "status", "--only", "kafka,redis"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"kafka", "redis"}
    assert all(row[2] in ("ready", "external") for row in rows.values())


def test_an_unknown_component_name_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "classpulse_devstack", "up", "--only", "kafak"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "unknown component or group ['kafak']" in result.stderr


def _scratch_stack(devstack: Stack, tmp_path: Path, component: Component) -> Stack:
    """A stack of one throwaway component, with its pid files and logs under tmp_path."""
    return Stack(dataclasses.replace(devstack.config, run_dir=tmp_path), components=[component])


def _listener(port: int, *, ignore_sigterm: bool = False) -> list[str]:
    """A real process that listens on `port` until killed (optionally deaf to SIGTERM)."""
    code = "import signal, socket, time\n"
    if ignore_sigterm:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += f"server = socket.create_server(('127.0.0.1', {port}))\nprint('listening', flush=True)\ntime.sleep(600)\n"
    return [sys.executable, "-c", code]


def test_a_component_that_exits_at_start_fails_with_its_log(devstack, tmp_path):
    port = free_port()
    crashing = Component(
        name="crasher", group="test", port=port, address="-", ready=lambda: False,
        command=[sys.executable, "-c", "print('cannot load the model'); raise SystemExit(3)"],
    )
    stack = _scratch_stack(devstack, tmp_path, crashing)

    with pytest.raises(StackError, match="(?s)crasher exited before it was ready.*cannot load the model"):
        stack.up(stack.components)
    assert stack.status(stack.components)[0].state == "stopped"


def test_a_component_never_ready_is_stopped_after_its_start_timeout(devstack, tmp_path):
    port = free_port()
    never_ready = Component(
        name="stuck", group="test", port=port, address="-", ready=lambda: False, command=_listener(port),
        start_timeout_s=2.0,
    )
    stack = _scratch_stack(devstack, tmp_path, never_ready)

    with pytest.raises(StackError, match="(?s)stuck not ready after 2 s.*listening"):
        stack.up(stack.components)
    assert not probes.port_open(port)


def test_down_kills_a_process_that_ignores_sigterm_after_its_timeout(devstack, tmp_path):
    port = free_port()
    stubborn = Component(
        name="stubborn", group="test", port=port, address="-", ready=lambda: probes.port_open(port),
        command=_listener(port, ignore_sigterm=True), stop_timeout_s=1.0,
    )
    stack = _scratch_stack(devstack, tmp_path, stubborn)
    assert stack.up(stack.components) == ["stubborn"]

    started_at = time.monotonic()
    assert stack.down(stack.components) == ["stubborn"]

    assert 1.0 <= time.monotonic() - started_at < 10.0
    assert not probes.port_open(port)
    assert stack.status(stack.components)[0].state == "stopped"


# --- Prometheus and the model server ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Prometheus is not installed (devstack install)")
def test_alert_rules_fire_when_a_service_or_the_model_server_is_down():
    result = subprocess.run(
        ["promtool", "test", "rules", str(REPO_ROOT / "deploy/prometheus/tests/availability_test.yml")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Prometheus is not installed (devstack install)")
def test_prometheus_scrapes_the_services_and_loads_the_rules(devstack):
    prometheus = devstack.select("prometheus")
    started = devstack.up(prometheus)
    base = f"http://127.0.0.1:{devstack.config.prometheus_port}/api/v1"
    try:
        # Ready means the web API serves; target discovery fills in a moment later.
        deadline = time.monotonic() + 15
        while len(targets := httpx.get(f"{base}/targets", timeout=5).json()["data"]["activeTargets"]) < 8:
            assert time.monotonic() < deadline, f"Prometheus discovered {len(targets)} of 8 scrape targets in 15 s"
            time.sleep(0.5)
        rules = httpx.get(f"{base}/rules", timeout=5).json()["data"]["groups"]
    finally:
        devstack.down([c for c in prometheus if c.name in started])

    scraped = {target["labels"].get("service", target["labels"]["job"]): target["scrapeUrl"] for target in targets}
    offset = devstack.config.port_offset
    assert scraped == {
        "prometheus": f"http://127.0.0.1:{9090 + offset}/metrics",
        "api": f"http://127.0.0.1:{8000 + offset}/metrics",
        "ingest": f"http://127.0.0.1:{8001 + offset}/metrics",
        "detector": f"http://127.0.0.1:{8002 + offset}/metrics",
        "classifier": f"http://127.0.0.1:{8003 + offset}/metrics",
        "aggregator": f"http://127.0.0.1:{8004 + offset}/metrics",
        "model-server": f"http://127.0.0.1:{8501 + offset}/monitoring/prometheus/metrics",
        "redis": f"http://127.0.0.1:{9121 + offset}/metrics",
    }
    alerts = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"ServiceDown", "ModelServerDown", "RedisDown"} <= alerts


@pytest.mark.skipif(
    importlib.util.find_spec("classpulse_devstack.tfserving_standin") is None
    or not any((REPO_ROOT / "models" / "emotion").glob("[0-9]*/saved_model.pb")),
    reason="no TF Serving stand-in, or no exported model version to serve, yet",
)
def test_model_server_reports_the_emotion_model_available(devstack):
    model_server = devstack.select("model-server")
    started = devstack.up(model_server)
    try:
        assert devstack.status(model_server)[0].state in ("ready", "external")
    finally:
        devstack.down([c for c in model_server if c.name in started])


# --- Redis's exporter ------------------------------------------------------------------------------------------


needs_the_exporter_and_prometheus = pytest.mark.skipif(
    shutil.which("prometheus-redis-exporter") is None or shutil.which("prometheus") is None,
    reason="the Redis exporter or Prometheus is not installed (devstack install)",
)


def _free_port_and_the_next() -> int:
    """A free port whose next one is free too: a primary's, and its replica's (config.redis_replica_port)."""
    for _ in range(20):
        port = free_port()
        if not probes.port_open(port + 1):
            return port
    raise AssertionError("found no two free ports in a row")


@pytest.fixture
def watched_redis_pair(devstack, tmp_path):
    """A Redis primary with its replica (as with sentinels: the primary takes writes only while a replica follows),
    the primary's exporter and a Prometheus with the committed config and rules: all of this test's own, on free
    ports, so that filling, reconfiguring and stopping them disturbs nobody's stack."""
    exporter_port = free_port()
    config = dataclasses.replace(
        devstack.config,
        run_dir=tmp_path,
        redis_sentinel=True,
        redis_port=_free_port_and_the_next(),
        redis_exporter_port=exporter_port,
        prometheus_port=free_port(),
        # Prometheus scrapes the committed targets moved by the offset: this one moves its redis target here.
        port_offset=exporter_port - DevstackConfig.from_env({}).redis_exporter_port,
    )
    stack = Stack(config)
    components = stack.select("redis,redis-replica,redis-exporter,prometheus")
    assert stack.up(components) == [component.name for component in components]
    yield stack
    stack.down(components)


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(series name, its labels): value} of one scrape."""
    text = httpx.get(url, timeout=10).raise_for_status().text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    (value,) = [value for (series, held), value in samples.items() if series == name and set(labels.items()) <= held]
    return value


def _redis_series_read() -> set[str]:
    """Every redis_* series that the alert rules and the dashboards read (label values left out)."""
    rules = [
        rule["expr"]
        for path in (REPO_ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    panels = [
        target["expr"]
        for path in (REPO_ROOT / "deploy" / "grafana").glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
    return {name for expr in rules + panels for name in re.findall(r"\bredis_\w+", re.sub(r'"[^"]*"', '""', expr))}


@needs_the_exporter_and_prometheus
def test_redis_exporter_reports_the_series_the_rules_and_dashboards_read(watched_redis_pair):
    config = watched_redis_pair.config
    exporter = f"http://127.0.0.1:{config.redis_exporter_port}"
    with redis.Redis(host="127.0.0.1", port=config.redis_port) as primary:
        primary.config_set("maxmemory", "256mb")
        redis_config = primary.config_get("*")

    of_primary = _scrape(f"{exporter}/metrics")
    # The replica's through the same exporter (its multi-target endpoint): the primary's has no link to a primary.
    of_replica = _scrape(f"{exporter}/scrape?target=redis://127.0.0.1:{config.redis_replica_port}")

    assert _value(of_primary, "redis_up") == _value(of_replica, "redis_up") == 1
    assert _value(of_primary, "redis_memory_max_bytes") == int(redis_config["maxmemory"]) == 256 * 2**20
    assert _value(of_primary, "redis_instance_info", role="master") == _value(of_replica, "redis_instance_info", role="slave") == 1
    assert _value(of_primary, "redis_connected_slaves") == 1
    for key in ("min-replicas-to-write", "min-replicas-max-lag"):
        assert _value(of_primary, "redis_config_value", key=key) == int(redis_config[key]) > 0
    assert _value(of_replica, "redis_master_link_up", master_port=str(config.redis_port)) == 1
    exported = {name for name, _labels in of_primary.keys() | of_replica.keys()}
    assert _redis_series_read() <= exported, sorted(_redis_series_read() - exported)


def _wait_for_alert(prometheus: str, name: str, timeout_s: float = 60) -> dict:
    """The alert `name` once Prometheus has it pending or firing."""
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = httpx.get(f"{prometheus}/alerts", timeout=5).json()["data"]["alerts"]
        named = [alert for alert in alerts if alert["labels"]["alertname"] == name]
        if named:
            (alert,) = named
            return alert
        assert time.monotonic() < deadline, f"Prometheus has no {name} after {timeout_s:.0f} s: {alerts}"
        time.sleep(1)


@needs_the_exporter_and_prometheus
def test_prometheus_alerts_on_the_exporters_series(watched_redis_pair):
    """The rules evaluated by the real Prometheus on the real exporter's series (promtool's tests give them made-up
    ones): memory near maxmemory, then the primary's only replica gone."""
    stack = watched_redis_pair
    config = stack.config
    prometheus = f"http://127.0.0.1:{config.prometheus_port}/api/v1"
    instance = f"127.0.0.1:{config.redis_exporter_port}"
    with redis.Redis(host="127.0.0.1", port=config.redis_port) as primary:
        # 16 MiB of data, enough that the connections' buffers move the share by a percent at most: in small writes,
        # as one large one would hold as much again in this client's input buffer for a moment.
        for index in range(64):
            primary.set(f"ballast:{index}", bytes(256 * 2**10))
        # Over RedisMemoryNearMax's 90%, still short of refusing writes.
        primary.config_set("maxmemory", int(primary.info("memory")["used_memory"] / 0.95))
        maxmemory = int(primary.config_get("maxmemory")["maxmemory"])

    near_max = _wait_for_alert(prometheus, "RedisMemoryNearMax")
    assert near_max["labels"]["instance"] == instance and near_max["state"] == "pending"  # for five minutes first
    assert 0.9 < float(near_max["value"]) < 1
    query = httpx.get(f"{prometheus}/query", params={"query": "redis_memory_max_bytes"}, timeout=5).json()
    assert [float(series["value"][1]) for series in query["data"]["result"]] == [maxmemory]

    stack.down(stack.select("redis-replica"))
    too_few = _wait_for_alert(prometheus, "RedisTooFewReplicas")
    assert too_few["labels"]["instance"] == instance and float(too_few["value"]) == 0
