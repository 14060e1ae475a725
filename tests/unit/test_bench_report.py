"""The bench's pure parts: tables and the JSON line, histogram quantiles from /metrics text, accuracy scoring."""

import json

import pytest

from classpulse_bench.accuracy import FaceGuess, Score
from classpulse_bench.prom import Scrape, quantile
from classpulse_bench.report import Section, flatten, json_line, render
from classpulse_bench.targets import at_least, at_most, targets_section

pytestmark = pytest.mark.unit


def _sections() -> list[Section]:
    stages = Section("Stages, each alone")
    stages.add("detector", unit="frame", per_s=123.456, cpu_ms_per_unit=7.5, p95_ms=None)
    stages.add("classifier + model server", unit="face", per_s=2048.0, cpu_ms_per_unit=0.42)
    return [stages, targets_section([at_least("detector", 123.456, 100, "frames/s", "drain"),
                                      at_most("p95", 640.0, 500, "ms", "half load")])]


def test_every_figure_of_every_table_is_in_the_json_line_under_section_row_and_figure():
    flat = flatten(_sections(), {"machine.cores": 2})
    assert flat["machine.cores"] == 2
    assert flat["stages_each_alone.detector.per_s"] == 123.456
    assert flat["stages_each_alone.classifier_model_server.cpu_ms_per_unit"] == 0.42
    assert flat["stages_each_alone.detector.p95_ms"] is None
    assert flat["targets.detector.met"] is True and flat["targets.p95.met"] is False
    line = json_line(flat)
    assert "\n" not in line and json.loads(line) == flat


def test_tables_have_a_column_per_figure_and_show_missing_figures_as_a_dash():
    text = render(_sections())
    header, rule, detector, classifier = text.split("\n\n")[0].splitlines()
    assert header.split()[-4:] == ["unit", "per_s", "cpu_ms_per_unit", "p95_ms"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert detector.split()[-4:] == ["frame", "123.5", "7.50", "-"]
    assert classifier.split()[-4:] == ["face", "2,048", "0.42", "-"]
    assert "yes" in text and "no" in text  # targets met and missed


METRICS = """# TYPE classpulse_latency_seconds histogram
classpulse_latency_seconds_bucket{le="0.1",stage="aggregator"} 10.0
classpulse_latency_seconds_bucket{le="0.5",stage="aggregator"} 90.0
classpulse_latency_seconds_bucket{le="1.0",stage="aggregator"} 100.0
classpulse_latency_seconds_bucket{le="+Inf",stage="aggregator"} 100.0
classpulse_latency_seconds_count{stage="aggregator"} 100.0
classpulse_latency_seconds_sum{stage="aggregator"} 30.0
classpulse_latency_seconds_bucket{le="0.1",stage="detector"} 100.0
classpulse_latency_seconds_bucket{le="0.5",stage="detector"} 100.0
classpulse_latency_seconds_bucket{le="1.0",stage="detector"} 100.0
classpulse_latency_seconds_bucket{le="+Inf",stage="detector"} 100.0
"""


def test_quantiles_interpolate_inside_the_bucket_like_histogram_quantile():
    buckets = Scrape.parse(METRICS).buckets("classpulse_latency_seconds", stage="aggregator")
    assert buckets == [(0.1, 10.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.1 + 0.4 * 40 / 80)
    assert quantile(buckets, 0.95) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert quantile([], 0.5) is None


def test_differences_of_scrapes_count_only_what_happened_between_them():
    before = Scrape.parse(METRICS)
    after = Scrape.parse(METRICS.replace('le="1.0",stage="aggregator"} 100.0', 'le="1.0",stage="aggregator"} 150.0')
                         .replace('le="+Inf",stage="aggregator"} 100.0', 'le="+Inf",stage="aggregator"} 150.0'))
    delta = (after - before).buckets("classpulse_latency_seconds", stage="aggregator")
    assert quantile(delta, 0.5) == pytest.approx(0.75)  # the 50 new observations all fell in (0.5, 1.0]


def test_a_missed_face_counts_against_accuracy_but_not_against_accuracy_of_detected():
    truth = [{"box": [0, 0, 100, 100], "emotion": "happy"}, {"box": [200, 0, 100, 100], "emotion": "sad"}]
    score = Score()
    score.add_frame(truth, [FaceGuess((5, 5, 100, 100), "happy"), FaceGuess((400, 300, 50, 50), "sad")])
    assert score.figures() == {"recall": 0.5, "precision": 0.5, "accuracy": 0.5, "accuracy_of_detected": 1.0}


def test_capacity_throughput_is_one_core_per_replica_and_the_classifier_its_drain_rate(tmp_path):
    from classpulse_bench.capacity import per_replica_throughput, write_throughput

    rows = {
        "ingest": {"per_s": 900.0, "per_core_s": 1500.0},
        "detector": {"per_s": 48.0, "per_core_s": 39.0},
        "classifier": {"per_s": 888.0, "per_core_s": 33333.0},
        "model server": {"per_s": 888.0, "per_core_s": 1220.0},
        "aggregator": {"per_s": 2400.0, "per_core_s": None},
    }
    throughput = per_replica_throughput(rows)
    assert throughput == {"ingest_frames_per_s": 1500.0, "detector_frames_per_s": 39.0, "classifier_faces_per_s": 888.0,
                          "model_server_faces_per_core_s": 1220.0, "aggregator_frames_per_s": None}
    path = tmp_path / "throughput.json"
    path.write_text(json.dumps({"_comment": "kept", "frame_bytes": 30000, "detector_frames_per_s": None}))
    write_throughput(path, throughput)
    written = json.loads(path.read_text())
    assert written["_comment"] == "kept" and written["frame_bytes"] == 30000 and written["detector_frames_per_s"] == 39


def test_performance_doc_shows_the_committed_results_tables() -> None:
    from classpulse_bench import docs

    text = docs.DOCUMENT.read_text()
    assert docs.rendered(text) == text, "regenerate them: python -m classpulse_bench docs"


def test_docs_tables_are_markdown_of_every_row_and_refuse_a_document_without_markers(tmp_path) -> None:
    from classpulse_bench import docs

    section = Section("Stage costs", note="per frame")
    section.add("detector", per_s=120.5, cpu_ms=4.25)
    section.add("classifier", per_s=1523.0, recall=None)
    table = docs.markdown([section])
    assert table.splitlines() == [
        "**Stage costs** (per frame)",
        "",
        "| | per s | cpu ms | recall |",
        "|---|---:|---:|---:|",
        "| detector | 120.5 | 4.25 | - |",
        "| classifier | 1,523 | - | - |",
    ]
    for name in docs.REGIONS.values():
        (tmp_path / name).write_text(json.dumps({"tables": []}))
    with pytest.raises(ValueError, match="markers"):
        docs.rendered("no tables here", tmp_path)


def test_classes_are_out_of_step_but_together_show_the_same_frames_each_once() -> None:
    from classpulse_bench.publisher import video_frame

    classes, window = 4, 60
    starts = [video_frame(0, index, classes, window) for index in range(classes)]
    assert starts == [0, 15, 30, 45]
    for index in range(classes):
        assert sorted(video_frame(sequence, index, classes, window) for sequence in range(window)) == list(range(window))
    assert video_frame(window, 1, classes, window) == video_frame(0, 1, classes, window)  # loops
