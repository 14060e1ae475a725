"""Sources belong to the deployment, not to one ingest process: three real ingest processes share Kafka and Redis;
a source started on one is seen and stopped from any other, and when its process is killed (SIGKILL: no goodbye)
another one continues it within 30 s, from where it was: every frame of the recording on Kafka once by its number,
any frame sent twice sent as the same frame (same number, same capture time: the aggregator counts it once)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from classpulse_devstack.kafka_topics import kafka_admin
from classpulse_web.auth import new_key
from ingest_replicas import Replica, assert_each_frame_once, install_admin_key, running_replicas, uninterrupted_captures
from ingest_support import (
    VideoServer,
    make_class,  # noqa: F401 (a fixture)
    read_frames,
    write_video,
)

# The replicas are a deployment of their own: on database 0 the session's stack's ingest (in the full suite) claimed
# their sources as a fourth replica, and failed them, as it does not serve this module's media folder.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]

ADMIN_KEY = new_key()[1]
FPS = 5.0
RESUME_LIMIT_S = 30.0


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_video(folder / "lesson.mp4", "mp4v", frames=200, fps=10.0)  # 20 s
    return folder


@pytest.fixture(scope="module")
def frames_topic(kafka_bootstrap) -> Iterator[str]:
    """The module's own frames topic (topic_factory is per test; the replicas outlive a test)."""
    name = f"test.replicas.{uuid.uuid4().hex[:8]}"
    with kafka_admin(kafka_bootstrap) as admin:
        admin.create_topics({name: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True)
    yield name
    with kafka_admin(kafka_bootstrap) as admin:
        admin.delete_topics([name])


@pytest.fixture(scope="module")
def replicas(kafka_bootstrap, redis_url, frames_topic, media, tmp_path_factory) -> Iterator[list[Replica]]:
    install_admin_key(redis_url, ADMIN_KEY)
    env = {
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": frames_topic,
        "CLASSPULSE_REDIS_URL": redis_url,
        "CLASSPULSE_MEDIA_DIR": str(media),
        "CLASSPULSE_SOURCE_ALLOWED_NETWORKS": '["127.0.0.0/8"]',  # the test's camera is a local server
    }
    with running_replicas(3, env, tmp_path_factory.mktemp("replica-logs"), ADMIN_KEY) as started:
        yield started


def _start_lesson(replica: Replica, class_id: str, media: Path) -> dict:
    source_id = f"lesson-{uuid.uuid4().hex[:8]}"
    created = replica.start_source(class_id, {"url": str(media / "lesson.mp4"), "fps": FPS, "source_id": source_id})
    assert created.status_code == 201, created.text
    assert created.json()["owner"].endswith(replica.owner_suffix), created.json()
    return created.json()


def _assert_every_frame_once(bootstrap: str, topic: str, created: dict, media: Path) -> None:
    frames = [f for f in read_frames(bootstrap, topic, quiet_s=3.0) if f.source_id == created["source_id"]]
    assert_each_frame_once(frames, uninterrupted_captures(media / "lesson.mp4", FPS, created["started_at_ms"]))


def test_sources_continue_on_other_replicas_after_their_replica_is_killed(replicas, make_class, media, kafka_bootstrap, frames_topic, tmp_path):
    first, second, third = replicas
    class_id = make_class()
    created = _start_lesson(first, class_id, media)
    source_id = created["source_id"]
    camera_server = VideoServer(tmp_path, stream_fps=10).start()
    camera_id = f"camera-{uuid.uuid4().hex[:8]}"
    camera = first.start_source(class_id, {"url": f"{camera_server.url}/stream.mjpg", "fps": FPS, "source_id": camera_id})
    assert camera.status_code == 201, camera.text

    seen_elsewhere = second.poll(source_id, lambda s: s["frames_published"] >= 12, 30)
    listed = {s["source_id"]: s for s in third.get(f"/v1/sources?class_id={class_id}").json()}
    assert seen_elsewhere["state"] == "live" and seen_elsewhere["owner"].endswith(first.owner_suffix), seen_elsewhere
    assert listed[source_id]["owner"] == seen_elsewhere["owner"]

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    resumed = second.poll(
        source_id, lambda s: s["owner"] is not None and not s["owner"].endswith(first.owner_suffix), RESUME_LIMIT_S
    )
    resumed_after_s = time.monotonic() - killed_at
    ended = third.poll(source_id, lambda s: s["state"] == "ended", 60)
    camera_resumed = third.poll(camera_id, lambda s: s["owner"] is not None and s["frames_published"] > 0, 10)
    resumed_at_ms = int(time.time() * 1000)
    third.poll(camera_id, lambda s: s["last_captured_at_ms"] > resumed_at_ms + 2000, 10)
    camera_stopped = third.stop_source(camera_id)
    camera_server.stop()

    assert resumed["owner"] is not None and not resumed["owner"].endswith(first.owner_suffix), resumed
    assert resumed_after_s < RESUME_LIMIT_S
    assert ended["state"] == "ended", ended
    _assert_every_frame_once(kafka_bootstrap, frames_topic, created, media)
    # A live camera goes on with new numbers: none used twice (the aggregator would count the second one as a repeat).
    assert not camera_resumed["owner"].endswith(first.owner_suffix) and camera_stopped.json()["state"] == "stopped"
    camera_frames = [f for f in read_frames(kafka_bootstrap, frames_topic, quiet_s=3.0) if f.source_id == camera_id]
    numbers = [f.sequence for f in camera_frames]
    assert len(set(numbers)) == len(numbers), sorted(numbers)
    assert any(f.captured_at_ms > resumed_at_ms for f in camera_frames), "no frame of the camera after the takeover"


def test_any_replica_answers_for_a_source_and_stops_it_where_it_runs(replicas, make_class, media):
    alive = [replica for replica in replicas if replica.alive]
    owner, other = alive[0], alive[-1]
    source_id = _start_lesson(owner, make_class(), media)["source_id"]
    live = other.poll(source_id, lambda s: s["state"] == "live", 20)
    stopped = other.stop_source(source_id)
    after = owner.get(f"/v1/sources/{source_id}").json()
    time.sleep(1.0)
    later = other.get(f"/v1/sources/{source_id}").json()
    missing = other.get("/v1/sources/no-such-source")

    assert live["owner"].endswith(owner.owner_suffix)
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped", stopped.text
    assert after["state"] == "stopped" and after["owner"] is None
    assert later["frames_published"] == after["frames_published"]  # nothing published after it stopped
    assert missing.status_code == 404


def test_a_replica_stopped_gracefully_hands_its_sources_over_at_once(replicas, make_class, media, kafka_bootstrap, frames_topic):
    leaving, staying = [replica for replica in replicas if replica.alive][:2]
    created = _start_lesson(leaving, make_class(), media)
    source_id = created["source_id"]
    staying.poll(source_id, lambda s: s["frames_published"] >= 8, 30)

    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(timeout=30) in (0, -signal.SIGTERM), leaving.log.read_text()[-2000:]
    gone_at = time.monotonic()
    resumed = staying.poll(source_id, lambda s: s["owner"] is not None and s["owner"].endswith(staying.owner_suffix), 20)
    resumed_after_s = time.monotonic() - gone_at
    ended = staying.poll(source_id, lambda s: s["state"] == "ended", 60)

    # Claimed at the next round (2 s, jittered), not after the lease's 10 s: the lease was let go.
    assert resumed["owner"].endswith(staying.owner_suffix) and resumed_after_s < 5, (resumed, resumed_after_s)
    assert ended["state"] == "ended", ended
    _assert_every_frame_once(kafka_bootstrap, frames_topic, created, media)
