"""`python -m classpulse_bench tracking`: what following faces between full scans costs and gets right, on the
moving-faces video (classpulse_bench.moving_faces: faces that walk, roll, leave and come back), per detector and
method: a full scan of every frame, template matching, detection where each face's motion puts it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np

from classpulse_bench import machine
from classpulse_bench.moving_faces import SIDE, counted_right, moving_faces_video, roll_error_deg
from classpulse_bench.report import Section

FRAME_INTERVAL_MS = 500
"""A frame every half second, as a room camera sends them (a webcam snapshot comes every few seconds)."""
METHODS = ("full scan", "template", "detection")


@dataclass
class TrackingBenchResult:
    context: dict = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)


def _run(detector, method: str, video, repeats: int) -> dict:
    from classpulse_detector.tracking import TrackingDetector

    source = ("bench", "moving")
    interval = 0 if method == "full scan" else 3_600_000
    follow = "template" if method == "full scan" else method
    cpu = []
    for _ in range(repeats):  # the least CPU of a few runs: the machine is shared
        tracker = TrackingDetector(detector, interval, follow=follow)
        started = time.process_time()
        found = [tracker.detect(source, n + 1, n * FRAME_INTERVAL_MS, frame.gray) for n, frame in enumerate(video)]
        cpu.append((time.process_time() - started) * 1000 / len(video))
    errors = [roll_error_deg(frame, box) for boxes, frame in zip(found, video, strict=True) for box in boxes]
    errors = [error for error in errors if error is not None]
    return {
        "cpu_ms_per_frame": round(min(cpu), 2),
        "frames_counted_right": round(sum(map(counted_right, video, found)) / len(video), 3),
        "full_scans": tracker.stats.full_scans,
        "region_scans": tracker.stats.region_scans,
        "roll_error_deg_p90": round(float(np.percentile(errors, 90)), 1) if errors else None,
        "roll_error_deg_max": round(max(errors), 1) if errors else None,
    }


def run_tracking_bench(csv_path: str | None, frames: int, seed: int, repeats: int = 3) -> TrackingBenchResult:
    from classpulse_demo.fer_csv import resolve_fer_csv, sample_faces
    from classpulse_detector.settings import DetectorSettings

    picked = sample_faces(resolve_fer_csv(csv_path), {"happy": 2, "neutral": 2}, "PublicTest", random.Random(seed))
    video = moving_faces_video([face.pixels for group in picked.values() for face in group][:3], frames, seed)
    result = TrackingBenchResult(context={
        "machine": machine.describe(), "seed": seed, "frames": frames, "frame_interval_ms": FRAME_INTERVAL_MS,
        "video": f"640x360, 3 faces of {SIDE} px: walking 40 px/frame, rolling +-30 deg, away 6 frames",
    })
    section = Section(
        "Tracking on the moving-faces video",
        note="cpu: per frame, the least of a few runs, one thread; counted right: every face drawn found (centre within"
        " a third of a side) and nothing else; roll error: how far the eye line of the landmarks each returned box"
        " carries (what head pose and aligned crops use) is from the drawn face's roll (BlazeFace only)",
    )
    for name in ("haar", "blazeface"):
        detector = DetectorSettings(face_detector=name, personal_face_detector=name, personal_min_face_px=80).face_finder(
            "personal"
        )
        for method in METHODS:
            section.add(f"{name}: {method}", **_run(detector, method, video, repeats))
    result.context["service_follows"] = {
        name: DetectorSettings(face_detector=name).tracking_detector().follow for name in ("haar", "blazeface")
    }
    result.sections = [section]
    return result
