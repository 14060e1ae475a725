"""The Grafana dashboards are generated from typed definitions (deploy/tools/grafana_dashboards.py): the committed
JSON is exactly what they produce, and the layout fits Grafana's grid."""

from __future__ import annotations

import pytest

from deploy_support import REPO, load_tool

pytestmark = pytest.mark.unit

dashboards = load_tool("grafana_dashboards")


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
