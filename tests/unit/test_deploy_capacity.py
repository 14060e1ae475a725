"""The capacity guide's arithmetic, and that the table in deploy/k8s/README.md is the one the script computes."""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml

from deploy_support import K8S, OVERLAYS, load_tool, named, objects_of, render

pytestmark = pytest.mark.unit


def test_replicas_partitions_and_bandwidth_follow_the_formulas() -> None:
    capacity = load_tool("capacity")
    throughput = {"ingest_frames_per_s": 500.0, "detector_frames_per_s": 100.0, "classifier_faces_per_s": 1000.0,
                  "model_server_faces_per_core_s": 2000.0, "aggregator_frames_per_s": 1000.0, "frame_bytes": 30000}
    row = capacity.plan(capacity.Load(classes=100, students=30, fps=1.0, faces_per_frame=1.0), throughput)
    assert row["frames_per_s"] == row["faces_per_s"] == 3000
    assert row["detector"] == 43  # ceil(3000 / (100 x 0.7))
    assert row["classifier"] == 5 and row["model_server_cores"] == 3 and row["aggregator"] == 5 and row["ingest"] == 9
    assert row["partitions"] == 96  # 2 x 43 = 86, rounded up to a multiple of 12
    assert row["kafka_in_mb_s"] == pytest.approx(3000 * 30600 / 1e6 + 3000 * (48 * 48 + 200) / 1e6)
    room = capacity.plan(capacity.Load(classes=100, students=30, fps=1.0, faces_per_frame=30.0), throughput)
    assert room["frames_per_s"] == 100 and room["detector"] == 2


def test_broker_disk_holds_ten_minutes_of_images_and_a_day_of_predictions_replicated() -> None:
    capacity = load_tool("capacity")
    load = capacity.Load(classes=100, students=30, fps=1.0, faces_per_frame=1.0)
    images = 3000 * (30000 + 300) + 3000 * (48 * 48 + 200)  # frames, then crops, each with its message
    predictions = 3000 * 300
    # Segments roll at retention / 5 and go at a retention check, every minute.
    retained = images * (600 * 1.2 + 60) + predictions * (86_400 * 1.2 + 60)
    expected = math.ceil(retained * 3 / 3 / 0.75 / 2**30)  # 3 replicas over 3 brokers, 75% full
    assert capacity.broker_disk_gib(load, {"frame_bytes": 30000}, brokers=3) == expected
    assert capacity.broker_disk_gib(load, {"frame_bytes": 30000}, brokers=6) == math.ceil(retained * 3 / 6 / 0.75 / 2**30)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_retention_the_disk_is_planned_for_is_the_topics(overlay: str) -> None:
    capacity = load_tool("capacity")
    objects = render(overlay)
    planned = {"classpulse-predictions": capacity.PREDICTIONS_RETENTION_S, "classpulse-predictions-dlq": capacity.PREDICTIONS_RETENTION_S}
    for topic in objects_of(objects, "KafkaTopic"):
        config, name = topic["spec"]["config"], topic["metadata"]["name"]
        assert config["retention.ms"] == planned.get(name, capacity.IMAGE_RETENTION_S) * 1000, name
        assert config["segment.ms"] / config["retention.ms"] == pytest.approx(capacity.SEGMENT_FRACTION), name
    kafka_config = named(objects, "Kafka", "classpulse")["spec"]["kafka"]["config"]
    assert kafka_config["log.retention.check.interval.ms"] == capacity.RETENTION_CHECK_S * 1000


def test_a_missing_throughput_shows_as_unknown_not_as_a_number() -> None:
    capacity = load_tool("capacity")
    throughput = json.loads((K8S / "throughput.json").read_text()) | {"detector_frames_per_s": None}
    row = capacity.plan(capacity.Load(100, 30, 1.0, 1.0), throughput)
    assert row["detector"] is None and row["partitions"] is None
    assert "| ? |" in capacity.table([capacity.Load(100, 30, 1.0, 1.0)], throughput)


def test_readme_table_is_the_computed_one() -> None:
    capacity = load_tool("capacity")
    readme = (K8S / "README.md").read_text()
    shown = re.search(r"<!-- capacity-table:start -->\n(.*?)\n<!-- capacity-table:end -->", readme, re.DOTALL)[1]
    throughput = json.loads((K8S / "throughput.json").read_text())
    expected = capacity.table([capacity.Load(n, 30, 1.0, 1.0) for n in (100, 1_000, 10_000)], throughput)
    assert shown == expected, "regenerate it: python deploy/tools/capacity.py"


