"""docker-compose.yml: valid against the Compose Specification's schema, every image it builds has its Dockerfile,
every long-running service has a health check that its dependants wait for, and its Kafka topics and Prometheus
scrape job are those of the local stack and Kubernetes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.kafka_topics import pipeline_topics
from deploy_support import (
    COMPOSE_FILE,
    K8S,
    REDIS_START_SCRIPT,
    REPO,
    SERVICES,
    compose,
    dockerfile,
    load_tool,
    mebibytes,
    model_server_entrypoint,
    objects_of,
    redis_server_argv,
    render,
)

pytestmark = pytest.mark.unit

SCHEMA = json.loads((REPO / "deploy" / "schemas" / "compose-spec.json").read_text())
ONE_SHOT = {"kafka-topics"}


def test_compose_file_follows_the_compose_specification() -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(compose())


def test_the_schema_check_catches_mistakes() -> None:
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["api"]["healthcheck"]["intervall"] = "10s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_every_built_image_has_its_dockerfile_and_every_service_is_built() -> None:
    built = {name: service["build"] for name, service in compose()["services"].items() if "build" in service}
    assert set(built) == set(SERVICES) | {"model-server"}
    for name, build in built.items():
        assert build["context"] == "." and REPO / build["dockerfile"] == dockerfile(name)
        assert build.get("args", {}) == ({} if name == "model-server" else {"SERVICE": name})
        assert compose()["services"][name]["image"].startswith(f"classpulse/{name}:")


def test_every_long_running_service_is_healthchecked_and_waited_for() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service["healthcheck"]["test"], name
            assert service["restart"] == "unless-stopped", name
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    for name in SERVICES:
        service = services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        waits_for = set(service["depends_on"])
        assert ("kafka-topics" in waits_for) == (name != "api"), name


def test_compose_topics_are_the_local_stacks_and_kubernetes() -> None:
    script = (REPO / "deploy" / "compose" / "kafka" / "create-topics.sh").read_text()
    image_retention = int(re.search(r'IMAGE_RETENTION_MS="\$\{IMAGE_RETENTION_MS:-(\d+)\}"', script)[1])
    predictions_retention = int(re.search(r"PREDICTIONS_RETENTION_MS=(\d+)", script)[1])
    retention = {"$IMAGE_RETENTION_MS": image_retention, "$PREDICTIONS_RETENTION_MS": predictions_retention}
    compose_topics = set()
    for line in script.splitlines():
        call = re.fullmatch(r'\s*ensure_topic "?([^" ]+)"? (\d+) "?(\$[A-Z_]+)"?', line)
        if call:
            names = ["classpulse.frames", "classpulse.faces"] if call[1].startswith("$topic") else [call[1]]
            for name in names:
                compose_topics.add((call[1].replace("$topic", name), int(call[2]), retention[call[3]]))
    devstack = DevstackConfig.from_env()
    local = dataclasses.replace(devstack, image_retention_ms=image_retention)
    assert compose_topics == {(t.name, t.partitions, t.retention_ms) for t in pipeline_topics(local)}
    kubernetes = {
        (t["spec"]["topicName"], t["spec"]["partitions"], t["spec"]["config"]["retention.ms"])
        for t in objects_of(render("dev"), "KafkaTopic")
    }
    assert kubernetes == compose_topics
    for topic in objects_of(render("dev"), "KafkaTopic"):
        assert topic["spec"]["config"]["segment.ms"] == topic["spec"]["config"]["retention.ms"] // 5


def test_every_kafka_deletes_expired_images_as_often_as_the_capacity_plan_assumes() -> None:
    """Kubernetes' is checked with the plan (test_deploy_capacity.py); the local stack's and compose's here."""
    expected = load_tool("capacity").RETENTION_CHECK_S * 1000
    local = (REPO / "devstack" / "kafka" / "server.properties").read_text()
    assert int(re.search(r"^log\.retention\.check\.interval\.ms=(\d+)$", local, re.MULTILINE)[1]) == expected
    assert compose()["services"]["kafka"]["environment"]["KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS"] == expected


