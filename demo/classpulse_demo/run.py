"""`python -m classpulse_demo.run`: the demo a newcomer runs (`make demo`).

Builds the sample class video if needed, brings the local stack up if needed, ingests the video into a class, waits
until the API counts every frame ingest published, over exactly those frames' capture times, then prints how the class
looked, phase by phase, next to the video's ground truth (when the video has one), and last the class summary as one
JSON line. Frames still missing when the pipeline stops making progress are reported (how many, how many were
dead-lettered) and the demo exits 1.

It talks to the stack that `python -m classpulse_devstack` runs under the same environment, so
CLASSPULSE_DEVSTACK_PORT_OFFSET and CLASSPULSE_DEVSTACK_RUN_DIR point it at a second stack.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from classpulse_core.labels import EMOTIONS
from classpulse_demo import webcams
from classpulse_devstack.components import Component
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.kafka_topics import pipeline_topics
from classpulse_devstack.stack import Stack
from classpulse_reliability.workload import end_offsets, read_topic

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / ".cache" / "demo"
SAMPLE_VIDEO = SAMPLE_DIR / "sample_class.mp4"


def labels_path(video: Path) -> Path:
    return video.with_suffix(".labels.json")


def ensure_sample_video() -> Path:
    if not SAMPLE_VIDEO.exists():
        _run([sys.executable, "-m", "classpulse_demo.sample_class", "--out", str(SAMPLE_DIR)], "building the sample class video")
    return SAMPLE_VIDEO


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    print(f"== {what}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode})")
    return done.stdout


def stack_component(config: DevstackConfig, name: str) -> Component:
    """A component of the local stack as `classpulse_devstack up` runs it (ports moved by the stack's offset)."""
    return Stack(config).select(name)[0]


def ingest(config: DevstackConfig, video: Path, class_id: str, fps: float, realtime: bool, camera_kind: str = "room") -> dict:
    """Publish the video with `classpulse_ingest publish`; its final status line (frames, capture-time span...)."""
    command = [
        sys.executable, "-m", "classpulse_ingest", "publish", "--class", class_id, "--source", str(video), "--fps", str(fps),
        "--camera-kind", camera_kind,
    ]
    if not realtime:
        command.append("--no-realtime")
    # The ingest service's own environment: the addresses of this stack's Kafka and Redis, not the default ports.
    env = {**os.environ, **stack_component(config, "ingest").env}
    lines = _run(command, f"ingesting {video.name} into class {class_id!r} at {fps:g} frames/s", env).strip().splitlines()
    return json.loads(lines[-1])


def capture_range(published: dict) -> tuple[int, int]:
    """The query range (epoch ms, both ends included) that holds every frame `publish` reported: from the start of
    the second of its earliest capture time to the end of its latest's, since the aggregator adds each frame to the
    second it was captured in."""
    first, last = published["first_captured_at_ms"], published["last_captured_at_ms"]
    return first - first % 1000, -(-last // 1000) * 1000


class DeadLetters:
    """Dead letters of one class written since this object was made: frames (or their faces, or their results) a
    stage refused, which the API will never count. Dead letters are keyed by class id, as the messages they hold."""

    def __init__(self, config: DevstackConfig, class_id: str) -> None:
        self.bootstrap = config.kafka_bootstrap
        self.key = class_id.encode()
        self.since = {
            spec.name: end_offsets(self.bootstrap, spec.name) for spec in pipeline_topics(config) if spec.name.endswith(".dlq")
        }

    def count(self) -> dict[str, int]:
        """Per dead-letter topic that has any, the class's letters since then."""
        counts = {
            topic: sum(record.key == self.key for record in read_topic(self.bootstrap, topic, offsets))
            for topic, offsets in self.since.items()
        }
        return {topic: count for topic, count in counts.items() if count}


def shortfall(published: dict, counted: int, dead_letters: dict[str, int], stalled_s: float) -> str:
    """What is missing, in words: frames published, counted, dead-lettered, and unaccounted for."""
    missing = published["frames"] - counted
    dead = sum(dead_letters.values())
    start_ms, end_ms = capture_range(published)
    parts = [
        f"timed out, no new frame counted for {stalled_s:.0f} s: the API counts {counted} of the {published['frames']} "
        f"frames source {published['source_id']} published (captured {start_ms}..{end_ms} ms); {missing} missing",
        f"{dead} dead-lettered" + (f" ({', '.join(f'{topic}: {n}' for topic, n in sorted(dead_letters.items()))})" if dead else ""),
        f"{missing - dead} neither counted nor dead-lettered (still in the pipeline, or lost: see the services' logs)",
    ]
    if published["frames_dropped"]:
        dropped = ", ".join(f"{reason}: {n}" for reason, n in sorted(published["frames_dropped"].items()))
        parts.append(f"besides, ingest dropped frames before Kafka ({dropped})")
    return "; ".join(parts)


def api_client(api: str) -> httpx.Client:
    """A client of the local stack's API (or ingest's HTTP API), with its admin key."""
    key = DevstackConfig.from_env().admin_api_key()
    return httpx.Client(base_url=api, timeout=30, headers={"Authorization": f"Bearer {key}"})


def webcam_demo(config: DevstackConfig, api: str, class_id: str) -> None:
    """A class of students on their own webcams through the student-token upload route, then its numbers against
    what was sent (classpulse_demo.webcams)."""
    lesson = webcams.WebcamLesson()
    register_class(api, class_id, lesson.students, emotion_enabled=True)
    print(
        f"== {lesson.students} students post a webcam snapshot every {lesson.interval_s:g} s for {lesson.seconds:g} s; "
        f"{len(lesson.cameras_off)} turn their camera off from {lesson.off_from_s:g} to {lesson.off_until_s:g} s",
        file=sys.stderr, flush=True,
    )
    with api_client(stack_component(config, "ingest").address) as ingest_client:
        sent = webcams.run_lesson(ingest_client, class_id, lesson)
    with api_client(api) as client:
        report = webcams.check_lesson(client, class_id, lesson, sent)
    for bucket in report.buckets:
        presence = "-" if bucket.presence is None else f"{bucket.presence:.2f}"
        print(
            f"{bucket.offset_s:>4}-{bucket.offset_s + webcams.BUCKET_S:<4}s  on camera {bucket.expected_on_camera:>2} of "
            f"{lesson.students} ({bucket.expected_on_camera / lesson.students:.2f})  presence read {presence}",
            file=sys.stderr,
        )
    for phase in report.phases:
        distance = "-" if phase.distance is None else f"{phase.distance:.2f}"
        print(f"phase: faces sent mostly {phase.dominant_sent:<9} read as {phase.dominant_seen or '-':<9} "
              f"(shares off by {distance})", file=sys.stderr)
    alerts = ", ".join(f"{alert['kind']} {alert['index']}" for alert in report.alerts)
    print(f"alerts: {alerts or 'none'}", file=sys.stderr)
    print(f"dashboard: {api}/dashboard   class: {class_id}", file=sys.stderr)
    print(json.dumps({"class_id": class_id, **report.to_line()}), flush=True)
    if report.summary["frames"] < report.frames_sent:
        sys.exit(f"only {report.summary['frames']} of the {report.frames_sent} snapshots sent were counted")


def register_class(api: str, class_id: str, expected_students: int, emotion_enabled: bool) -> None:
    """Register the class (the pipeline refuses frames of unknown classes), or set its mode if it exists.

    An existing class keeps its registered size, and says so when the lesson shows another number of students:
    presence is read against the class's size (changing it would change every past lesson's presence too)."""
    with api_client(api) as client:
        existing = client.get(f"/v1/classes/{class_id}")
        if existing.status_code == 404:
            body = {
                "class_id": class_id,
                "name": f"{class_id} (demo)",
                "expected_students": expected_students,
                "emotion_enabled": emotion_enabled,
            }
            client.post("/v1/classes", json=body).raise_for_status()
            return
        existing.raise_for_status()
        registered = existing.json()["expected_students"]
        if expected_students and registered != expected_students:
            print(
                f"note: class {class_id!r} is registered for {registered} students and this lesson shows "
                f"{expected_students}: presence is read against {registered} (another class: make demo CLASS=<id>)",
                file=sys.stderr,
            )
        client.patch(f"/v1/classes/{class_id}", json={"emotion_enabled": emotion_enabled}).raise_for_status()


def wait_for_frames(api: str, class_id: str, time_range: tuple[int, int], frames: int, stall_timeout_s: float) -> dict:
    """Poll the summary over `time_range` until it counts `frames` (the pipeline is asynchronous), or until it has
    counted no new frame for `stall_timeout_s`: a long video takes as long as the pipeline needs, a stuck one stops.
    Returns the last summary read."""
    start_ms, end_ms = time_range
    summary: dict = {"frames": 0}
    deadline = time.monotonic() + stall_timeout_s
    with api_client(api) as client:
        while time.monotonic() < deadline:
            response = client.get(f"/v1/classes/{class_id}/summary", params={"from": start_ms, "to": end_ms})
            if response.status_code == 200:
                latest = response.json()
                if latest["frames"] > summary["frames"]:
                    deadline = time.monotonic() + stall_timeout_s
                summary = latest
                if summary["frames"] >= frames:
                    return summary
            time.sleep(1.0)
    return summary


def phase_report(api: str, class_id: str, time_range: tuple[int, int], labels: dict) -> list[dict]:
    """Per phase of the sample video: the emotion the class showed most, next to the scripted one."""
    start_ms, end_ms = time_range
    with api_client(api) as client:
        series = client.get(
            f"/v1/classes/{class_id}/timeseries", params={"from": start_ms, "to": end_ms, "bucket": "1s"}
        ).json()
    points = series["points"]
    if not points:
        return []
    first = points[0]["t"]
    report = []
    for phase in labels["phases"]:
        sums = dict.fromkeys(EMOTIONS, 0.0)
        faces = 0
        for point in points:
            offset_s = (point["t"] - first) / 1000
            if phase["start_s"] <= offset_s < phase["end_s"] and point["emotions"]:
                faces += point["faces"]
                for name in EMOTIONS:
                    sums[name] += point["emotions"][name] * point["faces"]
        seen = max(sums, key=sums.__getitem__) if faces else None
        report.append({**{k: phase[k] for k in ("start_s", "end_s")}, "expected": phase["dominant_emotion"], "seen": seen, "faces": faces})
    return report


def main() -> None:
    config = DevstackConfig.from_env()
    parser = argparse.ArgumentParser(prog="classpulse_demo.run")
    parser.add_argument(
        "--mode",
        choices=("video", "webcams"),
        default="video",
        help="video: a room camera or gallery video (default); webcams: students on their own webcams, through the "
        "student page's upload route",
    )
    parser.add_argument("--video", type=Path, default=None, help="default: the generated sample class")
    parser.add_argument(
        "--class", dest="class_id", default=None,
        help="default: demo for a video, demo-webcams for webcams (a class has one size, and presence is read against it)",
    )
    parser.add_argument("--fps", type=float, default=None, help="default: the sample's own frame rate, else 2")
    parser.add_argument(
        "--api", default=stack_component(config, "api").address, help="default: the local stack's (its port offset included)"
    )
    parser.add_argument("--realtime", action="store_true", help="ingest at the video's own pace")
    parser.add_argument(
        "--camera-kind", choices=("room", "gallery"), default="room",
        help="video: what it shows, room (a classroom; the default, as make bench reads the sample class) or gallery (a "
        "video call's tiles, like the sample class: the gallery's own face finder, CLASSPULSE_GALLERY_FACE_DETECTOR)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds without a new frame counted before giving up (default 300)"
    )
    parser.add_argument(
        "--presence-only", action="store_true", help="register the class with emotion inference off (presence only)"
    )
    args = parser.parse_args()
    args.class_id = args.class_id or ("demo-webcams" if args.mode == "webcams" else "demo")

    if args.mode == "webcams":
        _run([sys.executable, "-m", "classpulse_devstack", "up"], "bringing the local stack up")
        webcam_demo(config, args.api, args.class_id)
        return
    video = args.video or ensure_sample_video()
    labels = json.loads(labels_path(video).read_text()) if labels_path(video).exists() else None
    fps = args.fps or (labels["fps"] if labels else 2.0)
    _run([sys.executable, "-m", "classpulse_devstack", "up"], "bringing the local stack up")

    register_class(args.api, args.class_id, labels["students"] if labels else 0, not args.presence_only)
    dead_letters = DeadLetters(config, args.class_id)
    published = ingest(config, video, args.class_id, fps, args.realtime, args.camera_kind)
    if not published["frames"]:
        sys.exit(f"ingest published no frame of {video} (state {published['state']}, dropped {published['frames_dropped']})")
    # Capture times come from the source (a file read faster than real time runs ahead of the clock, a folder's images
    # are as old as their files), so the range is the one publish reports, not one guessed from the clock.
    time_range = capture_range(published)
    summary = wait_for_frames(args.api, args.class_id, time_range, published["frames"], args.timeout)
    if summary["frames"] < published["frames"]:
        sys.exit(shortfall(published, summary["frames"], dead_letters.count(), args.timeout))
    if summary["frames"] > published["frames"]:
        print(
            f"note: the range also holds {summary['frames'] - published['frames']} frames of other sources of class "
            f"{args.class_id!r} (another run into it, still on its timeline?): the numbers below include them",
            file=sys.stderr,
        )

    if labels and summary["emotion_enabled"]:
        for phase in phase_report(args.api, args.class_id, time_range, labels):
            mark = "ok" if phase["seen"] == phase["expected"] else "differs"
            print(
                f"phase {phase['start_s']:>5.1f}-{phase['end_s']:<5.1f}s  scripted {phase['expected']:<9} "
                f"seen {phase['seen'] or '-':<9} ({phase['faces']} faces)  {mark}",
                file=sys.stderr,
            )
    start_ms, end_ms = time_range
    print(
        f"API: {args.api}/docs   class: {args.api}/v1/classes/{args.class_id}/summary?from={start_ms}&to={end_ms}",
        file=sys.stderr,
    )
    line = {
        "class_id": args.class_id,
        "from": start_ms,
        "to": end_ms,
        "source_id": published["source_id"],
        "camera_kind": args.camera_kind,
        "frames_published": published["frames"],
        "frames": summary["frames"],
        "faces": summary["faces"],
        "presence": summary["presence"],
        "emotion_status": summary["emotion_status"],
        "emotions": summary["emotions"],
        "dominant_emotion": summary["dominant_emotion"],
    }
    if labels:
        line["expected_emotions"] = labels["expected_emotion_share"]
        line["expected_faces"] = sum(len(frame["faces"]) for frame in labels["per_frame"])
        # What was sent: the share of the class on camera, frame by frame (the summary's presence, read back).
        line["expected_presence"] = round(line["expected_faces"] / (labels["frames"] * labels["students"]), 4)
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
