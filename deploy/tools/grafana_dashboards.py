"""The Grafana dashboards (deploy/grafana/*.json), generated from the typed definitions below.

    python deploy/tools/grafana_dashboards.py          write deploy/grafana/<uid without "classpulse-">.json
    python deploy/tools/grafana_dashboards.py --check  exit 1 if a committed file differs (a unit test runs this)

Edit the definitions, not the JSON. A dashboard is lines of panels laid out left to right, each line below the
tallest panel of the one before (Grafana's 24-column grid); rows are full-width section headers. Every panel reads
Prometheus through the dashboard's `datasource` variable. `tests/e2e/test_grafana_queries.py` runs every query of
the generated files against a running stack's Prometheus; `deploy/tools/sync_monitoring.py` turns them into the
Kubernetes ConfigMaps.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "deploy" / "grafana"
GRID_COLUMNS = 24
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

Json = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel; `legend` names its series (Grafana's legendFormat)."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Row:
    """A full-width section header."""

    title: str
    width: int = GRID_COLUMNS
    height: int = 1

    def json(self) -> Json:
        return {"type": "row", "title": self.title, "collapsed": False, "panels": []}


@dataclass(frozen=True)
class Text:
    """A Markdown panel."""

    title: str
    content: str
    width: int
    height: int

    def json(self) -> Json:
        return {"type": "text", "title": self.title, "options": {"mode": "markdown", "content": self.content}}


@dataclass(frozen=True)
class Stat:
    """The last value of one query, coloured by thresholds: (colour, from value) steps, the first from None."""

    title: str
    description: str
    queries: Sequence[Query]
    unit: str
    width: int
    height: int
    thresholds: Sequence[tuple[str, float | None]] = (("green", None),)
    decimals: int | None = None

    def json(self) -> Json:
        defaults: Json = {
            "unit": self.unit,
            "thresholds": {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in self.thresholds]},
            "color": {"mode": "thresholds"},
        }
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
        }
        return _queried_panel("stat", self, defaults, options)


@dataclass(frozen=True)
class TimeSeries:
    """Lines from zero, one per series of its queries; `stacked` stacks them into filled areas."""

    title: str
    description: str
    queries: Sequence[Query]
    unit: str
    width: int
    height: int
    stacked: bool = False

    def json(self) -> Json:
        custom = {
            "fillOpacity": 35 if self.stacked else 12,
            "lineWidth": 2,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if self.stacked else "none"},
        }
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        return _queried_panel("timeseries", self, {"unit": self.unit, "custom": custom, "min": 0}, options)


Panel = Row | Text | Stat | TimeSeries


def _queried_panel(kind: str, panel: Stat | TimeSeries, defaults: Json, options: Json) -> Json:
    targets = [
        {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": query.expr, "legendFormat": query.legend, "range": True}
        for index, query in enumerate(panel.queries)
    ]
    return {
        "type": kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    lines: Sequence[Sequence[Panel]]

    @property
    def file_name(self) -> str:
        return self.uid.removeprefix("classpulse-") + ".json"

    def json(self) -> Json:
        panels, y = [], 0
        for line in self.lines:
            x = 0
            for panel in line:
                if x + panel.width > GRID_COLUMNS:
                    raise ValueError(f"{self.uid}: line at y={y} is wider than {GRID_COLUMNS} columns at {panel.title!r}")
                grid = {"h": panel.height, "w": panel.width, "x": x, "y": y}
                panels.append({**panel.json(), "id": len(panels) + 1, "gridPos": grid})
                x += panel.width
            y += max(panel.height for panel in line)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["classpulse"],
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "timezone": "browser",
            "time": {"from": "now-1h", "to": "now"},
            "refresh": "30s",
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "annotations": {"list": []},
            "links": [],
            "templating": {
                "list": [
                    {
                        "name": "datasource",
                        "label": "Prometheus",
                        "type": "datasource",
                        "query": "prometheus",
                        "current": {},
                        "hide": 0,
                        "refresh": 1,
                        "regex": "",
                        "options": [],
                        "includeAll": False,
                        "multi": False,
                    }
                ]
            },
            "panels": panels,
        }

    def text(self) -> str:
        return json.dumps(self.json(), indent=2, ensure_ascii=False) + "\n"


# --- the dashboards -------------------------------------------------------------------------------------------------

FRAMES_IN = Query('sum(rate(classpulse_messages_in_total{stage="detector"}[$__rate_interval]))')
"""Frames entering the pipeline per second (the detector consumes every frame ingest publishes): on both dashboards."""

CLASS_NUMBERS_TEXT = """\
### Where the class numbers are

