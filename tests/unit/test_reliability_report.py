"""The arithmetic behind the reliability and load reports: differences from the clean run, and quantiles of a
Prometheus histogram between two scrapes."""

from __future__ import annotations

import math

import pytest

from classpulse_core.timeseries import EMOTION_METRICS, FACES, FRAMES
from classpulse_reliability.drills import DrillResult
from classpulse_reliability.isolated import COMPONENTS
from classpulse_reliability.load import MIB, LoadPlan, LoadResult, Sample, histogram_quantiles
from classpulse_reliability.report import identical, table
from classpulse_reliability.sections import kept_sections, markers, replace_section, wrap
from classpulse_reliability.soak import memory_series, memory_verdicts

pytestmark = pytest.mark.unit


def _result(fault: str, frames: float = 48, faces: float = 200, emotion: float = 20.0, exits: tuple[str, ...] = ()) -> DrillResult:
    totals = {FRAMES: frames, FACES: faces, **dict.fromkeys(EMOTION_METRICS, emotion)}
    return DrillResult(fault, ("c",), 48, 48, 48, int(faces), totals, 1.0, 2.0, 9.0, exits, ())


def test_a_run_is_identical_only_with_the_same_counts_and_emotions_within_a_hundred_thousandth():
    clean = _result("clean run")
    assert identical(_result("kill"), clean)
    assert identical(_result("kill", emotion=20.0 * (1 + 5e-6)), clean)
    assert not identical(_result("kill", emotion=20.0 * (1 + 5e-5)), clean)
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


def test_named_sections_survive_a_rewrite_of_the_fault_drills(tmp_path):
    report = tmp_path / "reliability-report.md"
    flood, soak = wrap("upload-flood", ["## Upload flood", "peak 300 MiB"]), wrap("soak", ["## Soak", "kafka 430 MiB"])
    report.write_text(replace_section(replace_section("# Reliability report: fault drills\n| table |\n", "upload-flood", flood), "soak", soak))
    report.write_text("# Reliability report: fault drills\n| new table |\n" + "\n" + kept_sections(report))
    text = report.read_text()
    assert "| new table |" in text and "peak 300 MiB" in text and "kafka 430 MiB" in text
    rewritten = replace_section(text, "upload-flood", flood.replace("300", "280"))
    assert "peak 280 MiB" in rewritten and "peak 300 MiB" not in rewritten
    assert rewritten.count(markers("upload-flood")[0]) == 1 and "kafka 430 MiB" in rewritten


def _soak(rss_of_kafka: list[int], every_s: float = 60.0) -> LoadResult:
    samples = [
        Sample(at_s=i * every_s, published=0, lag={}, messages_in={}, rss={name: (rss if name == "kafka" else 100) for name in COMPONENTS})
        for i, rss in enumerate(rss_of_kafka)
    ]
    return LoadResult(LoadPlan(), [], published=10, counted=10, drained_s=5.0, samples=samples)


def test_soak_memory_is_flat_within_a_tenth_of_its_level_after_warm_up():
    # Warm-up (the first two samples) may grow as it likes; then 100 is the level, and 109 stays within 10%.
    flat = {v.process: v for v in memory_verdicts(_soak([10, 50, 100, 104, 109, 95]), warm_up_s=120)}
    assert (flat["kafka"].level, flat["kafka"].high, flat["kafka"].end) == (100, 109, 95) and flat["kafka"].flat
    leaking = {v.process: v for v in memory_verdicts(_soak([10, 50, 100, 104, 111]), warm_up_s=120)}
    assert not leaking["kafka"].flat and abs(leaking["kafka"].worst_deviation - 0.11) < 1e-9
    assert all(v.flat for v in leaking.values() if v.process != "kafka")



def test_the_soak_report_shows_every_process_memory_over_time_every_30_s_and_the_last_sample():
    kafka_mib = [10, 50, 100, 104, 111, 95, 96, 97, 98]
    result = _soak([mib * MIB for mib in kafka_mib], every_s=10.0)
    header, _, *rows = memory_series(result, warm_up_s=20.0)
    assert header == "| s | phase | detector lag | " + " | ".join(COMPONENTS) + " |"
    cells = [row.strip("| ").split(" | ") for row in rows]
    # Samples at 0..80 s: shown at 0, 30, 60 and 80 s (the last); the level is the minute after warm-up (20-80 s).
    assert [(at, phase, kafka) for at, phase, _, kafka, *_ in cells] == [
        ("0", "warm-up", "10"), ("30", "level", "104"), ("60", "level", "96"), ("80", "", "98"),
    ]
