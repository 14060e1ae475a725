"""`make bench`: every phase in order, on one workload, and the tables they fill (see __init__.py)."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from classpulse_bench import drains, loads, machine, micro, peers, tables
from classpulse_bench.capacity import per_replica_throughput
from classpulse_bench.config import BenchConfig
from classpulse_bench.loads import Load, LoadRun
from classpulse_bench.pipeline import Pipeline
from classpulse_bench.report import Section
from classpulse_bench.targets import targets_section
from classpulse_demo.sample_class import LABELS_NAME
from classpulse_detector.settings import DetectorSettings
from classpulse_reliability.isolated import IsolatedStack, running_isolated_stack
from classpulse_reliability.workload import Workload, sample_class_workload

log = logging.getLogger(__name__)

MODEL_SERVER_SHAPES = ((1, 1), (16, 1), (64, 1), (256, 1), (64, 2), (256, 2))
"""(faces per call, callers at once) for the model server bench."""
DETECTOR_FIELDS = {"cascade_path", "scale_factor", "min_neighbors", "min_face_px", "detect_max_side", "crop_margin"}
ACCURACY_PROFILE = {
    # The model's default signature: each face and its mirror image through the network, probabilities averaged
    # (about a point of PublicTest accuracy for twice the model's cost; the pipeline's default is one pass).
    "CLASSPULSE_MODEL_SIGNATURE": "serving_default",
}
"""The accuracy-first settings a deployment may choose; run beside the defaults, same frames, same loads."""
PEERS = (
    ("fer package (FER().detect_emotions)", peers.fer_package),
    ("seed-style loop (Haar + Keras per face)", peers.seed_loop),
)


@dataclass
class BenchResult:
    context: dict = field(default_factory=dict)
    """Machine, load and settings: printed above the tables and written with them."""
    sections: list[Section] = field(default_factory=list)
    growth: list[dict] = field(default_factory=list)
    """One entry per growth run, for the plot."""


@dataclass(frozen=True)
class SampleClass:
    """The sample class video the whole bench runs on."""

    path: Path
    workload: Workload
    labels: dict

    @classmethod
    def build(cls, config: BenchConfig, webcam_like: bool = True) -> SampleClass:
        """Webcam-like by default: every system compared sees noisy, shaking frames, as from real cameras."""
        path = sample_class_workload(config.video_seconds, config.video_fps, config.students, webcam_like=webcam_like)
        return cls(path, Workload.load(path), json.loads((path.parent / path.stem / LABELS_NAME).read_text()))

    @property
    def per_frame(self) -> list[dict]:
        return self.labels["per_frame"]

    @property
    def faces_per_frame(self) -> float:
        return round(sum(len(frame["faces"]) for frame in self.per_frame) / len(self.per_frame), 2)


def run_bench(config: BenchConfig) -> BenchResult:
    result = BenchResult()
    result.context["machine"] = machine.describe()
    result.context["flops"] = flops = machine.measured_flops(config.flops_seconds)
    sample = SampleClass.build(config)
    workload = sample.workload
    # The peers see exactly the frames each class of the half-load run sends (frame 0 on), once each.
    same_frames = min(len(workload.jpegs), math.ceil(config.class_fps * config.load_seconds))
    result.context["workload"] = {
        "video": f"sample class, {workload.students} students, {workload.width}x{workload.height}, "
        f"{len(workload.jpegs)} frames",
        "faces_per_frame": sample.faces_per_frame,
        "same_frames": same_frames,
    }
    settings = DetectorSettings()
    result.context["detector_settings"] = settings.model_dump(include=DETECTOR_FIELDS)

    detector = settings.face_finder()
    still = SampleClass.build(config, webcam_like=False)
    detector_section = _detector_section(settings, sample, still, config.video_fps)
    crops = micro.crops_of(detector, workload.jpegs)
    messages_section = _messages_section(sample, crops)
    peer_section = _peers_section(sample, same_frames)
    with running_isolated_stack() as stack:
        pipeline = Pipeline(stack, sample.path, workload, sample.labels)
        model_section = _model_server_section(stack, crops, config, flops)
        stage_rows = drains.measure(pipeline, config.drain_classes, config.drain_frames_per_class)
        saturated, half = _loads(pipeline, config, stage_rows, sample.faces_per_frame, result)
        best = max(saturated.values(), key=lambda run: run.figures["frames_per_s"])
        accuracy_first = _accuracy_profile_runs(pipeline, config, best, half)
    result.context["capacity_throughput"] = per_replica_throughput(stage_rows)
    result.context["accuracy_profile"] = ACCURACY_PROFILE

    tables.add_classpulse_to_peers(peer_section, best, half)
    tables.add_classpulse_to_peers(peer_section, *accuracy_first, profile=tables.ACCURACY)
    result.sections = [
        tables.stages_section(stage_rows, half),
        tables.end_to_end_section(saturated, half, accuracy_first),
        peer_section,
        detector_section,
        model_section,
        messages_section,
        tables.growth_section(result.growth),
        tables.cpu_section(half),
    ]
    result.sections.append(
        targets_section(tables.targets(peer_section, detector_section, stage_rows, half, messages_section))
    )
    return result


def _detector_section(settings: DetectorSettings, webcam: SampleClass, still: SampleClass, fps: float) -> Section:
    section = Section(
        "Detector in this process (no Kafka)",
        note=f"one thread; all cores = cores x 1000 / CPU ms; frames {1000 / fps:.0f} ms apart; tracking: full scan "
        f"every {settings.full_scan_interval_ms} ms or on change, template matching between "
        "(classpulse_detector.tracking); webcam-like: noise, shake and flicker added; still: the sample class as drawn",
    )
    detector = settings.face_finder()
    plain = micro.FaceDetector(**micro.PLAIN_HAAR)
    for suffix, sample in ((", webcam-like", webcam), (", still", still)):
        for name, locate in (
            ("ClassPulse detector (tracking)", micro.tracked(settings, fps)),
            ("ClassPulse detector, full scan every frame", micro.full_scans(detector)),
            ("plain Haar (sf 1.1, mn 5, 60 px, full frame)", micro.full_scans(plain)),
        ):
            figures = micro.detector_figures(locate, detector.crop, sample.workload.jpegs, sample.per_frame)
            section.add(name + suffix, **figures)
    return section


def _messages_section(sample: SampleClass, crops: np.ndarray) -> Section:
    section = Section("Messages (msgpack on Kafka)", note="per message; CRC-32C runs on produce and on fetch")
    workload = sample.workload
    frame_crops = crops[: max(1, round(sample.faces_per_frame))]
    messages = micro.sample_messages(workload.jpegs[0], frame_crops, workload.width, workload.height)
    for kind, figures in micro.serialisation_figures(messages).items():
        section.add(kind, **figures)
    section.rows[0].figures["overhead_bytes"] = len(messages["frame"]) - len(workload.jpegs[0])
    return section


def _peers_section(sample: SampleClass, frames: int) -> Section:
    section = Section(
        f"Side by side on the same {frames} frames",
        note="frames_per_cpu_s: frames per CPU-second, every process involved (the per-core figure)",
    )
    bgr = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in sample.workload.jpegs[:frames]]
    for name, build in PEERS:
        try:
            section.add(name, **peers.timed_run(build(), bgr, sample.per_frame[:frames]).figures())
        except peers.PeerUnavailable as exc:
            log.warning("peer not measured", extra={"peer": name, "reason": str(exc)})
            section.add(name, unavailable=str(exc))
    return section


def _model_server_section(stack: IsolatedStack, crops: np.ndarray, config: BenchConfig, flops: dict) -> Section:
    from classpulse_classifier.serving_client import EmotionModelClient
    from classpulse_classifier.settings import ClassifierSettings
    from classpulse_devstack.tfserving_standin import computes_bfloat16
    from classpulse_training.versions import MODELS_DIR

    settings = ClassifierSettings()  # what the pipeline calls: its signature, of the version its label names
    signature = settings.model_signature
    address = f"127.0.0.1:{stack.config.model_server_port}"
    label = settings.model_version_label or None
    with EmotionModelClient(address, timeout_s=30, signature_name=signature, version_label=label) as client:
        version = client.wait_until_available(60)
        metrics = json.loads((MODELS_DIR / str(version) / "metrics.json").read_text())
        single_pass = metrics.get("single_pass", {})
        if signature == single_pass.get("signature"):
            flops_per_face = 2 * single_pass["macs_per_face"]
        else:
            flops_per_face = metrics["cost"]["flops_per_face"]
        # The export is float32; the stack's model server computes it in bfloat16 where this CPU runs that faster.
        arithmetic = "bfloat16" if computes_bfloat16(stack.config.model_server_mixed_precision) else "float32"
        peak = flops[f"{arithmetic}_gflops"]
        section = Section(
            "Model server via gRPC (this process calling)",
            note=f"version {version} ({label or 'the highest'}), signature {signature}, {flops_per_face / 1e6:.0f} MFLOPs "
            f"per face, computed in {arithmetic}; machine: {peak} GFLOP/s {arithmetic} matmul",
        )
        for batch, callers in MODEL_SERVER_SHAPES:
            figures = micro.model_server_figures(client.predict, crops, batch, callers, config.model_server_seconds)
            achieved = figures["faces_per_s"] * flops_per_face / 1e9
            figures["gflops"] = round(achieved, 1)
            figures["share_of_matmul_peak"] = round(achieved / peak, 3)
            section.add(f"batch {batch} x {callers} caller{'s' if callers > 1 else ''}", **figures)
    return section


def _loads(
    pipeline: Pipeline, config: BenchConfig, stage_rows: dict, faces_per_frame: float, result: BenchResult
) -> tuple[dict[int, LoadRun], LoadRun]:
    """Per number of replicas, a saturating run (its completion rate is the sustained maximum); then the growth
    runs at multiples of a quarter of the best maximum. Returns the saturating runs and the run at half the best
    maximum (with the replicas that reached it), which is also scored for accuracy."""
    cpu_ms_per_frame = _stack_cpu_ms_per_frame(stage_rows, faces_per_frame)
    cores = len(os.sched_getaffinity(0))
    saturated: dict[int, LoadRun] = {}
    for replicas in config.replicas:
        _set_replicas(pipeline, replicas)
        # Offer a third more than the cores (or the detector replicas) can do: a backlog, but one drained quickly.
        detector_per_core = stage_rows["detector"]["per_core_s"] or math.inf
        capacity = min(cores * 1000 / cpu_ms_per_frame, replicas * detector_per_core)
        load = Load.for_rate(1.3 * capacity, config.students, 5 * config.class_fps)
        saturated[replicas] = run = loads.run(pipeline, load, config.load_seconds, config.warmup_s, saturate=True)
        result.growth.append({
            "name": f"saturating, {tables.replicas_label(replicas)}", "saturating": True,
            "replicas": replicas, "figures": {"load": load.label, **run.figures},
        })
    best = max(saturated, key=lambda replicas: saturated[replicas].figures["frames_per_s"])
    base = Load.for_rate(saturated[best].figures["frames_per_s"] / 4, config.students, config.class_fps)
    half = None
    for replicas in config.replicas:
        _set_replicas(pipeline, replicas)
        for multiple in config.growth_multiples:
            load = Load(base.classes * multiple, config.students, config.class_fps)
            is_half = replicas == best and multiple == config.half_load_multiple
            run = loads.run(pipeline, load, config.load_seconds, config.warmup_s, score=is_half)
            half = run if is_half else half
            result.growth.append({
                "name": f"{multiple}x, {tables.replicas_label(replicas)}",
                "multiple": multiple, "replicas": replicas, "figures": {"load": load.label, **run.figures},
            })
    _set_replicas(pipeline, 1)
    return saturated, half


def _accuracy_profile_runs(
    pipeline: Pipeline, config: BenchConfig, saturated: LoadRun, half: LoadRun
) -> tuple[LoadRun, LoadRun]:
    """The accuracy profile, one replica of each stage: a saturating run (offered 1.2x the defaults' maximum, more
    than it can do with its costlier model) and the half-load run's load, scored on the same frames."""
    offered = Load.for_rate(1.2 * saturated.figures["frames_per_s"], config.students, 5 * config.class_fps)
    with pipeline.settings(ACCURACY_PROFILE, stages=("classifier",)):
        maximum = loads.run(pipeline, offered, config.load_seconds, config.warmup_s, saturate=True)
        at_half = loads.run(pipeline, half.load, config.load_seconds, config.warmup_s, score=True)
    return maximum, at_half


def _set_replicas(pipeline: Pipeline, replicas: int) -> None:
    """Replicas of the detector and the classifier, the two stages that scale out (the aggregator keeps one)."""
    for stage in ("detector", "classifier"):
        pipeline.set_replicas(stage, replicas)


def _stack_cpu_ms_per_frame(stage_rows: dict, faces_per_frame: float) -> float:
    """What one frame costs the whole stack, from the drains (each stage, the model server and Kafka's share)."""
    per_frame = 0.0
    for row in stage_rows.values():
        scale = faces_per_frame if row["unit"] == "face" else 1.0
        per_frame += ((row["cpu_ms_per_unit"] or 0.0) + (row.get("kafka_cpu_ms_per_unit") or 0.0)) * scale
    return max(per_frame, 0.1)