def test_autoscaling_lag_thresholds_are_the_measured_throughputs_times_the_accepted_delay() -> None:
    capacity = load_tool("capacity")
    throughput = json.loads((K8S / "throughput.json").read_text())
    expected = capacity.lag_thresholds(throughput)  # webcams: one face per frame
    scaled = {
        document["metadata"]["name"]: int(document["spec"]["triggers"][0]["metadata"]["lagThreshold"])
        for document in yaml.safe_load_all((K8S / "base" / "autoscaling" / "scaledobjects.yaml").read_text())
    }
    assert scaled == expected, "set lagThreshold to: python deploy/tools/capacity.py"
    assert capacity.lag_thresholds({"detector_frames_per_s": 50.0, "classifier_faces_per_s": 1200.0}, 6.0) == {
        "detector": 100, "classifier": 400,
    }


def test_prod_kafka_is_replicated_across_zones() -> None:
    """Replication 3, 2 in sync, one replica per zone: a zone lost loses no acknowledged message and stops nothing.
    The controllers too, one a zone and a node: two of the three KRaft voters lost together stop every write."""
    objects = render("prod")
    kafka = named(objects, "Kafka", "classpulse")["spec"]["kafka"]
    assert kafka["rack"] == {"topologyKey": "topology.kubernetes.io/zone"}
    assert kafka["config"]["default.replication.factor"] == 3 and kafka["config"]["min.insync.replicas"] == 2
    assert kafka["config"]["offsets.topic.replication.factor"] == 3 and kafka["config"]["transaction.state.log.min.isr"] == 2
    for topic in objects_of(objects, "KafkaTopic"):
        assert (topic["spec"]["replicas"], topic["spec"]["config"]["min.insync.replicas"]) == (3, 2), topic["metadata"]["name"]
    for name in ("brokers", "controllers"):
        pool = named(objects, "KafkaNodePool", name)["spec"]
        assert pool["replicas"] >= 3, name
        own_pods = {"matchLabels": {"strimzi.io/cluster": "classpulse", "strimzi.io/pool-name": name}}
        (spread,) = pool["template"]["pod"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["whenUnsatisfiable"] == "DoNotSchedule", name
        assert spread["labelSelector"] == own_pods, name
        (apart,) = pool["template"]["pod"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert apart == {"topologyKey": "kubernetes.io/hostname", "labelSelector": own_pods}, name


def test_prod_partitions_and_autoscaler_limits_follow_the_design_load() -> None:
    capacity = load_tool("capacity")
    throughput = json.loads((K8S / "throughput.json").read_text())
    design = capacity.Load(**json.loads(capacity.DESIGN_LOAD_FILE.read_text())["load"])
    expected = capacity.prod_sizing(design, throughput)
    objects = render("prod")
    pipeline = {"classpulse-frames", "classpulse-faces", "classpulse-predictions"}
    partitions = {t["metadata"]["name"]: t["spec"]["partitions"] for t in objects_of(objects, "KafkaTopic") if t["metadata"]["name"] in pipeline}
    assert partitions == dict.fromkeys(pipeline, expected["partitions"]), "set them to: python deploy/tools/capacity.py"
    limits = {s["metadata"]["name"]: s["spec"]["maxReplicaCount"] for s in objects_of(objects, "ScaledObject")}
    assert limits == {"detector": expected["detector"], "classifier": expected["classifier"]}
    fixed = {name: named(objects, "Deployment", name)["spec"]["replicas"] for name in ("ingest", "aggregator")}
    assert fixed == {"ingest": expected["ingest"], "aggregator": expected["aggregator"]}, "set replicas.yaml to: python deploy/tools/capacity.py"
    sizing = capacity.prod_sizing(capacity.Load(100, 30, 1.0, 1.0), throughput | {"detector_frames_per_s": 100.0, "classifier_faces_per_s": 2668.0})
    assert {key: sizing[key] for key in ("partitions", "detector", "classifier", "ingest", "aggregator")} == {
        "partitions": 96, "detector": 86, "classifier": 4, "ingest": 3, "aggregator": 2,  # ingest 2 and aggregator 1, + 1
    }


def test_prod_brokers_have_the_disk_the_design_load_needs() -> None:
    capacity = load_tool("capacity")
    throughput = json.loads((K8S / "throughput.json").read_text())
    design = capacity.Load(**json.loads(capacity.DESIGN_LOAD_FILE.read_text())["load"])
    brokers = named(render("prod"), "KafkaNodePool", "brokers")["spec"]
    needed = capacity.prod_sizing(design, throughput, brokers["replicas"])["broker_disk_gib"]
    assert brokers["storage"]["type"] == "persistent-claim"
    assert _gibibytes(brokers["storage"]["size"]) >= needed, f"at least {needed}Gi: python deploy/tools/capacity.py"


def _gibibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Gi|Ti)", quantity).groups()
    return int(number) * {"Gi": 1, "Ti": 1024}[unit]
