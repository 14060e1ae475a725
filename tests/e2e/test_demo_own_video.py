"""`make demo VIDEO=...` with a user's own video (issue 18): a video the project never saw, made at run time from
FER2013 faces at another size and frame rate than the sample's and with no ground truth beside it, goes through the
demo on the real local stack; the demo waits until the API counts every frame ingest published, then prints the
summary; and when frames go missing, it says how many and where they went."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
from classpulse_demo.run import (
    DeadLetters,
    api_client,
    capture_range,
    labels_path,
    register_class,
    shortfall,
    stack_component,
    wait_for_frames,
)
from classpulse_demo.sample_class import generate_sample_class
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.video import SourceSpec


def _fer_csv() -> Path | None:
    try:
        return resolve_fer_csv()
    except FerCsvNotFoundError:
        return None


FER_CSV = _fer_csv()
REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

CASES = {
    # Issue 18's video: 4 frames/s at 1280x720, read faster than real time, so its capture stamps run ahead of the clock.
    "4fps-1280x720-fast": {"size": (1280, 720), "video_fps": 4.0, "seconds": 7.5, "options": ["--fps", "4"], "frames": 30},
    # Full HD (ingest downscales it), sampled at half a frame a second at the video's own pace: frames at 0, 2 and 4 s.
    "1920x1080-half-fps-realtime": {
        "size": (1920, 1080), "video_fps": 4.0, "seconds": 6.0, "options": ["--fps", "0.5", "--realtime"], "frames": 3,
    },
}


# Checked at collection, so that a machine without the CSV does not start the stack for nothing.
@pytest.mark.skipif(FER_CSV is None, reason="no FER2013 CSV (set FER2013_CSV): the video's faces come from it")
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_frame_of_a_users_own_video_is_counted(case, tmp_path, stack):
    made = generate_sample_class(FER_CSV, tmp_path, students=4, seconds=case["seconds"], fps=case["video_fps"], size=case["size"])
    video = made.video.rename(tmp_path / "lesson.mp4")
    made.labels.unlink()  # a user's video comes without ground truth
    assert not labels_path(video).exists()

    class_id = f"own-video-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "classpulse_demo.run", "--video", str(video), "--class", class_id, "--timeout", "240", *case["options"]],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["class_id"] == class_id
    assert summary["frames_published"] == summary["frames"] == case["frames"]
    assert summary["faces"] > 0 and summary["dominant_emotion"] is not None


def test_frames_the_pipeline_refuses_are_reported_missing_and_dead_lettered(tmp_path, stack, monkeypatch):
    """The other ending of the wait, on the real pipeline: frames of a class nobody registered (ingest's own check
    skipped) are dead-lettered by the detector, the API counts none, and the shortfall names them."""
    for name, value in stack_component(stack.config, "ingest").env.items():
        monkeypatch.setenv(name, value)
    video = tmp_path / "noise.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (320, 240))
    for _ in range(5):
        writer.write(np.random.default_rng().integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()

    class_id = f"unregistered-{uuid.uuid4().hex[:8]}"
    letters = DeadLetters(stack.config, class_id)
    pipeline = Pipeline(IngestSettings(), "test-demo-shortfall")
    runner = pipeline.runner(SourceSpec(str(video)), class_id, 5.0, realtime=False).start()
    assert runner.wait(60)
    pipeline.close(10)
    status = runner.status()
    published = {**status.model_dump(mode="json"), "frames": status.frames_published}
    assert published["frames"] == 5

    api = stack_component(stack.config, "api").address
    deadline = time.monotonic() + 60
    while letters.count() != {"classpulse.frames.dlq": 5} and time.monotonic() < deadline:
        time.sleep(1)
    summary = wait_for_frames(api, class_id, capture_range(published), published["frames"], stall_timeout_s=2)
    message = shortfall(published, summary["frames"], letters.count(), 2)
    assert f"the API counts 0 of the 5 frames source {status.source_id} published" in message
    assert "5 missing; 5 dead-lettered (classpulse.frames.dlq: 5); 0 neither counted nor dead-lettered" in message


def test_a_lesson_into_a_class_of_another_size_keeps_the_class_and_says_what_presence_is_read_against(stack, capsys):
    """`make demo` then `make demo MODE=webcams CLASS=demo` on one stack: the class keeps its registered 6 students
    (resizing it would change its past lessons' presence) and the demo says that the 12 webcams are read against 6.
    Without a CLASS, the webcam demo has a class of its own (demo-webcams)."""
    api = stack_component(stack.config, "api").address
    class_id = f"sized-{uuid.uuid4().hex[:8]}"
    register_class(api, class_id, expected_students=6, emotion_enabled=True)
    register_class(api, class_id, expected_students=6, emotion_enabled=False)  # the same size: only its mode changes
    assert "note:" not in capsys.readouterr().err
    register_class(api, class_id, expected_students=12, emotion_enabled=True)
    assert f"class '{class_id}' is registered for 6 students and this lesson shows 12" in capsys.readouterr().err
    with api_client(api) as client:
        record = client.get(f"/v1/classes/{class_id}").json()
        assert (record["expected_students"], record["emotion_enabled"]) == (6, True)
        client.delete(f"/v1/classes/{class_id}").raise_for_status()
