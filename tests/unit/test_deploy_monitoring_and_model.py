"""Monitoring and the model server: Kubernetes' alert rules and dashboards are the local stack's (generated, in
sync), its scrapes label series the way those rules expect, and TF Serving's config names versions that exist, with
their warm-up records, under the labels the probes and the README use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from classpulse_classifier.settings import ClassifierSettings
from classpulse_devstack.redis_exporter import METRICS_FLAGS
from classpulse_ingest.accounting import TAKEN_AGAIN, DropReason
from classpulse_training.warmup import WARMUP_BATCH_SIZES, read_warmup_requests
from deploy_support import (
    K8S,
    OVERLAYS,
    REPO,
    SERVICES,
    compose,
    container_env,
    containers,
    exported_series,
    load_tool,
    model_server_entrypoint,
    named,
    objects_of,
    render,
    render_with_component,
    settings_class,
)

pytestmark = pytest.mark.unit

MODEL_CONFIG = K8S / "base" / "model-server" / "models.config"
MONITORING_CONFIG = K8S / "base" / "model-server" / "monitoring.config"
BATCHING_CONFIG = K8S / "base" / "model-server" / "batching.config"
BATCHING_FIELDS = {
    "max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads", "allowed_batch_sizes",
    "pad_variable_length_inputs", "thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size",
}
"""Fields of TF Serving's BatchingParameters (session_bundle_config.proto; its module is not in tensorflow-serving-api)."""



