"""ClassPulse capacity plan: for N concurrent classes of S students at F frames/s, the load on each stage, the
partitions, the replicas and cores each stage needs, from the measured per-replica throughput of each stage, and the
disk of each Kafka broker.

    python deploy/tools/capacity.py                      # the README's table (deploy/k8s/README.md)
    python deploy/tools/capacity.py --classes 250 --students 40 --fps 0.5

Throughputs come from deploy/k8s/throughput.json: one replica of each stage at its CPU limit (1 core), as measured
by `make bench`. A throughput still missing there (null) shows as "?" in every figure that depends on it.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

THROUGHPUT_FILE = Path(__file__).resolve().parents[1] / "k8s" / "throughput.json"
DESIGN_LOAD_FILE = Path(__file__).resolve().parents[1] / "k8s" / "overlays" / "prod" / "design-load.json"
"""The load the prod overlay is sized for: its partitions and autoscaler limits are `prod_sizing` of it."""
TARGET_UTILISATION = 0.7
"""Plan replicas to run at 70% of their measured throughput: headroom for bursts and for a replica lost."""
PARTITION_STEP = 12
"""Partition counts are multiples of 12 (divisible by 1, 2, 3, 4, 6 consumers: an even share each)."""
PARTITION_HEADROOM = 2.0
"""Partitions cannot be removed later and cap the replicas of a stage: plan for twice today's replicas."""
CROP_BYTES = 48 * 48 + 200
"""One 48x48 gray crop plus its box and ids in the msgpack message."""
RESULT_BYTES = 300
"""A frame's message without its image or crops: ids and boxes (on the crops topic), or its prediction."""
REPLICATION = 3
IMAGE_RETENTION_S = 600
"""retention.ms of the frames and crops topics and their dead letters (base/kafka/topics.yaml): 10 minutes."""
PREDICTIONS_RETENTION_S = 86_400
"""retention.ms of the predictions topic and its dead letters: a day for the aggregator to catch up."""
SEGMENT_FRACTION = 0.2
"""segment.ms / retention.ms of every topic: Kafka deletes a segment only once its newest record is past retention."""
RETENTION_CHECK_S = 60
"""How often a broker deletes what is past retention: log.retention.check.interval.ms (base/kafka/kafka.yaml)."""
DISK_FULLEST = 0.75
"""A broker's disk is planned 75% full at the design load: room for bursts above it before KafkaBrokerDiskFilling
(85%) fires."""
BROKERS = 3
"""The broker pool (base/kafka/kafka.yaml): one per zone."""
DRAIN_SPARE = 1
"""Replicas a fixed-size stage runs beyond its load: one pod drained (a node upgrade) leaves the load's replicas."""
ACCEPTED_DELAY_S = 2.0
"""The backlog one replica may carry before the autoscaler adds another: this much work, at its measured rate."""


@dataclass(frozen=True)
class Load:
    classes: int
    students: int
    fps: float
    faces_per_frame: float

    @property
    def faces_per_s(self) -> float:
        """Every student is seen `fps` times a second, whatever the camera."""
        return self.classes * self.students * self.fps

    @property
    def frames_per_s(self) -> float:
        return self.faces_per_s / self.faces_per_frame


def image_bytes_per_s(load: Load, throughput: dict[str, float | None]) -> float:
    """Bytes/s into the topics that hold images (frames; crops with their frames' boxes), before replication."""
    return load.frames_per_s * (throughput["frame_bytes"] + RESULT_BYTES) + load.faces_per_s * CROP_BYTES


def result_bytes_per_s(load: Load) -> float:
    """Bytes/s into the predictions topic, before replication."""
    return load.frames_per_s * RESULT_BYTES


def kept_s(retention_s: float) -> float:
    """The longest a topic of this retention keeps a record: a segment of records up to retention x SEGMENT_FRACTION
    apart goes once its newest is past retention, at the next retention check."""
    return retention_s * (1 + SEGMENT_FRACTION) + RETENTION_CHECK_S


def broker_disk_gib(load: Load, throughput: dict[str, float | None], brokers: int) -> int:
    """The disk each broker needs: what the topics keep (images 10 minutes, predictions a day, each as long as kept_s
    says), times the replicas, shared by the brokers, at most DISK_FULLEST full."""
    kept = image_bytes_per_s(load, throughput) * kept_s(IMAGE_RETENTION_S)
    kept += result_bytes_per_s(load) * kept_s(PREDICTIONS_RETENTION_S)
    return math.ceil(kept * REPLICATION / brokers / DISK_FULLEST / 2**30)


def replicas(load_per_s: float, per_replica_per_s: float | None) -> int | None:
    if not per_replica_per_s:
        return None
    return max(1, math.ceil(load_per_s / (per_replica_per_s * TARGET_UTILISATION)))


def partitions(stage_replicas: list[int | None]) -> int | None:
    if any(count is None for count in stage_replicas):
        return None
    needed = max(stage_replicas) * PARTITION_HEADROOM
    return max(PARTITION_STEP, math.ceil(needed / PARTITION_STEP) * PARTITION_STEP)


