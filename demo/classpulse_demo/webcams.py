"""A class of students on their own webcams, sent as the student page sends it, checked against what was sent.

Each student gets a student token from ingest and posts one JPEG snapshot every snapshot interval (the student
page's, 5 s by default) through the token's upload route, staggered across the interval as real pages are. A
snapshot is a 640x480 webcam picture of one FER2013 PublicTest face, made at run time. The lesson has phases, each
with a dominant emotion most students show (a third show another); some students turn their camera off for a while
and back on. Afterwards the class's numbers are read back from the API and set against the truth: students on
camera per 10-s bucket, emotion shares per phase (of the faces sent), and the presence alert.

`python -m classpulse_demo.run --mode webcams` (`make demo MODE=webcams`) runs it on the local stack.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import cv2
import httpx
import numpy as np

from classpulse_core.labels import EMOTIONS
from classpulse_demo.fer_csv import FerFace, resolve_fer_csv, sample_faces
from classpulse_demo.gallery import GalleryRenderer, plan_gallery

BUCKET_S = 10
SETTLE_S = 15
"""Buckets this close to a camera turning off or on are left out of the presence check: a camera counts until its
last snapshot's presence window (12 s) has run out."""


@dataclass(frozen=True)
class WebcamLesson:
    students: int = 12
    interval_s: float = 5.0
    seconds: float = 110.0
    phases: tuple[str, ...] = ("happy", "surprise")
    cameras_off: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    """Students whose cameras go off at `off_from_s` and come back at `off_until_s`."""
    off_from_s: float = 30.0
    off_until_s: float = 85.0
    seed: int = 7

    def camera_on(self, student: int, at_s: float) -> bool:
        return student not in self.cameras_off or not self.off_from_s <= at_s < self.off_until_s

    def phase_of(self, at_s: float) -> int:
        return min(len(self.phases) - 1, int(at_s * len(self.phases) / self.seconds))

    def on_camera(self, at_s: float) -> int:
        return sum(self.camera_on(student, at_s) for student in range(self.students))


@dataclass
class Sent:
    """What was posted: (seconds into the lesson, student, emotion shown) per snapshot."""

    snapshots: list[tuple[float, int, str]] = field(default_factory=list)
    start_ms: int = 0

    def shares(self, phase: int, lesson: WebcamLesson) -> dict[str, float]:
        shown = [emotion for at, _, emotion in self.snapshots if lesson.phase_of(at) == phase]
        return {name: shown.count(name) / len(shown) for name in EMOTIONS}


def student_emotions(lesson: WebcamLesson, rng: random.Random) -> list[list[str]]:
    """Per student, the emotion shown in each phase: the phase's own for two thirds of the class, another for the rest."""
    table = []
    for student in range(lesson.students):
        row = []
        for dominant in lesson.phases:
            differs = student % 3 == 2
            row.append(rng.choice([e for e in EMOTIONS if e != dominant]) if differs else dominant)
        table.append(row)
    return table


def webcam_pictures(lesson: WebcamLesson, csv_path: str | None = None) -> tuple[list[list[np.ndarray]], list[list[str]]]:
    """Per student and phase, the JPEG-ready BGR picture a webcam would take, and the emotion it shows."""
    rng = random.Random(lesson.seed)
    emotions = student_emotions(lesson, rng)
    needed: dict[str, int] = {}
    for row in emotions:
        for emotion in row:
            needed[emotion] = needed.get(emotion, 0) + 1
    faces: dict[str, list[FerFace]] = sample_faces(resolve_fer_csv(csv_path), needed, "PublicTest", rng)
    layout = plan_gallery(640, 480, 1)
    pictures = []
    for student, row in enumerate(emotions):
        slots = [faces[emotion].pop().pixels for emotion in row]
        renderer = GalleryRenderer(layout, [f"Student {student + 1}"], slots)
        pictures.append([renderer.render([slot]) for slot in range(len(row))])
    return pictures, emotions


def issue_tokens(ingest: httpx.Client, class_id: str, students: int) -> list[str]:
    tokens = []
    for student in range(students):
        issued = ingest.post(f"/v1/classes/{class_id}/student-tokens", json={"name": f"webcam demo student {student + 1}"})
        issued.raise_for_status()
        tokens.append(issued.json()["api_key"])
    return tokens