def test_compose_prometheus_scrapes_what_the_local_one_does() -> None:
    """The same jobs, labels and ports; each target a compose service (in the classpulse job, the one it labels)."""

    def targets(path: str) -> dict[tuple[str, str], str]:
        config = yaml.safe_load((REPO / path).read_text())
        return {
            (job["job_name"], group["labels"]["service"]): group["targets"][0]
            for job in config["scrape_configs"]
            if job["job_name"] != "prometheus"
            for group in job["static_configs"]
        }

    local, in_compose = targets("deploy/prometheus/prometheus.yml"), targets("deploy/compose/prometheus.yml")
    assert set(local) == set(in_compose)
    assert {service for job, service in local if job == "classpulse"} == set(SERVICES)
    for (job, service), target in in_compose.items():
        host, port = target.rsplit(":", 1)
        assert port == local[(job, service)].rsplit(":", 1)[1], (job, service)
        assert host in compose()["services"] and (job != "classpulse" or host == service), (job, service)
    mounted = compose()["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounted


def test_compose_and_kubernetes_share_the_redis_and_model_server_config() -> None:
    services = compose()["services"]
    assert "./deploy/k8s/base/redis/redis.conf:/usr/local/etc/redis/redis.conf:ro" in services["redis"]["volumes"]
    assert services["redis"]["command"][0] == "redis-server"  # the entrypoint then loads the time series module
    assert services["redis"]["image"] == next(
        c["image"] for s in objects_of(render("prod"), "StatefulSet") for c in s["spec"]["template"]["spec"]["containers"]
    )
    dockerfile = (REPO / "deploy" / "docker" / "model-server" / "Dockerfile").read_text()
    assert "COPY deploy/k8s/base/model-server/models.config deploy/k8s/base/model-server/monitoring.config" in dockerfile
    assert (K8S / "base" / "model-server" / "models.config").is_file()


def test_compose_redis_refuses_writes_before_its_memory_limit_kills_it(tmp_path: Path) -> None:
    """Kubernetes' start script, given the container's memory limit: maxmemory two thirds of it (noeviction)."""
    redis = compose()["services"]["redis"]
    mounted = f"/usr/local/etc/redis/{REDIS_START_SCRIPT.name}"
    assert redis["entrypoint"] == ["sh", mounted]
    assert f"./{REDIS_START_SCRIPT.relative_to(REPO)}:{mounted}:ro" in redis["volumes"]
    limit_mib = int(re.fullmatch(r"\$\{REDIS_MEMORY_LIMIT_MIB:-(\d+)\}", redis["environment"]["REDIS_MEMORY_LIMIT_MIB"])[1])
    assert redis["mem_limit"] == f"${{REDIS_MEMORY_LIMIT_MIB:-{limit_mib}}}m"
    argv = redis_server_argv(REDIS_START_SCRIPT.read_text(), redis["command"], limit_mib, tmp_path)
    assert argv[-2] == "--maxmemory" and 0.6 <= mebibytes(argv[-1]) / limit_mib <= 0.7


def test_a_webcam_stays_with_the_host_whose_camera_it_reads() -> None:
    """The container's own name (the default host name) changes whenever compose makes it again: a webcam source
    pinned to it would read `stalled` for good; a name that outlives the container keeps it running."""
    environment = compose()["services"]["ingest"]["environment"]
    assert environment["CLASSPULSE_CAMERA_HOST"] == "${CLASSPULSE_CAMERA_HOST:-compose-host}"


def test_the_bfloat16_override_adds_tf_servings_flag_to_the_model_servers_entrypoint() -> None:
    """deploy/compose/model-server-bfloat16.yml, for hosts whose CPUs run bfloat16 fast, as the Kubernetes component
    model-server-bfloat16: its command is appended to the image's exec-form entrypoint, which compose leaves without one."""
    override = yaml.safe_load((REPO / "deploy" / "compose" / "model-server-bfloat16.yml").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(override)
    assert override == {"services": {"model-server": {"command": ["--mixed_precision=bfloat16"]}}}
    assert "command" not in compose()["services"]["model-server"]
    arguments = model_server_entrypoint()
    assert arguments[0] == "tensorflow_model_server" and not any("mixed_precision" in a for a in arguments)
