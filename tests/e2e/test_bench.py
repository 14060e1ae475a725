"""`make bench` in its tiny configuration: every phase runs on an isolated stack of its own and the outputs hold
together (the tables, the one JSON line last, the results files and the growth plot)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "classpulse_bench", "--tiny", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout, out


def test_the_last_line_holds_the_machine_and_every_stage(tiny_bench):
    flat, _, _ = tiny_bench
    assert flat["machine.cores"] >= 1 and flat["machine.cpu"]
    assert flat["flops.bfloat16_gflops"] > 0
    for stage in ("ingest", "detector", "classifier", "model_server", "aggregator"):
        assert f"stages_each_alone_on_a_backlog_real_kafka.{stage}.peak_rss_mb" in flat
    assert flat["stages_each_alone_on_a_backlog_real_kafka.detector.per_s"] > 0
    assert flat["stages_each_alone_on_a_backlog_real_kafka.detector.cpu_ms_per_unit"] > 0


def test_frames_went_through_to_redis_with_a_latency_and_an_accuracy(tiny_bench):
    flat, _, _ = tiny_bench
    prefix = "end_to_end_everything_running.half_of_the_maximum."
    assert flat[prefix + "frames_per_s"] > 0 and flat[prefix + "faces_per_s"] > 0
    assert 0 < flat[prefix + "capture_to_redis_p50_ms"] <= flat[prefix + "capture_to_redis_p95_ms"]
    assert 0 < flat[prefix + "recall"] <= 1 and 0 <= flat[prefix + "accuracy"] <= 1


def test_the_accuracy_profile_ran_with_its_settings_and_was_scored(tiny_bench):
    _, _, out = tiny_bench
    latest = json.loads((out / "latest.json").read_text())
    assert latest["context"]["accuracy_profile"]["CLASSPULSE_MODEL_SIGNATURE"] == "serving_default"
    end_to_end = next(t for t in latest["tables"] if t["title"].startswith("End to end"))
    profile = {row["name"]: row for row in end_to_end["rows"] if "accuracy profile" in row["name"]}
    assert len(profile) == 2 and all(row["frames_per_s"] > 0 for row in profile.values())
    scored = profile["half of the defaults' maximum, accuracy profile"]
    assert 0 < scored["recall"] <= 1 and 0 <= scored["accuracy"] <= 1
    side_by_side = next(t for t in latest["tables"] if t["title"].startswith("Side by side"))
    assert any(row["name"] == "ClassPulse, accuracy profile / fer package" for row in side_by_side["rows"])


def test_targets_are_each_decided_and_the_table_shows_them(tiny_bench):
    flat, stdout, _ = tiny_bench
    decided = [key for key in flat if key.startswith("targets.") and key.endswith(".met")]
    assert len(decided) >= 6
    assert "Targets" in stdout and "Side by side" in stdout


def test_results_are_written_beside_the_growth_plot(tiny_bench):
    flat, _, out = tiny_bench
    latest = json.loads((out / "latest.json").read_text())
    assert latest["context"]["machine"]["cores"] == flat["machine.cores"]
    assert any(table["title"] == "Targets" for table in latest["tables"])
    assert (out / "growth.png").read_bytes()[:4] == b"\x89PNG"
