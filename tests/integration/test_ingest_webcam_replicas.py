"""A webcam source names a camera of one machine by its index, so it stays with the machine it was started on: real
ingest processes of two machines (CLASSPULSE_CAMERA_HOST) share Kafka and Redis; when the replica of the webcam's
machine is killed, the other machine's replica continues its recording but leaves the webcam, which reads `stalled`
(rather than its own camera read in its place), until a replica of the webcam's machine runs again and takes it."""

from __future__ import annotations

import signal
import uuid

import pytest

from classpulse_web.auth import new_key
from ingest_replicas import install_admin_key, running_replicas
from ingest_support import make_class, write_video  # noqa: F401 (make_class is a fixture)

# The replicas are a deployment of their own: on database 0 the session's stack's ingest would take part.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]

ADMIN_KEY = new_key()[1]
CLAIM_INTERVAL_S = 1.0


def test_a_webcam_stays_with_its_machine_when_its_replica_dies(kafka_bootstrap, topic_factory, redis_url, make_class, tmp_path):
    lesson = write_video(tmp_path / "lesson.mp4", "mp4v", frames=300, fps=10)  # 30 s: still running at the takeover
    install_admin_key(redis_url, ADMIN_KEY)
    env = {
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": topic_factory(3),
        "CLASSPULSE_REDIS_URL": redis_url,
        "CLASSPULSE_MEDIA_DIR": str(tmp_path),
        "CLASSPULSE_SOURCE_LEASE_TTL_S": "3",
        "CLASSPULSE_SOURCE_CLAIM_INTERVAL_S": str(CLAIM_INTERVAL_S),
        # The test's machine has no camera 7: the webcam keeps reconnecting rather than failing.
        "CLASSPULSE_RECONNECT_ATTEMPTS": "1000",
        "CLASSPULSE_RECONNECT_MAX_S": "1",
    }
    machine_a, machine_b = ({**env, "CLASSPULSE_CAMERA_HOST": name} for name in ("machine-a", "machine-b"))
    for folder in ("a", "b", "a-again"):
        (tmp_path / folder).mkdir()
    class_id = make_class()
    webcam_id, lesson_id = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("webcam", "lesson"))

    with running_replicas(1, machine_a, tmp_path / "a", ADMIN_KEY) as [on_a], running_replicas(1, machine_b, tmp_path / "b", ADMIN_KEY) as [on_b]:
        webcam = on_a.start_source(class_id, {"url": "7", "fps": 2.0, "source_id": webcam_id})
        recording = on_a.start_source(class_id, {"url": str(lesson), "fps": 2.0, "source_id": lesson_id})
        assert webcam.status_code == recording.status_code == 201, (webcam.text, recording.text)

        on_a.process.send_signal(signal.SIGKILL)
        on_a.process.wait(timeout=10)
        taken_over = on_b.poll(lesson_id, lambda s: s["owner"] is not None and s["owner"].endswith(on_b.owner_suffix), 20)
        # Rounds of claims later, the webcam is still nobody's.
        stalled = on_b.poll(webcam_id, lambda s: s["owner"] is not None, 3 * CLAIM_INTERVAL_S)
        with running_replicas(1, machine_a, tmp_path / "a-again", ADMIN_KEY) as [on_a_again]:
            back = on_b.poll(webcam_id, lambda s: s["owner"] is not None and s["owner"].endswith(on_a_again.owner_suffix), 20)

    assert taken_over["owner"].endswith(on_b.owner_suffix), taken_over
    assert stalled["state"] == "stalled" and stalled["owner"] is None, stalled
    assert "machine-a" in stalled["reason"], stalled
    assert back["owner"].endswith(on_a_again.owner_suffix) and back["state"] != "stalled", back
