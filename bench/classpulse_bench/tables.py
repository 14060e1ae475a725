"""The bench's tables, built from what its phases measured (run.py runs the phases)."""

from __future__ import annotations

from classpulse_bench.loads import LoadRun
from classpulse_bench.report import Section
from classpulse_bench.targets import Target, at_least, at_most

CLASSPULSE_ROW = "ClassPulse (whole stack)"


def replicas_label(replicas: int) -> str:
    return f"{replicas} replica{'s' if replicas > 1 else ''}"


def stages_section(stage_rows: dict[str, dict], half: LoadRun) -> Section:
    section = Section(
        "Stages, each alone on a backlog (real Kafka)",
        note=f"per_core_s = 1000 / cpu_ms_per_unit; batch: one consumed batch (model server: one Predict); "
        f"since capture: at {half.load.label}",
    )
    for name, row in stage_rows.items():
        since = {f"since_capture_{key}": value for key, value in half.stage_latency.get(name, {}).items()}
        section.add(name, **row, **since)
    return section


ACCURACY = "accuracy profile"
"""Rows of the accuracy-first settings (classpulse_bench.run.ACCURACY_PROFILE)."""


def end_to_end_section(saturated: dict[int, LoadRun], half: LoadRun, profile: tuple[LoadRun, LoadRun]) -> Section:
    section = Section(
        "End to end (everything running)",
        note="replicas: of the detector and of the classifier; accuracy profile: the model's flip-averaging "
        "signature, two passes of the network a face (defaults: one), 1 replica",
    )
    for replicas, run in saturated.items():
        name = f"sustained maximum, {replicas_label(replicas)}"
        section.add(name, load=f"{run.load.label} (saturating)", **run.figures)
    section.add("half of the maximum", load=half.load.label, **half.figures)
    profile_maximum, profile_half = profile
    section.add(f"sustained maximum, {ACCURACY}", load=f"{profile_maximum.load.label} (saturating)",
                **profile_maximum.figures)
    section.add(f"half of the defaults' maximum, {ACCURACY}", load=profile_half.load.label, **profile_half.figures)
    return section


def add_classpulse_to_peers(section: Section, saturated: LoadRun, half: LoadRun, profile: str = "") -> None:
    """ClassPulse's row (rates: its sustained maximum; accuracy: its answers for these same frames in the half-load
    run) and its ratio to each peer: wall clock, per core (frames per CPU-second) and accuracy. `profile` names
    settings other than the defaults."""
    ours = {
        "frames_per_s": saturated.figures["frames_per_s"],
        "faces_per_s": saturated.figures["faces_per_s"],
        "frames_per_cpu_s": saturated.figures["frames_per_cpu_s"],
        **{key: half.figures[key] for key in ("recall", "precision", "accuracy", "accuracy_of_detected")},
    }
    peers = [row for row in section.rows if "frames_per_cpu_s" in row.figures and not row.name.startswith("ClassPulse")]
    ours_name = "ClassPulse, " + profile if profile else "ClassPulse"
    section.add(f"{CLASSPULSE_ROW}, {profile}" if profile else CLASSPULSE_ROW, **ours)
    for row in peers:
        section.add(
            f"{ours_name} / {row.name.split(' (')[0]}",
            frames_per_s=_ratio(ours["frames_per_s"], row.figures["frames_per_s"]),
            frames_per_cpu_s=_ratio(ours["frames_per_cpu_s"], row.figures["frames_per_cpu_s"]),
            accuracy=_ratio(ours["accuracy"], row.figures["accuracy"]),
        )


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def growth_section(growth: list[dict]) -> Section:
    section = Section("Growth: load x replicas of detector and classifier")
    for entry in growth:
        if not entry.get("saturating"):  # those are in the end-to-end table
            section.add(entry["name"], **entry["figures"])
    return section


def cpu_section(half: LoadRun) -> Section:
    section = Section("CPU per frame and memory by process, at half of the maximum", note=half.load.label)
    for name, value in half.cpu_ms_per_frame.items():
        section.add(name, cpu_ms_per_frame=value, peak_rss_mb=half.peak_rss_mb.get(name))
    return section


def figure(section: Section, row_prefix: str, name: str) -> float | None:
    return next((row.figures.get(name) for row in section.rows if row.name.startswith(row_prefix)), None)


WEBCAM_LIKE_TRACKING = "ClassPulse detector (tracking), webcam-like"


def targets(peers: Section, detector: Section, stage_rows: dict, half: LoadRun, messages: Section) -> list[Target]:
    return [
        at_least("end to end per core vs fer", figure(peers, "ClassPulse / fer", "frames_per_cpu_s"), 10, "x",
                 "frames per CPU-second, whole stack / fer package"),
        at_least("accuracy vs fer", figure(peers, "ClassPulse / fer", "accuracy"), 1, "x",
                 "labelled faces right, ClassPulse / fer package"),
        at_least("detector, all cores", figure(detector, WEBCAM_LIKE_TRACKING, "frames_per_s_all_cores"), 100,
                 "frames/s", "640x480 webcam-like JPEG decode + boxes + crops, in process"),
        at_least("detector in the pipeline", stage_rows["detector"]["per_s"], 100, "frames/s",
                 "one detector process draining Kafka"),
        at_least("classifier + model server", stage_rows["classifier"]["per_s"], 1500, "faces/s",
                 "one classifier process draining Kafka through the model server"),
        at_most("capture to Redis p95 at half load", half.figures["capture_to_redis_p95_ms"], 500, "ms",
                half.load.label),
        at_most("frame message overhead", figure(messages, "frame", "overhead_bytes"), 1024, "bytes",
                "msgpack bin around the JPEG (base64 would add a third of the JPEG)"),
    ]
