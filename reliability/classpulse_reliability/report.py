"""The fault drills' table: each run's counts next to the clean run's, and how long the fault took to recover from."""

from __future__ import annotations

import time

from classpulse_core.timeseries import EMOTION_METRICS, FACES, FRAMES
from classpulse_reliability import sections
from classpulse_reliability.drills import ONE_CLASS, DrillProfile, DrillResult

EMOTION_TOLERANCE = 1e-5
"""Relative: emotion sums add float probabilities in whatever order frames arrive and batch, and the model server's
float32 outputs for a face vary in their last bits with how its threads split the work when a face is classified
again after a restart (a drill killing the classifier read 1.06e-6 off with model version 7). A face lost or counted
twice shows in the frame and face counts, which must match exactly; a face's probabilities, about 1/200 of a drill
class's sums, move them far more than this."""


def relative_difference(value: float, reference: float) -> float:
    return abs(value - reference) / max(abs(reference), 1e-12)


def differences(run: DrillResult, clean: DrillResult) -> dict[str, float]:
    """Frames and faces as absolute differences in Redis; emotions as the largest relative one over the seven."""
    return {
        FRAMES: run.totals[FRAMES] - clean.totals[FRAMES],
        FACES: run.totals[FACES] - clean.totals[FACES],
        "emotions": max(relative_difference(run.totals[m], clean.totals[m]) for m in EMOTION_METRICS),
    }


def identical(run: DrillResult, clean: DrillResult) -> bool:
    diff = differences(run, clean)
    return (
        diff[FRAMES] == 0
        and diff[FACES] == 0
        and diff["emotions"] <= EMOTION_TOLERANCE
        and run.redis_frames == run.frames_in
        and not run.unexpected_exits
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


HEADER = (
    "| fault | frames in | predictions (msgs / frames) | faces classified | Redis frames | Redis faces "
    "| Δ frames | Δ faces | max Δ emotion (rel.) | restart (s) | recovered (s) | all counted (s) | result |"
)


def table(results: list[DrillResult]) -> str:
    clean = results[0]
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for run in results:
        diff = differences(run, clean)
        verdict = "identical" if identical(run, clean) else "DIFFERS"
        if run.unexpected_exits:
            verdict += f" (exited: {', '.join(run.unexpected_exits)})"
        lines.append(
            f"| {run.fault} | {run.frames_in} | {run.prediction_messages} / {run.frames_classified} "
            f"| {run.faces_classified} | {run.redis_frames} | {run.redis_faces} | {diff[FRAMES]:+.0f} "
            f"| {diff[FACES]:+.0f} | {diff['emotions']:.1e} | {_seconds(run.restart_s)} | {_seconds(run.recover_s)} "
            f"| {run.done_s:.1f} | {verdict} |"
        )
    return "\n".join(lines)


LOAD_SECTION = "load-drills"
"""The full-load drills' section of the reliability report (the one-class drills make its top)."""


def markdown(results: list[DrillResult], seed: int, profile: DrillProfile, command: str) -> str:
    """The one-class drills as the report's top, or the drills of another profile as a section of it."""
    clean = results[0]
    notes = [f"- {run.fault}: {note}" for run in results for note in run.notes]
    if profile == ONE_CLASS:
        title = "# Reliability report: fault drills"
        workload = f"the sample class video, {clean.frames_in} frames published at {profile.rate:g} frames/s, into a fresh class per run."
    else:
        title = f"## Fault drills at full load: {profile.classes} classes x {profile.students} students x {profile.fps:g} fps"
        workload = (
            f"{profile.classes} fresh classes per run, each the sample class video of {profile.students} students "
            f"({profile.seconds:g} s at {profile.fps:g} frames/s) published at {profile.rate:g} frames/s by a publisher "
            f"of its own: {clean.frames_in} frames per run; every count below is summed over the classes."
        )
    lines = [
        title,
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}` (seed {seed}), on an",
        "isolated stack (every port moved by an offset, its own Kafka, Redis, model server and five services),",
        "its detector scanning every frame in full with Haar (`DETERMINISTIC_DETECTOR`: tracking would make boxes",
        "depend on which replica saw a source before, and the runs are compared exactly).",
        "",
        f"Workload: {workload} A fault strikes at a random moment between 20% and 70% of the publishing time.",
        "",
    ]
    if profile == ONE_CLASS:
        lines += [
            "- **predictions (msgs / frames)**: frame results of the class on `classpulse.predictions`, redeliveries",
            "  included, and the distinct frames among them; more messages than frames is at-least-once at work.",
            "- **faces classified**: faces with emotion probabilities, over distinct frames.",
            "- **Redis frames / faces**: the class's totals in RedisTimeSeries; **Δ**: difference from the clean run",
            f"  (frames and faces exact; the seven emotion sums relative, at most {EMOTION_TOLERANCE:g}).",
            "- **restart**: fault to the broken part serving again; **recovered**: fault to the first frame counted",
            "  after that; **all counted**: publishing start to the last frame counted.",
            "- **identical** for the ingest publisher killed mid-publish means: the frames it published before the",
            "  kill plus a re-run of the rest from its last checkpoint, with the same source id and frame numbers,",
            "  give the clean run's totals (frames sent twice are absorbed by the aggregator's per-frame dedup).",
            "",
        ]
    lines += [
        table(results),
        "",
        "Emotion sums in Redis after the clean run (every other run within the tolerance of these): "
        + ", ".join(f"{metric.removeprefix('emotion.')} {clean.totals[metric]:.4f}" for metric in EMOTION_METRICS)
        + ".",
        "",
        *(["Notes:", *notes, ""] if notes else []),
    ]
    return "\n".join(lines) if profile == ONE_CLASS else sections.wrap(LOAD_SECTION, lines)
