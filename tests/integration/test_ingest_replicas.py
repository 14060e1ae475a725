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

from classpulse_common.auth import new_key
from classpulse_devstack.kafka_topics import kafka_admin
from ingest_replicas import Replica, assert_each_frame_once, install_admin_key, running_replicas, uninterrupted_captures
from ingest_support import (
    make_class,  # noqa: F401 (a fixture)
    read_frames,
    write_video,
)

pytestmark = pytest.mark.integration

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
def replicas(infra, kafka_bootstrap, frames_topic, media, tmp_path_factory) -> Iterator[list[Replica]]:
    redis_url = f"redis://127.0.0.1:{infra.config.redis_port}/0"
    install_admin_key(redis_url, ADMIN_KEY)
    env = {
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": frames_topic,
        "CLASSPULSE_REDIS_URL": redis_url,
        "CLASSPULSE_MEDIA_DIR": str(media),
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


def test_a_source_continues_on_another_replica_after_its_replica_is_killed(replicas, make_class, media, kafka_bootstrap, frames_topic):
    first, second, third = replicas
    class_id = make_class()
    created = _start_lesson(first, class_id, media)
    source_id = created["source_id"]

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

    assert resumed["owner"] is not None and not resumed["owner"].endswith(first.owner_suffix), resumed
    assert resumed_after_s < RESUME_LIMIT_S
    assert ended["state"] == "ended", ended
    _assert_every_frame_once(kafka_bootstrap, frames_topic, created, media)


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
