"""Both Kubernetes overlays render, the same with the kustomize of the oldest supported kubectl (`kubectl apply -k`)
as with the pinned one, and every object they render is valid: built-in kinds against the Kubernetes
JSON schemas of the oldest and newest supported minor versions (kubernetes-validate, strict: unknown fields fail),
custom resources against the committed CRD schemas of Strimzi, KEDA and the Prometheus Operator."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy_support import K8S, OVERLAYS, build, crd_schema, kustomize_version, render, strict

pytestmark = pytest.mark.unit

KUBERNETES_VERSIONS = ("1.35", kubernetes_validate.latest_version())
"""Upstream supports the three newest minors; 1.35 is the oldest of them when 1.37 is the newest."""

EXPECTED_KINDS = {
    "dev": {
        "Namespace", "ConfigMap", "Secret", "ServiceAccount", "Deployment", "StatefulSet", "Service",
        "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "Ingress",
        "Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject", "ServiceMonitor", "PodMonitor", "PrometheusRule",
    },
}
EXPECTED_KINDS["prod"] = EXPECTED_KINDS["dev"] - {"Secret"} | {"KafkaUser", "TriggerAuthentication"}


def _validate(obj: dict) -> None:
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    if schema is not None:
        jsonschema.Draft7Validator(strict(schema)).validate(obj)
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_every_kind_it_needs(overlay: str) -> None:
    kinds = {obj["kind"] for obj in render(overlay)}
    assert kinds == EXPECTED_KINDS[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_apply_k_renders_what_the_pinned_kustomize_does(overlay: str) -> None:
    """kubectl embeds its own kustomize; the oldest one we support must render every overlay byte for byte as the
    pinned one does (the versions between differ from these two by bug fixes only)."""
    assert build(overlay, kustomize_version("oldest")) == build(overlay, kustomize_version("pinned"))


def test_a_deleting_patch_is_alone_in_its_file() -> None:
    """Kustomize before v5.7 panics on the document after a `$patch: delete` in the same patch file: caught here
    even where only the pinned kustomize is installed."""
    for path in [*K8S.glob("overlays/*/*.yaml"), *K8S.glob("components/*/*.yaml")]:
        documents = [document for document in yaml.safe_load_all(path.read_text()) if document]
        if any(isinstance(document, dict) and document.get("$patch") == "delete" for document in documents):
            assert len(documents) == 1, f"{path.relative_to(K8S)}: move the `$patch: delete` into a file of its own"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay: str) -> None:
    failures = []
    for obj in render(overlay):
        try:
            _validate(obj)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {getattr(error, 'message', error)}")
        except kubernetes_validate.SchemaNotFoundError:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: no schema for {obj['apiVersion']}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("kind", "path", "bad_value"),
    [
        ("Kafka", ("spec", "kafka", "listners"), []),  # a typo'd field
        ("KafkaTopic", ("spec", "partitions"), "twelve"),
        ("ScaledObject", ("spec", "maxReplicaCount"), "many"),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0, "severity"), "critical"),
        ("Deployment", ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "8000"),
        ("Deployment", ("spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "paht"), "/"),
        ("NetworkPolicy", ("spec", "policyTypes"), "Ingress"),
    ],
)
def test_the_validation_catches_broken_objects(kind: str, path: tuple, bad_value: object) -> None:
    """The check above is only worth something if it fails on mistakes like these."""
    obj = copy.deepcopy(next(obj for obj in render("prod") if obj["kind"] == kind))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        _validate(obj)