def test_generated_monitoring_files_are_in_sync_with_the_local_stack() -> None:
    assert load_tool("sync_monitoring").stale_files() == [], "run python deploy/tools/sync_monitoring.py"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_rule_holds_exactly_the_local_rule_files(overlay: str) -> None:
    local_groups = [group for path in sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml")) for group in yaml.safe_load(path.read_text())["groups"]]
    assert local_groups
    assert named(render(overlay), "PrometheusRule", "classpulse")["spec"]["groups"] == local_groups


def _alert_rules() -> dict[str, dict]:
    return {rule["alert"]: rule for group in load_tool("sync_monitoring").rule_groups() for rule in group["rules"]}


def _series_read(expr: str, prefix: str) -> set[str]:
    """Names of the series starting with `prefix` that a PromQL expression reads (label values left out)."""
    return set(re.findall(rf"\b{prefix}\w+", re.sub(r'"[^"]*"', '""', expr)))


def test_every_service_is_watched_for_absence() -> None:
    """ServiceDown needs a target that fails; ServiceAbsent catches a service without any, so it names every one."""
    absent = re.findall(r'absent\(up\{job="classpulse", service="([a-z]+)"\}\)', _alert_rules()["ServiceAbsent"]["expr"])
    assert sorted(absent) == sorted(SERVICES)


def test_every_classpulse_series_an_alert_reads_is_one_a_service_exports() -> None:
    for name, rule in _alert_rules().items():
        assert _series_read(rule["expr"], "classpulse_") <= exported_series(), name
    lost = re.search(r'reason=~"([^"]+)"', _alert_rules()["IngestLosingFrames"]["expr"])[1].split("|")
    assert set(lost) <= {reason.value for reason in DropReason} - {DropReason.CLASS_QUOTA} - TAKEN_AGAIN


def test_kafka_alerts_read_series_the_kafka_pods_and_claims_have() -> None:
    """The Strimzi Metrics Reporter exports only what its allowList matches; the disk alert's claims are the ones
    Strimzi makes for the broker pool (data-<cluster>-<pool>-<node id>)."""
    objects = render("prod")
    allowed = named(objects, "Kafka", "classpulse")["spec"]["kafka"]["metricsConfig"]["values"]["allowList"]
    for name, rule in _alert_rules().items():
        for series in _series_read(rule["expr"], "kafka_"):
            assert any(re.fullmatch(pattern, series) for pattern in allowed), f"{name}: {series} is not exported"
    claims = re.search(r'persistentvolumeclaim=~"([^"]+)"', _alert_rules()["KafkaBrokerDiskFilling"]["expr"])[1]
    brokers = [pool for pool in objects_of(objects, "KafkaNodePool") if "broker" in pool["spec"]["roles"]]
    assert brokers
    for pool in brokers:
        assert re.fullmatch(claims, f"data-{pool['metadata']['labels']['strimzi.io/cluster']}-{pool['metadata']['name']}-0")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboards_are_shipped_for_the_grafana_sidecar(overlay: str) -> None:
    dashboards = sorted(path.name for path in (REPO / "deploy" / "grafana").glob("*.json"))
    shipped = [cm for cm in objects_of(render(overlay), "ConfigMap") if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert sorted(name for cm in shipped for name in cm["data"]) == dashboards


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scrapes_carry_the_labels_the_alert_rules_use(overlay: str) -> None:
    objects = render(overlay)
    monitor = named(objects, "ServiceMonitor", "classpulse")
    relabel = {r["targetLabel"]: r for r in monitor["spec"]["endpoints"][0]["relabelings"]}
    rules = yaml.safe_dump(named(objects, "PrometheusRule", "classpulse")["spec"])
    for job in re.findall(r'job="([^"]+)"', rules):
        assert relabel["job"]["replacement"] == job
    assert relabel["service"]["sourceLabels"] == ["__meta_kubernetes_service_label_app_kubernetes_io_component"]
    scraped = [s for s in objects_of(objects, "Service") if s["metadata"]["labels"].get("classpulse.io/metrics") == "true"]
    assert {s["metadata"]["labels"]["app.kubernetes.io/component"] for s in scraped} == set(SERVICES)
    assert {s["spec"]["ports"][0]["name"] for s in scraped} == {monitor["spec"]["endpoints"][0]["port"]}


def _redis_exporter(objects: tuple[dict, ...]) -> dict:
    (exporter,) = [c for c in containers(named(objects, "StatefulSet", "redis")) if c["name"] == "redis-exporter"]
    return exporter


def _without_address(flags: list[str]) -> list[str]:
    return [flag for flag in flags if not flag.startswith("--redis.addr=")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_redis_pod_is_scraped_as_the_redis_alerts_expect(overlay: str) -> None:
    """Each Redis pod's exporter sidecar exports what the local stack's does (the rules read its CONFIG series); the
    redis PodMonitor scrapes it with the service label the rules select, and the network lets Prometheus in."""
    objects = render(overlay)
    redis = named(objects, "StatefulSet", "redis")
    exporter = _redis_exporter(objects)
    assert _without_address(exporter["args"]) == list(METRICS_FLAGS)
    assert exporter["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "classpulse-redis", "key": "password"}
    monitor = named(objects, "PodMonitor", "redis")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {port["name"] for port in exporter["ports"]}
    relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    redis_rules = yaml.safe_dump([rule for name, rule in _alert_rules().items() if name.startswith("Redis")])
    assert set(re.findall(r'service="([^"]+)"', redis_rules)) == {relabel["service"]["replacement"]}
    scrapes = named(objects, "NetworkPolicy", "allow-prometheus-scrapes")["spec"]
    assert "redis" in scrapes["podSelector"]["matchExpressions"][0]["values"]
    assert {"protocol": "TCP", "port": endpoint["port"]} in scrapes["ingress"][0]["ports"]


def test_compose_runs_kubernetes_redis_exporter_with_the_local_flags() -> None:
    exporter = compose()["services"]["redis-exporter"]
    assert exporter["image"] == _redis_exporter(render("prod"))["image"]
    assert _without_address(exporter["command"]) == list(METRICS_FLAGS)


def _model_config() -> model_server_config_pb2.ModelConfig:
    config = text_format.Parse(MODEL_CONFIG.read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    return model


def test_model_config_serves_the_model_the_classifier_asks_for() -> None:
    model = _model_config()
    classifier = settings_class("classifier")
    assert model.name == classifier.model_fields["model_name"].default
    assert model.base_path == f"/models/{model.name}" and model.model_platform == "tensorflow"
    versions = set(model.model_version_policy.specific.versions)
    assert set(model.version_labels) == {"stable", "canary"}
    assert set(model.version_labels.values()) <= versions


def test_labelled_versions_are_exported_with_warm_up_records() -> None:
    exported = {int(p.name) for p in (REPO / "models" / "emotion").glob("*") if p.name.isdigit()}
    if not exported:
        pytest.skip("no model exported under models/emotion/ yet")
    for version in set(_model_config().model_version_policy.specific.versions):
        directory = REPO / "models" / "emotion" / str(version)
        assert version in exported, f"models.config serves version {version}, which is not in models/emotion/"
        assert (directory / "saved_model.pb").is_file()
        assert (directory / "assets.extra" / "tf_serving_warmup_requests").is_file(), f"version {version} has no warm-up records"
        # The classifier's own signature warmed too, at the sizes of its calls (up to 256 faces): its first calls
        # after a rollout pay for a cold graph or shape otherwise.
        warmed = {
            (request.model_spec.signature_name, request.inputs["faces"].tensor_shape.dim[0].size)
            for request in read_warmup_requests(directory)
        }
        signature = ClassifierSettings.model_fields["model_signature"].default
        assert {(signature, size) for size in WARMUP_BATCH_SIZES} <= warmed, f"version {version}: {sorted(warmed)}"


def test_classifiers_call_the_stable_version_wherever_they_are_shipped() -> None:
    """A call that names no label gets the highest version loaded, which during a rollout is the canary: every
    classifier, and a classifier left without the setting, calls `stable`, a label the model config gives."""
    assert ClassifierSettings.model_fields["model_version_label"].default == "stable"
    assert compose()["services"]["classifier"]["environment"]["CLASSPULSE_MODEL_VERSION_LABEL"] == "stable"
    for overlay in OVERLAYS:
        objects = render(overlay)
        env = container_env(objects, containers(named(objects, "Deployment", "classifier"))[0])
        assert env["CLASSPULSE_MODEL_VERSION_LABEL"]["value"] == "stable", overlay
    assert "stable" in _model_config().version_labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_model_server_accepts_labels_on_the_versions_it_is_about_to_load(overlay: str) -> None:
    """TF Serving checks a config's labels before loading its versions: at start no version is AVAILABLE yet, and
    without this flag it refuses models.config and exits (FAILED_PRECONDITION, "Request to assign label to version 9
    of model emotion, which is not currently available for inference"). The image (compose) starts it the same way."""
    flag = "--allow_version_labels_for_unavailable_models=true"
    assert flag in _model_server_args(render(overlay))
    assert flag in model_server_entrypoint()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_model_server_reads_the_config_it_is_given(overlay: str) -> None:
    objects = render(overlay)
    server = named(objects, "Deployment", "model-server")
    (container,) = containers(server)
    args = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config")
    assert _mounted_config(objects, server)["models.config"] == MODEL_CONFIG.read_text()
    assert args["model_config_file"] == f"{mount}/models.config" and args["monitoring_config_file"] == f"{mount}/monitoring.config"
    assert args["enable_model_warmup"] == "true"
    # TF Serving's status route ignores a label (any version known answers 200); its metadata route resolves it.
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{_model_config().name}/labels/stable/metadata"
    compose_check = " ".join(yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["model-server"]["healthcheck"]["test"])
    assert f"/v1/models/{_model_config().name}/labels/stable/metadata" in compose_check
    metrics_path = re.search(r'path: "([^"]+)"', MONITORING_CONFIG.read_text())[1]
    assert named(objects, "PodMonitor", "model-server")["spec"]["podMetricsEndpoints"][0]["path"] == metrics_path
    compose_prometheus = yaml.safe_load((REPO / "deploy" / "compose" / "prometheus.yml").read_text())
    assert next(j for j in compose_prometheus["scrape_configs"] if j["job_name"] == "model-server")["metrics_path"] == metrics_path


def _config_maps_mounted(objects: tuple[dict, ...], server: dict) -> list[dict]:
    """The ConfigMaps projected into the model server's config directory."""
    (volume,) = [v for v in server["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    return [named(objects, "ConfigMap", source["configMap"]["name"]) for source in volume["projected"]["sources"]]


def _mounted_config(objects: tuple[dict, ...], server: dict) -> dict[str, str]:
    """{file name: text} of the model server's config directory."""
    return {name: text for config_map in _config_maps_mounted(objects, server) for name, text in config_map["data"].items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_label_moves_without_restarting_the_model_servers(overlay: str) -> None:
    """models.config comes from a ConfigMap of a fixed name: an edit changes the mounted file, which TF Serving reads
    again every poll, where kustomize's hash suffix would rename the ConfigMap and so roll every model server. The
    files TF Serving reads only at start keep the suffix: a change to them must roll the pods."""
    objects = render(overlay)
    server = named(objects, "Deployment", "model-server")
    (container,) = containers(server)
    names = {config_map["metadata"]["name"]: set(config_map["data"]) for config_map in _config_maps_mounted(objects, server)}
    models = next(name for name, files in names.items() if "models.config" in files)
    assert models == "model-server-models" and names[models] == {"models.config"}
    assert all(re.fullmatch(r"model-server-config-[a-z0-9]{10}", name) for name in set(names) - {models}), names
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert "subPath" not in mount  # a file mounted by subPath never sees the ConfigMap change
    args = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])
    assert 0 < int(args["model_config_file_poll_wait_seconds"]) <= 60


def _model_server_args(objects: tuple[dict, ...]) -> list[str]:
    (container,) = containers(named(objects, "Deployment", "model-server"))
    return container["args"]


def test_model_servers_compute_in_bfloat16_only_where_an_overlay_asks(tmp_path: Path) -> None:
    """The export is float32 (every CPU runs it); TF Serving's --mixed_precision=bfloat16 is off in both overlays and
    on with components/model-server-bfloat16, for node pools whose CPUs run bfloat16 fast (its comment says which)."""
    for overlay in OVERLAYS:
        assert not [arg for arg in _model_server_args(render(overlay)) if "mixed_precision" in arg], overlay
    args = _model_server_args(render_with_component("prod", "model-server-bfloat16", tmp_path))
    assert args[-1] == "--mixed_precision=bfloat16" and args[:-1] == _model_server_args(render("prod"))
    metrics = REPO / "models" / "emotion" / str(_model_config().version_labels["stable"]) / "metrics.json"
    assert '"compute_dtype": "float32"' in metrics.read_text(), "the stable version is exported in float32"


def _batching() -> dict[str, int]:
    text = "\n".join(line for line in BATCHING_CONFIG.read_text().splitlines() if not line.startswith("#"))
    fields = dict(re.findall(r"^(\w+) \{ value: (\d+) \}$", text, re.MULTILINE))
    assert len(fields) == len([line for line in text.splitlines() if line.strip()]), "one `name { value: N }` a line"
    assert set(fields) <= BATCHING_FIELDS, set(fields) - BATCHING_FIELDS
    return {name: int(value) for name, value in fields.items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_model_server_batches_calls_as_measured(overlay: str) -> None:
    """Server-side batching at the measured best batch (docs/performance.md), never below what a classifier sends
    in one call (TF Serving refuses larger calls), one batch thread per core of the CPU limit, queue far inside the
    classifier's deadline."""
    objects = render(overlay)
    batching = _batching()
    server = named(objects, "Deployment", "model-server")
    (container,) = containers(server)
    args = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config")
    assert args["enable_batching"] == "true" and args["batching_parameters_file"] == f"{mount}/batching.config"
    assert _mounted_config(objects, server)["batching.config"] == BATCHING_CONFIG.read_text()
    classifier_env = container_env(objects, containers(named(objects, "Deployment", "classifier"))[0])
    classifier = settings_class("classifier")
    sent = int(classifier_env.get("CLASSPULSE_MAX_BATCH_FACES", {}).get("value", classifier.model_fields["max_batch_faces"].default))
    assert batching["max_batch_size"] == sent == 256, "256 faces a call: the measured best (docs/performance.md)"
    assert batching["num_batch_threads"] == int(container["resources"]["limits"]["cpu"]) or overlay == "dev"
    assert batching["batch_timeout_micros"] < 3_800, "below the measured cost of a one-face call"
    queue_s = batching["max_enqueued_batches"] / batching["num_batch_threads"] * batching["max_batch_size"] / 3_838
    assert queue_s < classifier.model_fields["model_timeout_s"].default / 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_model_server_connections_end_so_classifiers_reach_new_replicas(overlay: str) -> None:
    """The classifier resolves dns:///model-server-grpc again only when a connection closes: TF Serving ends each
    after a while (GOAWAY), so replicas the autoscaler adds get calls, with a grace in which the calls in flight
    finish. The image (compose) does the same."""
    (flag,) = [arg for arg in _model_server_args(render(overlay)) if arg.startswith("--grpc_channel_arguments=")]
    channel = dict(argument.split("=") for argument in flag.split("=", 1)[1].split(","))
    assert set(channel) == {"grpc.max_connection_age_ms", "grpc.max_connection_age_grace_ms"}
    assert int(channel["grpc.max_connection_age_ms"]) <= 60_000
    deadline_ms = settings_class("classifier").model_fields["model_timeout_s"].default * 1000
    assert int(channel["grpc.max_connection_age_grace_ms"]) >= deadline_ms
    assert flag in model_server_entrypoint()


def test_model_server_image_batches_as_kubernetes_does() -> None:
    text = (REPO / "deploy" / "docker" / "model-server" / "Dockerfile").read_text()
    assert "deploy/k8s/base/model-server/batching.config /etc/tfserving/" in text
    assert '"--enable_batching=true", "--batching_parameters_file=/etc/tfserving/batching.config"' in text


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_corrects_class_shares_for_the_stable_version_and_the_classifiers_signature(overlay: str) -> None:
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    source, target = re.search(r"^COPY (models/emotion/\S+/quantification\.json) (\S+)$", dockerfile, re.MULTILINE).groups()
    assert source == f"models/emotion/{_model_config().version_labels['stable']}/quantification.json"
    assert (REPO / source).is_file() and f"CLASSPULSE_QUANTIFICATION_FILE={target}" in dockerfile
    objects = render(overlay)
    signatures = {
        service: container_env(objects, containers(named(objects, "Deployment", service))[0])["CLASSPULSE_MODEL_SIGNATURE"]["value"]
        for service in ("api", "classifier")
    }
    assert signatures["api"] == signatures["classifier"]
    defaults = {service: settings_class(service).model_fields["model_signature"].default for service in ("api", "classifier")}
    assert defaults["api"] == defaults["classifier"]
