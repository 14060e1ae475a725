"""The devstack moved by CLASSPULSE_DEVSTACK_PORT_OFFSET: every port of every component moves, the services are told
the moved addresses, Prometheus scrapes the moved targets, and without the offset nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from classpulse_devstack.components import registry, service_replica
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.prometheus_server import committed_config_file, render_config

pytestmark = pytest.mark.unit

DEFAULT_PORTS = {
    "kafka": 9092, "redis": 6379, "redis-exporter": 9121, "prometheus": 9090, "model-server": 8500,
    "ingest": 8001, "detector": 8002, "classifier": 8003, "aggregator": 8004, "api": 8000,
}


def _config(**env: str) -> DevstackConfig:
    return DevstackConfig.from_env(env)


def _ports(config: DevstackConfig) -> dict[str, int]:
    return {component.name: component.port for component in registry(config)}


def test_without_overrides_the_fixed_local_layout_is_kept(tmp_path):
    config = _config(CLASSPULSE_DEVSTACK_RUN_DIR=str(tmp_path))
    assert _ports(config) == DEFAULT_PORTS
    assert (config.kafka_controller_port, config.port_offset) == (9093, 0)


def test_an_offset_moves_every_port_and_the_addresses_services_are_given(tmp_path):
    config = _config(CLASSPULSE_DEVSTACK_PORT_OFFSET="10000", CLASSPULSE_DEVSTACK_RUN_DIR=str(tmp_path))
    assert _ports(config) == {name: port + 10000 for name, port in DEFAULT_PORTS.items()}
    assert config.kafka_controller_port == 19093 and config.run_dir == tmp_path.resolve()
    detector = next(component for component in registry(config) if component.name == "detector")
    assert detector.env["CLASSPULSE_HTTP_PORT"] == "18002"
    assert detector.env["CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert detector.env["CLASSPULSE_REDIS_URL"] == "redis://127.0.0.1:16379/0"
    assert detector.env["CLASSPULSE_MODEL_SERVER"] == "127.0.0.1:18500"
    exporter = next(component for component in registry(config) if component.name == "redis-exporter")
    assert "--redis.addr=redis://127.0.0.1:16379" in exporter.command


def test_a_port_named_on_its_own_wins_over_the_offset(tmp_path):
    config = _config(CLASSPULSE_DEVSTACK_PORT_OFFSET="100", CLASSPULSE_DEVSTACK_REDIS_PORT="7000", CLASSPULSE_DEVSTACK_RUN_DIR=str(tmp_path))
    assert (config.redis_port, config.kafka_port) == (7000, 9192)


@pytest.mark.parametrize("offset", ["-1", "56443"])
def test_an_offset_that_would_leave_the_port_range_is_refused(offset):
    with pytest.raises(ValueError, match="PORT_OFFSET"):
        _config(CLASSPULSE_DEVSTACK_PORT_OFFSET=offset)


def test_a_replica_joins_its_service_group_on_a_port_of_its_own(tmp_path):
    config = _config(CLASSPULSE_DEVSTACK_PORT_OFFSET="10000", CLASSPULSE_DEVSTACK_RUN_DIR=str(tmp_path))
    replica = service_replica(config, "classifier", 1)
    assert (replica.name, replica.port, replica.env["CLASSPULSE_HTTP_PORT"]) == ("classifier-1", 18103, "18103")
    assert replica.command[-1] == "classpulse_classifier"


def _targets(document: dict) -> list[str]:
    return [target for job in document["scrape_configs"] for group in job["static_configs"] for target in group["targets"]]


def test_prometheus_scrapes_the_moved_targets_with_the_committed_rules(tmp_path):
    committed = committed_config_file(_config(CLASSPULSE_DEVSTACK_RUN_DIR=str(tmp_path)))
    unmoved, moved = render_config(committed, 0), render_config(committed, 10000)
    assert {"127.0.0.1:9090", "127.0.0.1:8000", "127.0.0.1:8004"} <= set(_targets(unmoved))
    assert _targets(moved) == [f"127.0.0.1:{int(target.rsplit(':', 1)[1]) + 10000}" for target in _targets(unmoved)]
    assert all(Path(pattern).is_absolute() and Path(pattern).parent.is_dir() for pattern in moved["rule_files"])