Prometheus holds **no per-class series**, on purpose: class ids as labels would grow without bound, and class numbers
belong to the teacher who owns the class, behind an API key. Per class, per second, the aggregator writes sums
(frames, faces, each emotion's probability) to **RedisTimeSeries**, rolled up to 10 s, 1 min and 1 h buckets.

Read them through the API (every call needs `Authorization: Bearer <API key>`; a teacher key reads its own classes):

| what | call |
|---|---|
| the teacher's live page | `GET /dashboard` in a browser |
| the last seconds | `GET /v1/classes/{id}/live?window=10` |
| totals, phases and peaks of a lesson | `GET /v1/classes/{id}/summary?session={session_id}` |
| a metric over time | `GET /v1/classes/{id}/timeseries?from=…&to=…&bucket=1m` |
| alerts of the class | `GET /v1/classes/{id}/events` |
| everything as it happens | `GET /v1/classes/{id}/stream` (Server-Sent Events) |

The panels here are what Prometheus sees of all classes together: how many frames and faces flow, and how late.
"""

PIPELINE_HEALTH = Dashboard(
    uid="classpulse-pipeline-health",
    title="ClassPulse pipeline health",
    description=(
        "Throughput, lag, latency and errors of each pipeline stage; the alert rules are in deploy/prometheus/rules/."
    ),
    lines=(
        [
            Row("Now"),
        ],
        [
            Stat(
                "Frames in",
                "Frames the detector consumes per second: what enters the pipeline.",
                [
                    FRAMES_IN,
                ],
                unit="short", width=5, height=4, decimals=1,
            ),
            Stat(
                "Frame results aggregated",
                "Frame results the aggregator writes to Redis per second: what reaches teachers.",
                [
                    Query('sum(rate(classpulse_messages_in_total{stage="aggregator"}[$__rate_interval]))'),
                ],
                unit="short", width=5, height=4, decimals=1,
            ),
            Stat(
                "Services up",
                "Services answering their metrics scrape, out of five.",
                [
                    Query('sum(up{job="classpulse"})'),
                ],
                unit="none", width=4, height=4, thresholds=[("red", None), ("orange", 4), ("green", 5)],
            ),
            Stat(
                "Largest lag",
                "Messages waiting, in the stage and topic furthest behind.",
                [
                    Query("max(sum by (stage, topic) (classpulse_consumer_lag))"),
                ],
                unit="short", width=5, height=4, thresholds=[("green", None), ("orange", 100), ("red", 1000)],
            ),
            Stat(
                "Capture to aggregated, p95",
                "95th percentile of the time from a frame's capture until the aggregator wrote it.",
                [
                    Query('histogram_quantile(0.95, sum by (le) (rate(classpulse_latency_seconds_bucket{stage="aggregator"}[$__rate_interval])))'),
                ],
                unit="s", width=5, height=4, thresholds=[("green", None), ("orange", 2), ("red", 10)],
            ),
        ],
        [
            Row("Throughput"),
        ],
        [
            TimeSeries(
                "Messages consumed and redelivered per stage",
                "Messages each stage consumes (and commits) per second, and those delivered again after their batch was rewound (a dependency away, a failed message retried): redeliveries without consumption are a stage retrying without progress.",
                [
                    Query("sum by (stage) (rate(classpulse_messages_in_total[$__rate_interval]))", "{{stage}} consumed"),
                    Query("sum by (stage) (rate(classpulse_messages_redelivered_total[$__rate_interval]))\n  or sum by (stage) (0 * rate(classpulse_messages_in_total[$__rate_interval]))", "{{stage}} redelivered"),
                ],
                unit="short", width=8, height=8,
            ),
            TimeSeries(
                "Messages produced per stage and topic",
                "What each stage hands on, per output topic.",
                [
                    Query("sum by (stage, topic) (rate(classpulse_messages_out_total[$__rate_interval]))", "{{stage}} → {{topic}}"),
                ],
                unit="short", width=8, height=8,
            ),
            TimeSeries(
                "Messages per consumed batch",
                "Median and 95th percentile batch size per stage: large batches mean a stage catching up.",
                [
                    Query("histogram_quantile(0.5, sum by (stage, le) (rate(classpulse_batch_size_bucket[$__rate_interval])))", "{{stage}} p50"),
                    Query("histogram_quantile(0.95, sum by (stage, le) (rate(classpulse_batch_size_bucket[$__rate_interval])))", "{{stage}} p95"),
                ],
                unit="short", width=8, height=8,
            ),
        ],
        [
            Row("Lag"),
        ],
        [
            TimeSeries(
                "Consumer lag",
                "Messages waiting in each input topic, summed over its partitions.",
                [
                    Query("sum by (stage, topic) (classpulse_consumer_lag)", "{{stage}} ← {{topic}}"),
                ],
                unit="short", width=12, height=8,
            ),
            TimeSeries(
                "Time behind live",
                "Lag divided by the rate the stage consumes at: how late teachers see the class (ConsumerLagHigh fires above 30 s).",
                [
                    Query("sum by (stage, topic) (classpulse_consumer_lag)\n  / clamp_min(sum by (stage, topic) (rate(classpulse_messages_in_total[$__rate_interval])), 1)", "{{stage}} ← {{topic}}"),
                ],
                unit="s", width=12, height=8,
            ),
        ],
        [
            Row("Latency"),
        ],
        [
            TimeSeries(
                "Capture to stage done",
                "Time from a frame's capture until each stage finished with it (classpulse_latency_seconds): p50, p95, p99.",
                [
                    Query("histogram_quantile(0.5, sum by (stage, le) (rate(classpulse_latency_seconds_bucket[$__rate_interval])))", "{{stage}} p50"),
                    Query("histogram_quantile(0.95, sum by (stage, le) (rate(classpulse_latency_seconds_bucket[$__rate_interval])))", "{{stage}} p95"),
                    Query("histogram_quantile(0.99, sum by (stage, le) (rate(classpulse_latency_seconds_bucket[$__rate_interval])))", "{{stage}} p99"),
                ],
                unit="s", width=12, height=9,
            ),
            TimeSeries(
                "Batch processing time",
                "Time to process one consumed batch, output produced and offsets committed (classpulse_batch_processing_seconds).",
                [
                    Query("histogram_quantile(0.5, sum by (stage, le) (rate(classpulse_batch_processing_seconds_bucket[$__rate_interval])))", "{{stage}} p50"),
                    Query("histogram_quantile(0.95, sum by (stage, le) (rate(classpulse_batch_processing_seconds_bucket[$__rate_interval])))", "{{stage}} p95"),
                    Query("histogram_quantile(0.99, sum by (stage, le) (rate(classpulse_batch_processing_seconds_bucket[$__rate_interval])))", "{{stage}} p99"),
                ],
                unit="s", width=12, height=9,
            ),
        ],
        [
            Row("Errors"),
        ],
        [
            TimeSeries(
                "Dead letters per stage",
                "Messages sent to a dead-letter topic per second (DeadLettersHigh fires above 1% of the input).",
                [
                    Query("sum by (stage) (rate(classpulse_dead_letters_total[$__rate_interval]))\n  or sum by (stage) (0 * rate(classpulse_messages_in_total[$__rate_interval]))", "{{stage}}"),
                ],
                unit="short", width=6, height=8,
            ),
            TimeSeries(
                "Errors per stage",
                "Batches that failed whole and were retried one message at a time.",
                [
                    Query("sum by (stage) (rate(classpulse_errors_total[$__rate_interval]))\n  or sum by (stage) (0 * rate(classpulse_messages_in_total[$__rate_interval]))", "{{stage}}"),
                ],
                unit="short", width=6, height=8,
            ),
            TimeSeries(
                "Dependency retries",
                "Batches rewound because Kafka, Redis or the model server was unavailable.",
                [
                    Query("sum by (stage) (rate(classpulse_dependency_retries_total[$__rate_interval]))\n  or sum by (stage) (0 * rate(classpulse_messages_in_total[$__rate_interval]))", "{{stage}}"),
                ],
                unit="short", width=6, height=8,
            ),
            TimeSeries(
                "Redeliveries ignored",
                "Messages delivered again (after a rebalance or a retry) whose effect was already applied: exactly-once at work.",
                [
                    Query("sum by (stage) (rate(classpulse_duplicates_ignored_total[$__rate_interval]))\n  or sum by (stage) (0 * rate(classpulse_messages_in_total[$__rate_interval]))", "{{stage}}"),
                ],
                unit="short", width=6, height=8,
            ),
        ],
        [
            Row("HTTP"),
        ],
        [
            TimeSeries(
                "Requests per service",
                "HTTP requests per second, by service and status.",
                [
                    Query("sum by (service, status) (rate(classpulse_http_requests_total[$__rate_interval]))", "{{service}} {{status}}"),
                ],
                unit="reqps", width=8, height=8,
            ),
            TimeSeries(
                "Server errors",
                "Share of requests answered with a 5xx (ApiErrorRate fires above 5%).",
                [
                    Query('(sum by (service) (rate(classpulse_http_requests_total{status=~"5.."}[$__rate_interval]))\n  or sum by (service) (0 * rate(classpulse_http_requests_total[$__rate_interval])))\n/ sum by (service) (rate(classpulse_http_requests_total[$__rate_interval]))', "{{service}}"),
                ],
                unit="percentunit", width=8, height=8,
            ),
            TimeSeries(
                "API latency per route, p95",
                "95th percentile of the API's answer time, by route.",
                [
                    Query('histogram_quantile(0.95, sum by (route, le) (rate(classpulse_http_request_seconds_bucket{service="api"}[$__rate_interval])))', "{{route}}"),
                ],
                unit="s", width=8, height=8,
            ),
        ],
        [
            Row("Model server"),
        ],
        [
            TimeSeries(
                "Predict calls",
                "Predict calls answered per second, by gRPC status: the local stand-in's tfserving_standin_* metrics, else TF Serving's own.",
                [
                    Query('sum by (status) (rate(tfserving_standin_requests_total{api="Predict"}[$__rate_interval]))\n  or sum by (status) (rate(:tensorflow:serving:request_count[$__rate_interval]))', "{{status}}"),
                ],
                unit="reqps", width=8, height=8,
            ),
            TimeSeries(
                "Predict latency, p95",
                "95th percentile of the model server's Predict time.",
                [
                    Query('histogram_quantile(0.95, sum by (le) (rate(tfserving_standin_request_latency_seconds_bucket{api="Predict"}[$__rate_interval])))\n  or histogram_quantile(0.95, sum by (le) (rate(:tensorflow:serving:request_latency_bucket{API="Predict"}[$__rate_interval]))) / 1e6', "p95"),
                ],
                unit="s", width=8, height=8,
            ),
            TimeSeries(
                "Model server unavailable",
                "Classifier batches retried because the model server did not answer (ModelServerDown fires after a minute of these).",
                [
                    Query('sum(rate(classpulse_dependency_retries_total{dependency="model_server"}[$__rate_interval]))\n  or sum(0 * rate(classpulse_messages_in_total{stage="classifier"}[$__rate_interval]))', "retries"),
                ],
                unit="short", width=8, height=8,
            ),
        ],
        [
            Row("Redis"),
        ],
        [
            TimeSeries(
                "Redis memory",
                "Memory each Redis uses, against its maxmemory (two thirds of its container's limit; 0: no limit, as on the local stack). Past maxmemory it refuses writes (RedisMemoryNearMax fires above 90%).",
                [
                    Query("redis_memory_used_bytes", "{{instance}} used"),
                    Query("redis_memory_max_bytes", "{{instance}} maxmemory"),
                ],
                unit="bytes", width=8, height=8,
            ),
            TimeSeries(
                "Redis commands and evictions",
                "Commands each Redis runs per second, and keys it evicts (never, with noeviction: RedisEvictingKeys).",
                [
                    Query("sum by (instance) (rate(redis_commands_processed_total[$__rate_interval]))", "{{instance}} commands"),
                    Query("sum by (instance) (rate(redis_evicted_keys_total[$__rate_interval]))", "{{instance}} evicted keys"),
                ],
                unit="ops", width=8, height=8,
            ),
            TimeSeries(
                "Redis replication",
                "Replicas following each primary (it refuses writes with fewer than min-replicas-to-write: RedisTooFewReplicas), and the longest time since one of them acknowledged it (0 without replicas).",
                [
                    Query('redis_connected_slaves and on (instance) redis_instance_info{role="master"}', "{{instance}} replicas"),
                    Query('max by (instance) (redis_connected_slave_lag_seconds)\n  or max by (instance) (0 * redis_connected_slaves and on (instance) redis_instance_info{role="master"})', "{{instance}} lag (s)"),
                ],
                unit="short", width=8, height=8,
            ),
        ],
        [
            Row("Detector"),
        ],
        [
            TimeSeries(
                "Frames/s by how faces were found (full scan, tracked, region scan)",
                "Between full Haar scans the detector follows known faces by template matching (a fifth of the CPU); region_scan: a tracked frame whose change away from the known faces (someone arriving) was scanned where it happened. A full-scan share near 1 means the whole picture keeps changing (light, a moving camera) or CLASSPULSE_FULL_SCAN_INTERVAL_MS is short.",
                [
                    Query("sum by (method) (rate(classpulse_detector_frames_total[$__rate_interval]))", "{{method}}"),
                ],
                unit="short", width=12, height=8,
            ),
        ],
    ),
)

CLASS_OVERVIEW = Dashboard(
    uid="classpulse-class-overview",
    title="ClassPulse class overview",
    description=(
        "What flows through ClassPulse for all classes together; per-class numbers are in Redis, behind the API (see the text panel)."
    ),
    lines=(
        [
            Text("Class-level numbers", CLASS_NUMBERS_TEXT, width=10, height=14),
            Stat(
                "Frames analysed",
                "Frames the detector looks at per second, all classes together.",
                [
                    FRAMES_IN,
                ],
                unit="short", width=7, height=5, decimals=1,
            ),
            Stat(
                "Faces classified",
                'Faces the classifier has classified per second (classpulse_faces_total{stage="classifier"}).',
                [
                    Query('sum(rate(classpulse_faces_total{stage="classifier"}[$__rate_interval]))'),
                ],
                unit="short", width=7, height=5, decimals=1,
            ),
        ],
        [
            TimeSeries(
                "Frames by class mode",
                "Frames of classes with emotions on go to the classifier (classpulse.faces); presence-only classes' frames go straight to the aggregator (classpulse.predictions).",
                [
                    Query('sum by (topic) (rate(classpulse_messages_out_total{stage="detector"}[$__rate_interval]))', "{{topic}}"),
                ],
                unit="short", width=14, height=9, stacked=True,
            ),
        ],
        [
            TimeSeries(
                "Faces per Predict call",
                "Median and 95th percentile of the faces the classifier sends to the model at once.",
                [
                    Query("histogram_quantile(0.5, sum by (le) (rate(classpulse_classifier_faces_per_call_bucket[$__rate_interval])))", "p50"),
                    Query("histogram_quantile(0.95, sum by (le) (rate(classpulse_classifier_faces_per_call_bucket[$__rate_interval])))", "p95"),
                ],
                unit="short", width=12, height=8,
            ),
            TimeSeries(
                "Capture to stage done, p95",
                "How late each stage finishes with a frame, from its capture: the delay a teacher's live numbers have.",
                [
                    Query("histogram_quantile(0.95, sum by (stage, le) (rate(classpulse_latency_seconds_bucket[$__rate_interval])))", "{{stage}} p95"),
                ],
                unit="s", width=12, height=8,
            ),
        ],
        [
            TimeSeries(
                "Teachers' API calls",
                "Requests per second to the class routes: live pages polling and streaming.",
                [
                    Query('sum by (route) (rate(classpulse_http_requests_total{service="api", route=~"/v1/classes/.+"}[$__rate_interval]))', "{{route}}"),
                ],
                unit="reqps", width=24, height=8,
            ),
        ],
    ),
)


DASHBOARDS = (PIPELINE_HEALTH, CLASS_OVERVIEW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = parser.parse_args()
    stale = []
    for dashboard in DASHBOARDS:
        path = DASHBOARDS_DIR / dashboard.file_name
        if args.check:
            if not path.exists() or path.read_text() != dashboard.text():
                stale.append(path.relative_to(REPO))
        else:
            path.write_text(dashboard.text())
            print(path.relative_to(REPO))
    if stale:
        sys.exit(f"stale: {', '.join(map(str, stale))}; run python deploy/tools/grafana_dashboards.py")


if __name__ == "__main__":
    main()
