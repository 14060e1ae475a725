"""A source whose ingest process is killed mid-stream continues on another replica, and the whole pipeline (detector,
aggregator, API) counts each frame of the recording exactly once: none missing from the gap, none twice from the
frames the new replica sends again."""

from __future__ import annotations

import signal
import time
import uuid

import cv2
import numpy as np
import pytest

from classpulse_demo.run import capture_range, register_class, stack_component, wait_for_frames
from ingest_replicas import running_replicas, uninterrupted_captures

pytestmark = pytest.mark.e2e

FPS = 4.0


def test_the_pipeline_counts_every_frame_once_when_a_source_moves_to_another_replica(stack, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    video = media / "lesson.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    noise = np.random.default_rng(22)
    for _ in range(200):  # 20 s, no face: each frame goes from the detector straight to the aggregator
        writer.write(noise.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    api = stack_component(stack.config, "api").address
    class_id = f"takeover-{uuid.uuid4().hex[:8]}"
    register_class(api, class_id, expected_students=1, emotion_enabled=False)
    env = {**stack_component(stack.config, "ingest").env, "CLASSPULSE_MEDIA_DIR": str(media)}

    with running_replicas(2, env, tmp_path, stack.config.admin_api_key()) as (first, second):
        body = {"url": str(video), "fps": FPS, "source_id": f"lesson-{uuid.uuid4().hex[:8]}"}
        created = first.start_source(class_id, body)
        assert created.status_code == 201, created.text
        source_id = created.json()["source_id"]
        second.poll(source_id, lambda s: s["frames_published"] >= 10, 30)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        killed_at = time.monotonic()
        resumed = second.poll(source_id, lambda s: s["owner"] not in (None, created.json()["owner"]), 30)
        resumed_after_s = time.monotonic() - killed_at
        ended = second.poll(source_id, lambda s: s["state"] == "ended", 90)

    expected = uninterrupted_captures(video, FPS, created.json()["started_at_ms"])
    summary = wait_for_frames(api, class_id, capture_range(ended), len(expected), stall_timeout_s=60)
    time.sleep(5)  # frames counted twice would show up now
    settled = wait_for_frames(api, class_id, capture_range(ended), len(expected) + 1, stall_timeout_s=3)

    assert resumed["owner"] not in (None, created.json()["owner"]) and resumed_after_s < 30, (resumed, resumed_after_s)
    assert ended["state"] == "ended" and (ended["first_captured_at_ms"], ended["last_captured_at_ms"]) == (expected[0], expected[-1])
    assert summary["frames"] == settled["frames"] == len(expected), (summary, settled, len(expected))
    assert ended["frames_published"] >= len(expected), ended  # with any frames sent again after the takeover