def run_lesson(ingest: httpx.Client, class_id: str, lesson: WebcamLesson, csv_path: str | None = None) -> Sent:
    """Post the lesson's snapshots in real time, as the students' pages would; returns what was sent."""
    pictures, emotions = webcam_pictures(lesson, csv_path)
    jpegs = [[cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for picture in row] for row in pictures]
    tokens = issue_tokens(ingest, class_id, lesson.students)
    # Each page started at its own moment: snapshots of the class are spread over the interval.
    schedule = sorted(
        (student * lesson.interval_s / lesson.students + n * lesson.interval_s, student)
        for student in range(lesson.students)
        for n in range(int(lesson.seconds / lesson.interval_s))
    )
    sent = Sent(start_ms=int(time.time() * 1000))
    started = time.monotonic()
    for at_s, student in schedule:
        time.sleep(max(0.0, started + at_s - time.monotonic()))
        if not lesson.camera_on(student, at_s):
            continue
        phase = lesson.phase_of(at_s)
        answer = ingest.post(
            f"/v1/classes/{class_id}/frames",
            content=jpegs[student][phase],
            headers={"Authorization": f"Bearer {tokens[student]}", "Content-Type": "image/jpeg"},
        )
        answer.raise_for_status()
        sent.snapshots.append((at_s, student, emotions[student][phase]))
    return sent


@dataclass(frozen=True)
class BucketCheck:
    offset_s: int
    expected_on_camera: int
    presence: float | None


@dataclass(frozen=True)
class PhaseCheck:
    dominant_sent: str
    dominant_seen: str | None
    sent: dict[str, float]
    seen: dict[str, float] | None

    @property
    def distance(self) -> float | None:
        """Total-variation distance between the shares seen and the shares of the faces sent."""
        if self.seen is None:
            return None
        return 0.5 * sum(abs(self.sent[name] - self.seen[name]) for name in EMOTIONS)


@dataclass(frozen=True)
class WebcamReport:
    frames_sent: int
    summary: dict
    buckets: list[BucketCheck]
    phases: list[PhaseCheck]
    alerts: list[dict]

    def to_line(self) -> dict:
        return {
            "frames_sent": self.frames_sent,
            "frames": self.summary["frames"],
            "faces": self.summary["faces"],
            "presence": self.summary["presence"],
            "on_camera": self.summary["on_camera"],
            "emotions": self.summary["emotions"],
            "presence_by_bucket": [
                {"at_s": b.offset_s, "expected": b.expected_on_camera, "presence": b.presence} for b in self.buckets
            ],
            "phases": [
                {"sent": p.dominant_sent, "seen": p.dominant_seen, "share_distance": p.distance} for p in self.phases
            ],
            "alerts": [f"{a['kind']} {a['index']}" for a in self.alerts],
        }


def settled_buckets(lesson: WebcamLesson) -> list[int]:
    """Offsets of 10-s buckets far enough from any camera change for the truth to be one number."""
    changes = [lesson.off_from_s, lesson.off_until_s] if lesson.cameras_off else []
    offsets = range(BUCKET_S, int(lesson.seconds) - BUCKET_S, BUCKET_S)
    return [
        offset for offset in offsets
        if all(not (change - BUCKET_S < offset < change + SETTLE_S) for change in changes)
    ]


def check_lesson(api: httpx.Client, class_id: str, lesson: WebcamLesson, sent: Sent, timeout_s: float = 120.0) -> WebcamReport:
    """Wait until the API counts every snapshot sent, then read the class back against the truth."""
    start_ms = sent.start_ms - sent.start_ms % (BUCKET_S * 1000)
    end_ms = sent.start_ms + int(lesson.seconds * 1000) + 20_000
    deadline = time.monotonic() + timeout_s
    summary: dict = {"frames": 0}
    while time.monotonic() < deadline:
        summary = api.get(f"/v1/classes/{class_id}/summary", params={"from": start_ms, "to": end_ms}).json()
        if summary["frames"] >= len(sent.snapshots):
            break
        time.sleep(1.0)
    points = api.get(
        f"/v1/classes/{class_id}/timeseries", params={"from": start_ms, "to": end_ms, "bucket": f"{BUCKET_S}s"}
    ).json()["points"]
    by_offset = {(point["t"] - sent.start_ms) // 1000: point for point in points}
    buckets = []
    for offset in settled_buckets(lesson):
        point = next((p for t, p in by_offset.items() if offset <= t + BUCKET_S / 2 < offset + BUCKET_S), None)
        buckets.append(BucketCheck(offset, lesson.on_camera(offset + BUCKET_S / 2), point["presence"] if point else None))
    phases = []
    phase_s = lesson.seconds / len(lesson.phases)
    for phase in range(len(lesson.phases)):
        window = {"from": sent.start_ms + int(phase * phase_s * 1000), "to": sent.start_ms + int((phase + 1) * phase_s * 1000) - 1}
        seen = api.get(f"/v1/classes/{class_id}/summary", params=window).json()
        shares = sent.shares(phase, lesson)
        phases.append(PhaseCheck(max(shares, key=shares.__getitem__), seen["dominant_emotion"], shares, seen["emotions"]))
    alerts = [
        event for event in api.get(f"/v1/classes/{class_id}/events", params={"limit": 100}).json()["items"]
        if event["t"] >= sent.start_ms
    ]
    return WebcamReport(len(sent.snapshots), summary, buckets, phases, sorted(alerts, key=lambda event: event["t"]))
