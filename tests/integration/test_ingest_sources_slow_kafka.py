"""The sources of ingest replicas while Kafka is slow (a broker of the module's own, frozen: it takes frames and
answers nothing), on the real Redis: a replica's round of lease renewals never waits for Kafka, so its live sources
keep their leases, and a finished recording keeps its own until Kafka answered for its frames; a replica stopped
(SIGTERM) exits within its shutdown budget and hands its recording over, and the replica that continues it reads
again the frames Kafka never acknowledged: every frame of the lesson reaches Kafka."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from classpulse_ingest.manager import FINISHED_KEPT, SourceManager
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.source_store import SourceStore, lease_key
from classpulse_ingest.video import SourceSpec
from classpulse_store.redis_clients import redis_client
from classpulse_web.auth import new_key
from ingest_replicas import assert_each_frame_once, install_admin_key, running_replicas, uninterrupted_captures
from ingest_support import (  # noqa: F401 (kafka_up, make_class and private_kafka are fixtures)
    FRAMES_TOPIC,
    VideoServer,
    frozen,
    ingest_settings,
    kafka_up,
    make_class,
    private_kafka,
    read_frames,
    wait_until,
    write_video,
)

# The managers' sources are the module's own: on database 0 the session's stack's ingest would claim them.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]

ADMIN_KEY = new_key()[1]
SHUTDOWN_BUDGET_S = 8


@pytest.fixture
def replica(infra, kafka_up, redis_url, tmp_path) -> Iterator:
    """`replica()`: a SourceManager with a pipeline of its own, as one ingest replica runs them, whose rounds the test
    drives (its loop is not started); shut down afterwards."""
    stack, _ = kafka_up
    made: list[SourceManager] = []

    def make() -> SourceManager:
        settings = ingest_settings(
            infra, stack.config.kafka_bootstrap, FRAMES_TOPIC, redis_url=redis_url, media_dir=tmp_path
        )
        store = SourceStore(redis_client(settings, decode_responses=True), FINISHED_KEPT)
        made.append(SourceManager(settings, Pipeline(settings, "test-slow-kafka"), store))
        return made[-1]

    yield make
    for manager in made:
        manager.stop_running(1)
        manager.pipeline.close(1)
        manager.close()
        manager.store.client.close()


def test_a_round_of_renewals_never_waits_for_kafka_to_answer_for_finished_recordings(kafka_up, replica, make_class, tmp_path):
    stack, kafka = kafka_up
    manager = replica()
    class_id = make_class()
    lesson = write_video(tmp_path / "lesson.avi", "MJPG", frames=6, fps=6)
    camera_server = VideoServer(tmp_path, stream_fps=10).start()
    try:
        camera = manager.create(SourceSpec(f"{camera_server.url}/stream.mjpg"), class_id, 4.0, None).source_id
        assert wait_until(lambda: manager.status(camera).frames_published >= 2, 30)  # Kafka answers, then not
        manager.tick()
        with frozen(stack, kafka):
            recordings = [manager.create(SourceSpec(str(lesson)), class_id, 6.0, None, realtime=False).source_id for _ in range(2)]
            # Each reads "ended" once it waited its while for Kafka, its frames still in flight.
            assert wait_until(lambda: all(manager.status(source_id).state == "ended" for source_id in recordings), 20)
            started = time.monotonic()
            manager.tick()
            tick_s = time.monotonic() - started
            camera_lease_ms = manager.store.client.pttl(lease_key(camera))
            while_frozen = [manager.store.get(source_id) for source_id in recordings]
        wait_until(lambda: all(manager.status(source_id).frames_published == 6 for source_id in recordings), 30)
        manager.tick()
        answered = [manager.store.get(source_id) for source_id in recordings]
    finally:
        camera_server.stop()

    assert tick_s < 1.0
    assert camera_lease_ms > 0.8 * manager.ttl_ms  # renewed just now, not a round of waits ago
    assert all(stored.leased and stored.status["state"] == "ended" for stored in while_frozen), while_frozen
    assert all(not stored.leased and stored.status["frames_published"] == 6 for stored in answered), answered


def test_a_replica_stopped_while_kafka_answers_nothing_hands_over_in_its_budget_and_no_frame_is_lost(kafka_up, redis_url, make_class, tmp_path):
    stack, kafka = kafka_up
    lesson = write_video(tmp_path / "lesson.mp4", "mp4v", frames=100, fps=10)  # 10 s
    install_admin_key(redis_url, ADMIN_KEY)
    env = {
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": stack.config.kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": FRAMES_TOPIC,
        "CLASSPULSE_REDIS_URL": redis_url,
        "CLASSPULSE_MEDIA_DIR": str(tmp_path),
        "CLASSPULSE_SHUTDOWN_BUDGET_S": str(SHUTDOWN_BUDGET_S),
    }
    (tmp_path / "logs").mkdir()
    with running_replicas(2, env, tmp_path / "logs", ADMIN_KEY) as (leaving, staying):
        created = leaving.start_source(make_class(), {"url": str(lesson), "fps": 5.0, "source_id": "lesson"}).json()
        staying.poll("lesson", lambda s: s["frames_published"] >= 5, 30)
        with frozen(stack, kafka):
            time.sleep(2.0)  # frames read and sent, none acknowledged
            leaving.process.send_signal(signal.SIGTERM)
            stopping_at = time.monotonic()
            exit_code = leaving.process.wait(timeout=60)
            shutdown_s = time.monotonic() - stopping_at
            handed_over = staying.poll("lesson", lambda s: s["owner"] is not None and s["owner"].endswith(staying.owner_suffix), 5)
        ended = staying.poll("lesson", lambda s: s["state"] == "ended", 60)
    log = leaving.log.read_text()

    assert exit_code in (0, -signal.SIGTERM), log[-2000:]
    assert shutdown_s < SHUTDOWN_BUDGET_S, (shutdown_s, log[-3000:])
    assert '"msg": "source handed over"' in log and handed_over["owner"].endswith(staying.owner_suffix), handed_over
    assert ended["state"] == "ended", ended
    frames = [frame for frame in read_frames(stack.config.kafka_bootstrap, FRAMES_TOPIC, quiet_s=3.0) if frame.source_id == "lesson"]
    assert_each_frame_once(frames, uninterrupted_captures(lesson, 5.0, created["started_at_ms"]))
    assert ended["frames_dropped"].get("shutdown", 0) > 0, ended  # dropped there, and read again here
