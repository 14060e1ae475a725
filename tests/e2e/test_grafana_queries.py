"""Every PromQL expression of the Grafana dashboards (deploy/grafana/*.json) runs against the local stack's Prometheus
after a demo run: each parses and returns data, so no panel of a fresh deployment is empty or broken."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from classpulse_demo.run import api_client, stack_component
from classpulse_devstack.config import DevstackConfig

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO_ROOT / "deploy" / "grafana").glob("*.json"))
# The stack's own addresses: under CLASSPULSE_DEVSTACK_PORT_OFFSET another developer's stack holds the default ports.
PROMETHEUS = stack_component(DevstackConfig.from_env(), "prometheus").address + "/api/v1"
API = stack_component(DevstackConfig.from_env(), "api").address

GRAFANA_VARIABLES = {
    # Grafana's own: the rate window it picks for the panel (at least four scrapes), here wide enough to hold the
    # whole demo run and the queries after it on a busy machine (the run alone took over 2 minutes on 2 shared
    # cores), so that quantiles over it are numbers rather than NaN.
    "$__rate_interval": "10m",
    "$__interval": "15s",
    "$__range": "5m",
}


def panels(dashboard: dict):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels(panel)  # a collapsed row keeps its panels inside it


def expressions(path: Path) -> list[tuple[str, str]]:
    """(panel title, expression with Grafana's variables replaced) of every target of every panel."""
    found = []
    for panel in panels(json.loads(path.read_text())):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found.append((panel["title"], expr))
    return found


QUERIES = [(path.name, title, expr) for path in DASHBOARDS for title, expr in expressions(path)]


def test_dashboards_have_queries_and_no_unknown_variable():
    assert {path.name for path in DASHBOARDS} >= {"pipeline-health.json", "class-overview.json"}
    assert len(QUERIES) >= 20
    unresolved = [(name, title) for name, title, expr in QUERIES if "$" in expr]
    assert unresolved == []


def instant(query: str) -> float:
    (sample,) = httpx.get(f"{PROMETHEUS}/query", params={"query": query}, timeout=10).json()["data"]["result"]
    return float(sample["value"][1])


def wait_for_scrapes(after_s: float, scrapes: int = 2, timeout_s: float = 90) -> None:
    """Until every target is up and has been scraped `scrapes` times since `after_s`: a rate needs two samples."""
    interval = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())["global"]["scrape_interval"]
    interval_s = float(interval.rstrip("s"))
    deadline = time.monotonic() + timeout_s
    # timestamp(up) is when each target was last scraped; the oldest of them must be recent enough.
    while instant("min(up)") < 1 or instant("min(timestamp(up))") < after_s + (scrapes - 1) * interval_s:
        assert time.monotonic() < deadline, f"some target is down or was not scraped {scrapes} times in {timeout_s:.0f}s"
        time.sleep(1)


@pytest.fixture(scope="module")
def after_a_demo_run(stack, tmp_path_factory) -> Iterator[None]:
    class_id = f"grafana-{uuid.uuid4().hex[:8]}"
    out = tmp_path_factory.mktemp("grafana-sample")
    subprocess.run(
        [sys.executable, "-m", "classpulse_demo.sample_class", "--out", str(out), "--seconds", "12", "--fps", "2"],
        cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [sys.executable, "-m", "classpulse_demo.run", "--video", str(out / "sample_class.mp4"),
         "--class", class_id, "--timeout", "240"],
        cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_scrapes(after_s=time.time())
    yield
    with api_client(API) as admin:
        admin.delete(f"/v1/classes/{class_id}")


@pytest.mark.parametrize("dashboard,title,expr", QUERIES, ids=[f"{name}:{title}" for name, title, _ in QUERIES])
def test_query_parses_and_returns_data(after_a_demo_run, dashboard, title, expr):
    answer = httpx.get(f"{PROMETHEUS}/query", params={"query": expr}, timeout=30).json()
    assert answer["status"] == "success", answer.get("error")
    series = answer["data"]["result"]
    assert series, f"{dashboard} / {title}: no data for\n{expr}"
    values = [float(sample["value"][1]) for sample in series]
    assert any(math.isfinite(value) for value in values), f"{dashboard} / {title}: only NaN or Inf: {values}"
