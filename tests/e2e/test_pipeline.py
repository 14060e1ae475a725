"""The whole pipeline on the real local stack: the sample class video goes through ingest, Kafka, the detector, the
model server, the aggregator and Redis, and what the API returns is checked against the video's ground truth."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from classpulse_core.labels import EMOTIONS
from classpulse_demo.run import api_client

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(stack) -> str:
    """The API of the stack the environment names (CLASSPULSE_DEVSTACK_PORT_OFFSET moves it), as the demo finds it."""
    return stack.select("api")[0].address


@pytest.fixture(scope="module")
def sample_class(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, "-m", "classpulse_demo.sample_class", "--out", str(out), "--seconds", "24", "--fps", "4"],
        cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    return out / "sample_class.mp4"


@pytest.fixture(scope="module")
def demo_run(stack, sample_class):
    class_id = f"e2e-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "classpulse_demo.run", "--video", str(sample_class), "--class", class_id, "--timeout", "240"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    )
    labels = json.loads(sample_class.with_suffix(".labels.json").read_text())
    return json.loads(done.stdout.strip().splitlines()[-1]), labels, done.stderr


def test_every_frame_is_accounted_for(demo_run):
    summary, labels, _ = demo_run
    assert summary["frames"] == labels["frames"]


def test_faces_found_match_the_ground_truth(demo_run):
    summary, _labels, _ = demo_run
    # Haar misses a few faces and may add a few; the class-level count must stay close to the truth.
    assert summary["faces"] == pytest.approx(summary["expected_faces"], rel=0.15)


def test_emotion_shares_are_a_distribution_close_to_the_truth(demo_run):
    summary, labels, _ = demo_run
    shares = summary["emotions"]
    assert set(shares) == set(EMOTIONS)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
    expected = labels["expected_emotion_share"]
    # Within the model's accuracy: the scripted dominant emotions dominate what the class showed.
    top_expected = max(expected, key=expected.get)
    assert shares[top_expected] >= 0.5 * expected[top_expected]


def test_dominant_emotion_per_phase_matches_the_script(demo_run):
    _summary, labels, stderr = demo_run
    phase_lines = [line for line in stderr.splitlines() if line.startswith("phase ")]
    assert len(phase_lines) == len(labels["phases"])
    matched = sum(line.endswith(" ok") for line in phase_lines)
    assert matched >= len(phase_lines) - 1, "\n".join(phase_lines)


def whole_run(summary: dict) -> dict[str, int]:
    """The range that holds the whole run, as the demo reports it: a file ingested faster than real time is stamped
    on its own timeline, ending when ingest began reading it."""
    return {"from": summary["from"], "to": summary["to"]}


def test_timeseries_and_errors_through_the_api(demo_run, api):
    summary, labels, _ = demo_run
    class_id = summary["class_id"]
    with api_client(api) as client:
        series = client.get(f"/v1/classes/{class_id}/timeseries", params={"bucket": "1s", **whole_run(summary)}).json()
        assert sum(point["frames"] for point in series["points"]) == labels["frames"]
        assert series["emotion_enabled"] is True
        assert client.get("/v1/classes/no-such-class/summary").status_code == 404
        bad = client.get(f"/v1/classes/{class_id}/timeseries", params={"bucket": "7 parsecs"})
        assert bad.status_code == 422 and "duration" in bad.json()["error"]["message"]
        assert client.get(f"/v1/classes/{class_id}/summary", params={"from": "2030-01-01T00:00:00Z", "to": "2029-01-01T00:00:00Z"}).status_code == 422
        assert client.get("/docs").status_code == 200


def test_redelivered_results_do_not_count_twice(demo_run, stack, api):
    """Replay the class's frame results from the predictions topic into the aggregator's writer: nothing changes."""
    import redis
    from kafka import KafkaConsumer

    from classpulse_aggregator.writer import SeriesWriter, Written
    from classpulse_core.schemas import FrameResult
    from classpulse_core.settings import StorageSettings

    summary, labels, _ = demo_run
    consumer = KafkaConsumer("classpulse.predictions", bootstrap_servers=stack.config.kafka_bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    results = [FrameResult.decode(r.value) for r in consumer if r.key == summary["class_id"].encode()]
    consumer.close()
    assert len(results) == labels["frames"]
    writer = SeriesWriter(redis.Redis(port=stack.config.redis_port), StorageSettings().resolutions(), dedup_window_s=3600)
    assert {write.outcome for write in writer.write(results)} == {Written.DUPLICATE}
    with api_client(api) as client:
        after = client.get(f"/v1/classes/{summary['class_id']}/summary", params=whole_run(summary)).json()
    assert (after["frames"], after["faces"]) == (summary["frames"], summary["faces"])


def test_live_window_and_stream(demo_run, api):
    summary, _labels, _ = demo_run
    class_id = summary["class_id"]
    with api_client(api) as client:
        live = client.get(f"/v1/classes/{class_id}/live", params={"window": 3600}).json()
        assert live["class_id"] == class_id and live["emotion_status"] == "on"
        with client.stream("GET", f"/v1/classes/{class_id}/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            event = next(line for line in lines if line.startswith("event: "))
            data = json.loads(next(lines).removeprefix("data: "))
    assert event == "event: live" and data["class_id"] == class_id and "attention_risk" in data


def test_presence_only_class_never_reaches_the_classifier(stack, sample_class, api):
    """The same video into a presence-only class: faces and presence are reported, no emotion exists anywhere."""
    import redis
    from kafka import KafkaConsumer

    class_id = f"e2e-presence-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-m", "classpulse_demo.run", "--video", str(sample_class), "--class", class_id, "--presence-only", "--timeout", "240"],
        cwd=REPO_ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    labels = json.loads(sample_class.with_suffix(".labels.json").read_text())
    assert summary["frames"] == labels["frames"] and summary["faces"] > 0.8 * summary["expected_faces"]
    assert summary["emotions"] is None and summary["emotion_status"].startswith("off")
    keys = [key.decode() for key in redis.Redis(port=stack.config.redis_port).scan_iter(match=f"*{{{class_id}}}*")]
    assert any(key.endswith(":faces") for key in keys)
    assert not any("emotion" in key for key in keys)
    consumer = KafkaConsumer("classpulse.faces", bootstrap_servers=stack.config.kafka_bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    assert not any(record.key == class_id.encode() for record in consumer)
    consumer.close()
    with api_client(api) as client:
        series = client.get(f"/v1/classes/{class_id}/timeseries", params={"bucket": "10s", **whole_run(summary)}).json()
    assert series["emotion_enabled"] is False and all(point["emotions"] is None for point in series["points"])
    assert any(point["presence"] for point in series["points"])
