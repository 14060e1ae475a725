"""The arithmetic behind the reliability and load reports: differences from the clean run, and quantiles of a
Prometheus histogram between two scrapes."""

from __future__ import annotations

import math

import pytest

from classpulse_common.timeseries import EMOTION_METRICS, FACES, FRAMES
from classpulse_reliability.drills import DrillResult
from classpulse_reliability.flood import SECTION, kept_section, replace_section
from classpulse_reliability.load import histogram_quantiles
from classpulse_reliability.report import identical, table

pytestmark = pytest.mark.unit


def _result(fault: str, frames: float = 48, faces: float = 200, emotion: float = 20.0, exits: tuple[str, ...] = ()) -> DrillResult:
    totals = {FRAMES: frames, FACES: faces, **dict.fromkeys(EMOTION_METRICS, emotion)}
    return DrillResult(fault, "c", 48, 48, 48, int(faces), totals, 1.0, 2.0, 9.0, exits, ())


def test_a_run_is_identical_only_with_the_same_counts_and_emotions_within_a_millionth():
    clean = _result("clean run")
    assert identical(_result("kill"), clean)
    assert identical(_result("kill", emotion=20.0 * (1 + 5e-7)), clean)
    assert not identical(_result("kill", emotion=20.0 * (1 + 5e-6)), clean)
    assert not identical(_result("kill", faces=201), clean)
    assert not identical(_result("kill", frames=47), clean)
    assert not identical(_result("kill", exits=("detector",)), clean)


def test_the_table_has_one_row_per_run_and_says_which_differ():
    rows = table([_result("clean run"), _result("kill -9 detector"), _result("Redis", faces=199)]).splitlines()
    assert len(rows) == 2 + 3
    assert rows[3].endswith("| identical |") and "| -1 |" in rows[4] and rows[4].endswith("| DIFFERS |")


def _histogram(counts: dict[str, float]) -> dict:
    return {("lat_bucket", frozenset({("stage", "aggregator"), ("le", le)})): value for le, value in counts.items()}


def test_histogram_quantiles_interpolate_within_the_bucket_of_what_was_observed_between_scrapes():
    before = _histogram({"0.5": 10, "1.0": 10, "2.0": 10, "+Inf": 10})
    # Since `before`: 50 observations at or under 0.5 s, 50 more between 1 and 2 s.
    after = _histogram({"0.5": 60, "1.0": 60, "2.0": 110, "+Inf": 110})
    quantiles = histogram_quantiles(before, after, "lat", "aggregator", (0.25, 0.5, 0.75, 0.99))
    assert quantiles[0.25] == pytest.approx(0.25)
    assert quantiles[0.5] == pytest.approx(0.5)
    assert quantiles[0.75] == pytest.approx(1.5)
    assert quantiles[0.99] == pytest.approx(1.98)


def test_histogram_quantiles_of_nothing_observed_are_nan():
    same = _histogram({"1.0": 3, "+Inf": 3})
    assert math.isnan(histogram_quantiles(same, same, "lat", "aggregator", (0.5,))[0.5])


def test_the_upload_flood_section_survives_a_rewrite_of_the_fault_drills(tmp_path):
    report = tmp_path / "reliability-report.md"
    first = f"{SECTION[0]}\n## Upload flood\npeak 300 MiB\n{SECTION[1]}\n"
    report.write_text(replace_section("# Reliability report: fault drills\n| table |\n", first))
    report.write_text("# Reliability report: fault drills\n| new table |\n" + "\n" + kept_section(report))
    assert "| new table |" in report.read_text() and "peak 300 MiB" in report.read_text()
    second = first.replace("300", "280")
    rewritten = replace_section(report.read_text(), second)
    assert "peak 280 MiB" in rewritten and "peak 300 MiB" not in rewritten and rewritten.count(SECTION[0]) == 1