def plan(load: Load, throughput: dict[str, float | None]) -> dict[str, float | int | None]:
    """Every figure of one row of the capacity table."""
    frames, faces = load.frames_per_s, load.faces_per_s
    stages = {
        "ingest": replicas(frames, throughput["ingest_frames_per_s"]),
        "detector": replicas(frames, throughput["detector_frames_per_s"]),
        "classifier": replicas(faces, throughput["classifier_faces_per_s"]),
        "model_server_cores": replicas(faces, throughput["model_server_faces_per_core_s"]),
        "aggregator": replicas(frames, throughput["aggregator_frames_per_s"]),
    }
    kafka_in = image_bytes_per_s(load, throughput) + result_bytes_per_s(load)
    return {
        "frames_per_s": frames,
        "faces_per_s": faces,
        "kafka_in_mb_s": kafka_in / 1e6,
        "kafka_disk_mb_s": kafka_in * REPLICATION / 1e6,
        "partitions": partitions([stages["detector"], stages["classifier"], stages["aggregator"]]),
        **stages,
    }


def prod_sizing(load: Load, throughput: dict[str, float | None], brokers: int = BROKERS) -> dict[str, int | None]:
    """What the prod overlay sets for a design load: partitions per pipeline topic; each scaled stage's
    maxReplicaCount (the autoscalers may run PARTITION_HEADROOM x the replicas the load needs: bursts, growth until
    the guide is re-run; the partitions allow that for the busiest stage); the fixed replicas of ingest and the
    aggregator (the load's, plus DRAIN_SPARE); and each broker's disk in GiB."""
    row = plan(load, throughput)
    headroom = {
        stage: math.ceil(row[stage] * PARTITION_HEADROOM) if row[stage] is not None else None
        for stage in ("detector", "classifier")
    }
    fixed = {stage: row[stage] + DRAIN_SPARE if row[stage] is not None else None for stage in ("ingest", "aggregator")}
    return {
        "partitions": row["partitions"], **headroom, **fixed, "broker_disk_gib": broker_disk_gib(load, throughput, brokers)
    }


def lag_thresholds(throughput: dict[str, float | None], faces_per_frame: float = 1.0) -> dict[str, int | None]:
    """KEDA lagThreshold per scaled stage, in messages of its input topic: the detector's are frames, the
    classifier's are frames' worth of crops (faces_per_frame faces each)."""
    detector, classifier = throughput["detector_frames_per_s"], throughput["classifier_faces_per_s"]
    return {
        "detector": round(detector * ACCEPTED_DELAY_S) if detector else None,
        "classifier": round(classifier * ACCEPTED_DELAY_S / faces_per_frame) if classifier else None,
    }


def _cell(value: float | int | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if isinstance(value, int) or value >= 10 else f"{value:,.1f}"


COLUMNS = (
    ("frames_per_s", "frames/s"),
    ("faces_per_s", "faces/s"),
    ("kafka_in_mb_s", "Kafka in, MB/s"),
    ("kafka_disk_mb_s", "Kafka disk writes (x3), MB/s"),
    ("partitions", "partitions per pipeline topic"),
    ("ingest", "ingest replicas"),
    ("detector", "detector replicas"),
    ("classifier", "classifier replicas"),
    ("model_server_cores", "model-server cores"),
    ("aggregator", "aggregator replicas"),
)


def table(loads: list[Load], throughput: dict[str, float | None]) -> str:
    lines = [
        "| classes | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
    ]
    for load in loads:
        row = plan(load, throughput)
        lines.append(f"| {load.classes:,} | " + " | ".join(_cell(row[key]) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--fps", type=float, default=1.0, help="frames per second of each camera")
    parser.add_argument(
        "--faces-per-frame", type=float, default=1.0, help="1: each student's own webcam; S: one room camera per class"
    )
    parser.add_argument("--brokers", type=int, default=BROKERS, help="Kafka brokers sharing the disk (default %(default)s)")
    parser.add_argument("--throughput", type=Path, default=THROUGHPUT_FILE)
    args = parser.parse_args()
    throughput = json.loads(args.throughput.read_text())
    loads = [Load(classes, args.students, args.fps, args.faces_per_frame) for classes in args.classes]
    print(table(loads, throughput))
    design = Load(**json.loads(DESIGN_LOAD_FILE.read_text())["load"])
    print(f"\nprod overlay ({design}): " + ", ".join(
        f"{key} {value if value is not None else '?'}" for key, value in prod_sizing(design, throughput, args.brokers).items()
    ))
    thresholds = lag_thresholds(throughput, args.faces_per_frame)
    print("\nKEDA lagThreshold (deploy/k8s/base/autoscaling/scaledobjects.yaml): " + ", ".join(
        f"{stage} {value if value is not None else '?'}" for stage, value in thresholds.items()
    ))


if __name__ == "__main__":
    main()
