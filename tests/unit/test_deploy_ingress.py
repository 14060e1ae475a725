"""The Ingress routes what people reach and nothing else. Every route of the two public apps (read from the FastAPI
apps themselves, so a new route cannot be forgotten) is routed to its service on its host, except the operations
routes and the API reference, which only the cluster reaches; components/public-api-docs publishes the reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from deploy_support import OVERLAYS, named, render, render_with_component

pytestmark = pytest.mark.unit

INTERNAL = {"/healthz", "/readyz", "/metrics"}
"""Probes and scrapes: answered to the kubelet and Prometheus inside the cluster only (readiness names what fails)."""


class _NoKafka:
    """Stands in for ingest's Kafka pipeline, whose producer connects to a broker as it is made: these tests read the
    app's routes, nothing the pipeline does."""

    def __init__(self, *_args: object) -> None:
        pass


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> dict[str, FastAPI]:
    """The apps behind the Ingress, by Service name, built without connecting to anything."""
    import classpulse_ingest.app
    from classpulse_api.app import create_app as api_app
    from classpulse_api.settings import ApiSettings
    from classpulse_ingest.settings import IngestSettings

    monkeypatch.setattr(classpulse_ingest.app, "Pipeline", _NoKafka)
    return {"api": api_app(ApiSettings()), "ingest": classpulse_ingest.app.create_app(IngestSettings())}


def _paths(app: FastAPI) -> set[str]:
    """Every path template an app answers. FastAPI keeps an included router as one route holding the router."""
    paths, todo = set(), list(app.routes)
    while todo:
        route = todo.pop()
        if hasattr(route, "original_router"):
            todo.extend(route.original_router.routes)
        else:
            paths.add(route.path)
    return paths


def _reference(app: FastAPI) -> set[str]:
    """The API reference: the OpenAPI document and the pages that render it."""
    return {path for path in _paths(app) if path in (app.openapi_url, app.redoc_url) or path.startswith(app.docs_url)}


def _elements(path: str) -> list[str]:
    return [element for element in path.split("/") if element]


def _backend(ingress: dict, host: str, path: str) -> str | None:
    """The Service a request for `path` on `host` reaches (Kubernetes' Exact and Prefix matching, the longest match
    winning), or None when the Ingress does not route it."""
    (rule,) = [rule for rule in ingress["spec"]["rules"] if rule["host"] == host]
    matches = [
        entry for entry in rule["http"]["paths"]
        if (entry["pathType"] == "Exact" and path == entry["path"])
        or (entry["pathType"] == "Prefix" and _elements(path)[: len(_elements(entry["path"]))] == _elements(entry["path"]))
    ]
    if not matches:
        return None
    return max(matches, key=lambda entry: len(entry["path"]))["backend"]["service"]["name"]


def _host_of(ingress: dict, service: str) -> str:
    (host,) = [
        rule["host"] for rule in ingress["spec"]["rules"]
        if {entry["backend"]["service"]["name"] for entry in rule["http"]["paths"]} == {service}
    ]
    return host


def _example(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_every_public_route_and_nothing_internal(overlay: str, apps: dict[str, FastAPI]) -> None:
    ingress = named(render(overlay), "Ingress", "classpulse")
    for service, app in apps.items():
        host = _host_of(ingress, service)
        hidden = INTERNAL | _reference(app)
        for template in _paths(app):
            expected = None if template in hidden else service
            assert _backend(ingress, host, _example(template)) == expected, f"{host}{template}"
        for other in ("/", "/internal", "/metricsx"):
            assert _backend(ingress, host, other) is None, f"{host}{other}"


def test_students_reach_their_page_and_nobody_reaches_operations() -> None:
    """The issue's cases by name, so that the route discovery above cannot pass by finding nothing."""
    ingress = named(render("prod"), "Ingress", "classpulse")
    ingest, api = _host_of(ingress, "ingest"), _host_of(ingress, "api")
    for path in ("/student/class-7", "/student-assets/student.js", "/v1/classes/class-7/frames"):
        assert _backend(ingress, ingest, path) == "ingest", path
    for path in ("/v1/classes/class-7/summary", "/dashboard", "/dashboard/app.js"):
        assert _backend(ingress, api, path) == "api", path
    for host in (ingest, api):
        for path in ("/metrics", "/docs", "/openapi.json", "/redoc", "/readyz", "/healthz"):
            assert _backend(ingress, host, path) is None, f"{host}{path}"


def test_public_api_docs_component_publishes_the_reference_only(tmp_path: Path, apps: dict[str, FastAPI]) -> None:
    ingress = named(render_with_component("prod", "public-api-docs", tmp_path), "Ingress", "classpulse")
    api = apps["api"]
    host = _host_of(ingress, "api")
    for template in _reference(api):
        assert _backend(ingress, host, template) == "api", template
    for path in INTERNAL:
        assert _backend(ingress, host, path) is None, path
