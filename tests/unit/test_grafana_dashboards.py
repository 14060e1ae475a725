"""The Grafana dashboards are generated from typed definitions (deploy/tools/grafana_dashboards.py): the committed
JSON is exactly what they produce, and the layout fits Grafana's grid."""

from __future__ import annotations

import re

import pytest

from deploy_support import REPO, exported_series, load_tool

pytestmark = pytest.mark.unit

dashboards = load_tool("grafana_dashboards")

TF_SERVING_APIS = {"Predict", "Classify", "Regress", "MultiInference"}
"""The `API` label of TF Serving's request metrics, as its prediction service records it (RecordRequestLatency(...,
/*api=*/"Predict", ...)); label matchers are case-sensitive."""


def _queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of every dashboard."""
    return [
        (panel["title"], target["expr"])
        for dashboard in dashboards.DASHBOARDS
        for panel in dashboard.json()["panels"]
        for target in panel.get("targets", [])
    ]


@pytest.mark.parametrize("dashboard", dashboards.DASHBOARDS, ids=lambda dashboard: dashboard.uid)
def test_committed_dashboard_is_what_its_definition_generates(dashboard) -> None:
    path = dashboards.DASHBOARDS_DIR / dashboard.file_name
    assert path.read_text() == dashboard.text(), "run: python deploy/tools/grafana_dashboards.py"


def test_every_dashboard_file_has_a_definition() -> None:
    generated = {dashboard.file_name for dashboard in dashboards.DASHBOARDS}
    assert {path.name for path in (REPO / "deploy" / "grafana").glob("*.json")} == generated


@pytest.mark.parametrize("dashboard", dashboards.DASHBOARDS, ids=lambda dashboard: dashboard.uid)
def test_panels_tile_the_grid_without_overlapping(dashboard) -> None:
    cells: set[tuple[int, int]] = set()
    panels = dashboard.json()["panels"]
    assert [panel["id"] for panel in panels] == list(range(1, len(panels) + 1))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_a_line_wider_than_the_grid_is_refused() -> None:
    wide = dashboards.Dashboard("classpulse-wide", "Wide", "", [[dashboards.Row("a"), dashboards.Row("b")]])
    with pytest.raises(ValueError, match="wider than 24 columns"):
        wide.json()


def test_queries_reach_the_json_in_order_with_their_legends() -> None:
    panel = dashboards.TimeSeries("t", "d", [dashboards.Query("up", "{{job}}"), dashboards.Query("vector(1)")], "short", 12, 8)
    targets = panel.json()["targets"]
    assert [(t["refId"], t["expr"], t["legendFormat"]) for t in targets] == [("A", "up", "{{job}}"), ("B", "vector(1)", "")]


def test_tf_serving_series_are_selected_by_the_api_names_it_records() -> None:
    for title, expr in _queries():
        assert set(re.findall(r'\bAPI="([^"]*)"', expr)) <= TF_SERVING_APIS, title


def test_a_stand_in_series_is_charted_only_beside_tf_servings_own() -> None:
    """tfserving_standin_* exist on the local stack alone: a panel of them only is empty in compose and Kubernetes."""
    for title, expr in _queries():
        if "tfserving_standin_" in expr:
            assert ":tensorflow:serving:" in expr, title


def test_every_classpulse_series_charted_is_one_a_service_exports() -> None:
    for title, expr in _queries():
        assert set(re.findall(r"\bclasspulse_\w+", expr)) <= exported_series(), title


def test_every_message_count_of_the_stages_is_charted() -> None:
    """Consumed, produced and redelivered: a stage that retries without end shows only in its redeliveries."""
    charted = {name for _title, expr in _queries() for name in re.findall(r"\bclasspulse_\w+", expr)}
    counted = {name for name in exported_series() if name.startswith("classpulse_messages_")}
    assert counted and counted <= charted, f"not on any dashboard: {sorted(counted - charted)}"
