"""Rules every rendered workload must follow, and the facts the manifests must agree on among themselves: security
context, resources, probes, pinned images, autoscaling against partitions, references that resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deploy_support import (
    K8S,
    OVERLAYS,
    REDIS_START_SCRIPT,
    STAGE_INPUT_TOPIC,
    container_env,
    containers,
    mebibytes,
    named,
    objects_of,
    pod_spec,
    redis_server_argv,
    render,
    settings_class,
    walk_dicts,
)

pytestmark = pytest.mark.unit

SLOW_STARTERS = {"model-server", "redis"}
"""Workloads whose container of their own name loads data before it answers (a model and its warm-up; an append-only
file): startup probes. Their sidecars (Redis's exporter) answer at once."""
AUTOSCALED = {"detector", "classifier", "api", "model-server"}
OPERATOR_MADE_SECRETS = {"classpulse-cluster-ca-cert"}
"""Made by Strimzi: the cluster CA; it also makes one Secret per KafkaUser, named after the user (checked below)."""
EXTERNAL_SECRETS = {"classpulse-redis", "classpulse-api-keys", "classpulse-tls"}
"""Secrets made outside this repository in prod (listed in deploy/k8s/README.md); dev generates the first two, and
cert-manager makes classpulse-tls from the Ingress in both."""


def _workloads(overlay: str) -> list[dict]:
    return [obj for obj in render(overlay) if pod_spec(obj) is not None]


def _by_workload(overlay: str) -> list[tuple[str, dict, dict]]:
    return [(obj["metadata"]["name"], pod_spec(obj), container) for obj in _workloads(overlay) for container in containers(obj)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for name, _spec, container in _by_workload(overlay):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{name}: {kind} of cpu and memory"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes(overlay: str) -> None:
    for name, _spec, container in _by_workload(overlay):
        assert "livenessProbe" in container and "readinessProbe" in container, name
        if name in SLOW_STARTERS and container["name"] == name:
            assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 300, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(overlay: str) -> None:
    for name, spec, container in _by_workload(overlay):
        pod, own = spec.get("securityContext", {}), container.get("securityContext", {})
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, name
        assert own.get("runAsUser", pod.get("runAsUser", 0)) != 0, name
        assert own.get("readOnlyRootFilesystem") is True, name
        assert own.get("allowPrivilegeEscalation") is False, name
        assert own.get("capabilities", {}).get("drop") == ["ALL"], name
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_has_a_pinned_tag(overlay: str) -> None:
    for name, _spec, container in _by_workload(overlay):
        image = container["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag not in ("", "latest"), f"{name}: {image} is not pinned"
        assert re.fullmatch(r"v?\d+(\.\d+)+(-[a-z0-9]+)?", tag), f"{name}: {image}: use a version tag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_spreads_has_a_disruption_budget_and_drains(overlay: str) -> None:
    objects = render(overlay)
    budgets = {budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for budget in objects_of(objects, "PodDisruptionBudget")}
    for deployment in objects_of(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        spec = pod_spec(deployment)
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        # A consuming stage finishes its batch, flushes and commits on SIGTERM: producer flush and close take 20 s.
        minimum = 60 if name in STAGE_INPUT_TOPIC else 30
        assert spec["terminationGracePeriodSeconds"] >= minimum, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_let_a_drain_evict_pods_that_are_not_ready(overlay: str) -> None:
    """A stage's pods are all unready while its dependency is down (readiness follows it): budgets that counted them
    would block every node drain for as long as the outage lasts. An unready pod serves nothing; evicting it costs
    nothing."""
    budgets = objects_of(render(overlay), "PodDisruptionBudget")
    assert budgets
    for budget in budgets:
        assert budget["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow", budget["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_hands_its_sources_over_within_its_grace_period(overlay: str) -> None:
    """The preStop pause and ingest's shutdown budget (requests, then its sources handed over, whatever Kafka does)
    fit the grace period: past it the kubelet kills the pod mid-handover, and its sources wait out their leases."""
    objects = render(overlay)
    ingest = named(objects, "Deployment", "ingest")
    container = containers(ingest)[0]
    budget_s = int(container_env(objects, container)["CLASSPULSE_SHUTDOWN_BUDGET_S"]["value"])
    pause_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause_s + budget_s < pod_spec(ingest)["terminationGracePeriodSeconds"], (pause_s, budget_s)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_webcam_stays_with_the_node_whose_camera_it_reads(overlay: str) -> None:
    """A webcam source runs only where CLASSPULSE_CAMERA_HOST names its machine: the pod's own name (the default host
    name) changes with every rollout and would leave every webcam stalled after one; the node's does not."""
    objects = render(overlay)
    env = container_env(objects, containers(named(objects, "Deployment", "ingest"))[0])
    assert env["CLASSPULSE_CAMERA_HOST"] == {"valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}


def test_prod_keeps_replicas_of_a_service_on_different_nodes() -> None:
    for deployment in objects_of(render("prod"), "Deployment"):
        terms = pod_spec(deployment)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        selector = terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]
        assert selector == deployment["spec"]["selector"]["matchLabels"], deployment["metadata"]["name"]


def test_prod_redis_has_no_single_point_of_failure() -> None:
    """A primary and two replicas, three sentinels, each on its own node, budgets that keep a replica and a quorum,
    and every service reaching Redis through the sentinels (so the aggregator also WAITs for a replica)."""
    objects = render("prod")
    for name, budget in (("redis", 2), ("redis-sentinel", 2)):
        workload = named(objects, "StatefulSet", name)
        assert workload["spec"]["replicas"] == 3, name
        required = pod_spec(workload)["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert required[0]["topologyKey"] == "kubernetes.io/hostname", name
        assert named(objects, "PodDisruptionBudget", name)["spec"]["minAvailable"] == budget
    sentinels = [f"redis-sentinel-{index}.redis-sentinel:26379" for index in range(3)]
    for deployment in objects_of(objects, "Deployment"):
        env = container_env(objects, containers(deployment)[0])
        if "CLASSPULSE_REDIS_URL" in env:
            assert env["CLASSPULSE_REDIS_SENTINELS"]["value"].split(",") == sentinels, deployment["metadata"]["name"]
            assert env["CLASSPULSE_REDIS_SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "classpulse-redis"
    aggregator = container_env(objects, containers(named(objects, "Deployment", "aggregator"))[0])
    assert "CLASSPULSE_REDIS_WAIT_REPLICAS" not in aggregator  # its default with sentinels: one replica


def test_prod_sentinels_keep_their_state_on_persistent_volumes() -> None:
    """start-sentinel.sh keeps what a sentinel learns (which pod is the primary) in /data: a claim of its own, not an
    emptyDir, so that after every Redis and sentinel pod restarted at once the sentinels still name the primary that
    holds the acknowledged writes (tests/integration/test_redis_start_scripts.py runs that restart)."""
    sentinels = named(render("prod"), "StatefulSet", "redis-sentinel")
    (container,) = containers(sentinels)
    (data,) = [mount["name"] for mount in container["volumeMounts"] if mount["mountPath"] == "/data"]
    assert data in {claim["metadata"]["name"] for claim in sentinels["spec"].get("volumeClaimTemplates", [])}
    assert data not in {volume["name"] for volume in pod_spec(sentinels)["volumes"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_refuses_writes_before_its_memory_limit_kills_it(overlay: str, tmp_path: Path) -> None:
    """maxmemory two thirds of the container's limit, noeviction: past it writes fail and the aggregator retries them.
    Without maxmemory noeviction never applies, and the kernel kills Redis at the limit (an AOF rewrite's fork sooner)."""
    objects = render(overlay)
    redis = named(objects, "StatefulSet", "redis")
    container = next(container for container in containers(redis) if container["name"] == "redis")
    limit = container_env(objects, container)["REDIS_MEMORY_LIMIT_MIB"]["valueFrom"]["resourceFieldRef"]
    assert limit == {"containerName": "redis", "resource": "limits.memory", "divisor": "1Mi"}
    assert "maxmemory-policy noeviction" in _mounted_file(objects, redis, container["args"][1]).splitlines()
    shell, started = container["command"]
    start = f"/etc/redis/{REDIS_START_SCRIPT.name}"
    # Started by it, or by the sentinel component's script, which hands over to it.
    assert shell == "sh" and (started == start or f'exec sh {start} "$@"' in _mounted_file(objects, redis, started))
    limit_mib = mebibytes(container["resources"]["limits"]["memory"])
    argv = redis_server_argv(_mounted_file(objects, redis, start), container["args"], int(limit_mib), tmp_path)
    assert argv[: len(container["args"])] == container["args"] and argv[-2] == "--maxmemory"
    assert 0.6 <= mebibytes(argv[-1]) / limit_mib <= 0.7, (argv[-1], container["resources"]["limits"]["memory"])


def _mounted_file(objects: tuple[dict, ...], workload: dict, path: str) -> str:
    """The text of a file that a container of the workload mounts from a ConfigMap."""
    directory, _, file_name = path.rpartition("/")
    mounts = [mount for container in containers(workload) for mount in container.get("volumeMounts", [])]
    volume = next(m["name"] for m in mounts if m["mountPath"] == directory)
    config_map = next(v["configMap"]["name"] for v in pod_spec(workload)["volumes"] if v["name"] == volume)
    return named(objects, "ConfigMap", config_map)["data"][file_name]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_own_their_replicas_and_fit_the_partitions(overlay: str) -> None:
    objects = render(overlay)
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in objects_of(objects, "HorizontalPodAutoscaler")}
    targets |= {scaled["spec"]["scaleTargetRef"]["name"] for scaled in objects_of(objects, "ScaledObject")}
    assert targets == AUTOSCALED
    for name in targets:
        assert "replicas" not in named(objects, "Deployment", name)["spec"], f"{name}: the autoscaler owns replicas"
    partitions = {topic["spec"]["topicName"]: topic["spec"]["partitions"] for topic in objects_of(objects, "KafkaTopic")}
    kafka_settings = settings_class("detector")().kafka
    for scaled in objects_of(objects, "ScaledObject"):
        stage = scaled["spec"]["scaleTargetRef"]["name"]
        trigger = scaled["spec"]["triggers"][0]["metadata"]
        assert trigger["consumerGroup"] == f"classpulse-{stage}"  # classpulse_stream.service.run_stage's group id
        assert trigger["topic"] == getattr(kafka_settings, STAGE_INPUT_TOPIC[stage])
        # A replica beyond the partition count would have no partition to read.
        assert scaled["spec"]["maxReplicaCount"] <= partitions[trigger["topic"]]
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_fit_the_brokers(overlay: str) -> None:
    objects = render(overlay)
    brokers = sum(pool["spec"]["replicas"] for pool in objects_of(objects, "KafkaNodePool") if "broker" in pool["spec"]["roles"])
    controllers = sum(pool["spec"]["replicas"] for pool in objects_of(objects, "KafkaNodePool") if "controller" in pool["spec"]["roles"])
    assert controllers % 2 == 1, "a KRaft quorum needs an odd number of controllers"
    kafka_config = named(objects, "Kafka", "classpulse")["spec"]["kafka"]["config"]
    assert kafka_config["default.replication.factor"] <= brokers
    assert kafka_config["min.insync.replicas"] < kafka_config["default.replication.factor"] or brokers == 1
    for topic in objects_of(objects, "KafkaTopic"):
        replicas, in_sync = topic["spec"]["replicas"], topic["spec"]["config"]["min.insync.replicas"]
        assert replicas <= brokers and (in_sync < replicas or brokers == 1), topic["metadata"]["name"]


def test_prod_kafka_clients_authenticate_as_their_own_users() -> None:
    objects = render("prod")
    users = {user["metadata"]["name"]: user for user in objects_of(objects, "KafkaUser")}
    listeners = named(objects, "Kafka", "classpulse")["spec"]["kafka"]["listeners"]
    assert [(listener["tls"], listener["authentication"]["type"]) for listener in listeners] == [(True, "scram-sha-512")]
    for stage, topic_field in STAGE_INPUT_TOPIC.items():
        deployment = named(objects, "Deployment", stage)
        env = container_env(objects, containers(deployment)[0])
        user = env["CLASSPULSE_KAFKA_SASL_USERNAME"]["value"]
        assert env["CLASSPULSE_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user
        topic = getattr(settings_class(stage)().kafka, topic_field)
        reads = {acl["resource"]["name"] for acl in users[user]["spec"]["authorization"]["acls"] if "Read" in acl["operations"]}
        assert reads == {topic, f"classpulse-{stage}"}, f"{user} reads exactly its topic and its group"
    for scaled in objects_of(objects, "ScaledObject"):
        assert scaled["spec"]["triggers"][0]["metadata"]["sasl"] == "scram_sha512"
        assert named(objects, "TriggerAuthentication", scaled["spec"]["triggers"][0]["authenticationRef"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves(overlay: str) -> None:
    """ConfigMaps and ServiceAccounts must be rendered; Secrets rendered, made by an operator, or documented."""
    objects = render(overlay)
    rendered = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    user_secrets = {user["metadata"]["name"] for user in objects_of(objects, "KafkaUser")}
    documented = (K8S / "README.md").read_text()
    for workload in _workloads(overlay):
        spec = pod_spec(workload)
        assert ("ServiceAccount", spec["serviceAccountName"]) in rendered
        for node in walk_dicts(spec):
            if "configMapRef" in node or "configMapKeyRef" in node:
                assert ("ConfigMap", (node.get("configMapRef") or node["configMapKeyRef"])["name"]) in rendered
            if "configMap" in node and "name" in node["configMap"]:
                assert ("ConfigMap", node["configMap"]["name"]) in rendered
            secret = (node.get("secretKeyRef") or {}).get("name") or (node.get("secret") or {}).get("secretName")
            if secret and ("Secret", secret) not in rendered:
                assert secret in OPERATOR_MADE_SECRETS | user_secrets or (secret in EXTERNAL_SECRETS and f"`{secret}`" in documented), secret


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_is_default_deny_and_ingress_is_tls_only(overlay: str) -> None:
    objects = render(overlay)
    deny = named(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    ingress = named(objects, "Ingress", "classpulse")
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts == set(ingress["spec"]["tls"][0]["hosts"])
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(
    ("service", "setting"),
    [("ingest", "CLASSPULSE_SOURCE_ALLOWED_NETWORKS"), ("api", "CLASSPULSE_WEBHOOK_ALLOWED_NETWORKS")],
    ids=["ingest-cameras", "api-webhooks"],
)
def test_a_service_reaches_the_networks_it_is_configured_for_and_nothing_else(overlay: str, service: str, setting: str) -> None:
    objects = render(overlay)
    networks = json.loads(container_env(objects, containers(named(objects, "Deployment", service))[0])[setting]["value"])
    egress = [
        rule
        for policy in objects_of(objects, "NetworkPolicy")
        if "Egress" in policy["spec"]["policyTypes"]
        and _selects(policy["spec"]["podSelector"], {"app.kubernetes.io/name": service})
        for rule in policy["spec"].get("egress", [])
    ]
    peers = [peer for rule in egress for peer in rule.get("to", [{}])]
    # Pods of the namespace (Kafka, Redis) and DNS, else only the configured networks: no rule open to every address.
    assert all(peer and (set(peer) <= {"podSelector", "namespaceSelector"} or set(peer) == {"ipBlock"}) for peer in peers), peers
    assert sorted(peer["ipBlock"]["cidr"] for peer in peers if "ipBlock" in peer) == sorted(networks)
    assert overlay != "prod" or networks == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_controller_reaches_cert_managers_http01_solver(overlay: str) -> None:
    """Default deny would keep the CA's HTTP-01 challenge, through the ingress controller, from the solver pod
    cert-manager starts in the namespace: the certificate would never be issued."""
    objects = render(overlay)
    solver = {"acme.cert-manager.io/http01-solver": "true"}
    admitted = [
        (peer, port["port"])
        for policy in objects_of(objects, "NetworkPolicy")
        if "Ingress" in policy["spec"]["policyTypes"] and _selects(policy["spec"]["podSelector"], solver)
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        for port in rule.get("ports", [])
    ]
    assert admitted == [({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}, 8089)]


def test_a_large_stage_rolls_out_a_quarter_at_a_time() -> None:
    """One new pod at a time (maxSurge 1), each waiting to be ready, would take hours to replace 170 detectors."""
    objects = render("prod")
    large = [s["spec"]["scaleTargetRef"]["name"] for s in objects_of(objects, "ScaledObject") if s["spec"]["maxReplicaCount"] >= 50]
    assert large == ["detector"]
    for name in large:
        assert named(objects, "Deployment", name)["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    expressions_hold = all(
        labels.get(e["key"]) in e["values"] if e["operator"] == "In" else labels.get(e["key"]) not in e["values"]
        for e in selector.get("matchExpressions", [])
    )
    return selector.get("matchLabels", {}).items() <= labels.items() and expressions_hold


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_probes_use_the_ports_the_containers_open(overlay: str) -> None:
    objects = render(overlay)
    for service in objects_of(objects, "Service"):
        if service["spec"].get("type") == "ExternalName":
            continue
        selector = service["spec"]["selector"]
        pods = [w for w in _workloads(overlay) if w["spec"]["selector"]["matchLabels"].items() >= selector.items()]
        assert pods, f"Service {service['metadata']['name']} selects nothing"
        opened = {port["name"] for container in containers(pods[0]) for port in container.get("ports", [])}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= opened
    for name, _spec, container in _by_workload(overlay):
        opened = {port["name"] for port in container.get("ports", [])} | {port["containerPort"] for port in container.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            action = container.get(probe, {}).get("httpGet") or container.get(probe, {}).get("tcpSocket")
            if action:
                assert action["port"] in opened, f"{name} {probe} port {action['port']}"
