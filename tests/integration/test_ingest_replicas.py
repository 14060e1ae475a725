"""Sources belong to the deployment, not to one ingest process: three real ingest processes share Kafka and Redis;
a source started on one is seen and stopped from any other, and when its process is killed (SIGKILL: no goodbye)
another one continues it within 30 s, from where it was: every frame of the recording on Kafka once by its number,
any frame sent twice sent as the same frame (same number, same capture time: the aggregator counts it once)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from classpulse_common.auth import Role, new_key
from classpulse_common.keystore import KeyStore
from classpulse_devstack.kafka_topics import kafka_admin
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.video import SourceSpec, open_reader
from ingest_support import (
    make_class,  # noqa: F401 (a fixture)
    read_frames,
    write_video,
)

pytestmark = pytest.mark.integration

ADMIN_KEY = new_key()[1]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
FPS = 5.0
RESUME_LIMIT_S = 30.0


@dataclass
class Replica:
    process: subprocess.Popen
    url: str
    log: Path

    @property
    def owner_suffix(self) -> str:
        return f"/{self.process.pid}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=ADMIN, timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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

    async def install_admin() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await KeyStore(client).install(ADMIN_KEY, Role.ADMIN, "replicas test admin")
        await client.aclose()

    asyncio.run(install_admin())
    logs = tmp_path_factory.mktemp("replica-logs")
    started: list[Replica] = []
    for number in range(3):
        port = _free_port()
        env = {
            **os.environ,
            "CLASSPULSE_HTTP_PORT": str(port),
            "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CLASSPULSE_KAFKA_FRAMES_TOPIC": frames_topic,
            "CLASSPULSE_REDIS_URL": redis_url,
            "CLASSPULSE_MEDIA_DIR": str(media),
        }
        log = logs / f"ingest-{number}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "classpulse_ingest"], env=env, stdout=out, stderr=out)
        started.append(Replica(process, f"http://127.0.0.1:{port}", log))
    try:
        for replica in started:
            _wait_ready(replica)
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            try:
                replica.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.process.kill()


def _wait_ready(replica: Replica) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert replica.process.poll() is None, replica.log.read_text()[-3000:]
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"ingest not ready in 90 s: {replica.log.read_text()[-3000:]}")


def _poll(replica: Replica, source_id: str, done, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = replica.get(f"/v1/sources/{source_id}").json()
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.25)


def _uninterrupted_positions(location: Path) -> list[float]:
    """Where on its timeline each frame of the recording falls when one reader reads it all."""
    reader = open_reader(SourceSpec(str(location)), IngestSettings())
    try:
        return [raw.position_ms for raw in reader.frames(FPS, 0.0)]
    finally:
        reader.release()


def _assert_every_frame_once(bootstrap: str, topic: str, source_id: str, started_at_ms: int, media: Path) -> None:
    """Every frame of the recording on Kafka, each under one number and one capture time (what the aggregator's
    dedup keys on): frames sent again after a takeover are the same frames, counted once."""
    frames = [f for f in read_frames(bootstrap, topic, quiet_s=3.0) if f.source_id == source_id]
    positions = _uninterrupted_positions(media / "lesson.mp4")
    by_sequence: dict[int, set[int]] = {}
    for frame in frames:
        by_sequence.setdefault(frame.sequence, set()).add(frame.captured_at_ms)
    assert sorted(by_sequence) == list(range(len(positions))), (len(positions), sorted(by_sequence))
    assert by_sequence == {n: {int(started_at_ms + position)} for n, position in enumerate(positions)}
    assert len(frames) - len(positions) < 2 * FPS * 2  # sent twice: at most what Kafka had not acknowledged


def test_a_source_continues_on_another_replica_after_its_replica_is_killed(replicas, make_class, media, kafka_bootstrap, frames_topic):
    first, second, third = replicas
    class_id = make_class()
    source_id = f"lesson-{uuid.uuid4().hex[:8]}"
    body = {"url": str(media / "lesson.mp4"), "fps": FPS, "source_id": source_id}
    created = httpx.post(f"{first.url}/v1/classes/{class_id}/sources", json=body, headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    assert created.json()["owner"].endswith(first.owner_suffix), created.json()

    seen_elsewhere = _poll(second, source_id, lambda s: s["frames_published"] >= 12, 30)
    listed = {s["source_id"]: s for s in third.get(f"/v1/sources?class_id={class_id}").json()}
    assert seen_elsewhere["state"] == "live" and seen_elsewhere["owner"].endswith(first.owner_suffix), seen_elsewhere
    assert listed[source_id]["owner"] == seen_elsewhere["owner"]

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    resumed = _poll(
        second, source_id, lambda s: s["owner"] is not None and not s["owner"].endswith(first.owner_suffix), RESUME_LIMIT_S
    )
    resumed_after_s = time.monotonic() - killed_at
    ended = _poll(third, source_id, lambda s: s["state"] == "ended", 60)

    assert resumed["owner"] is not None and not resumed["owner"].endswith(first.owner_suffix), resumed
    assert resumed_after_s < RESUME_LIMIT_S
    assert ended["state"] == "ended", ended
    _assert_every_frame_once(kafka_bootstrap, frames_topic, source_id, created.json()["started_at_ms"], media)


def test_any_replica_answers_for_a_source_and_stops_it_where_it_runs(replicas, make_class, media):
    alive = [replica for replica in replicas if replica.process.poll() is None]
    owner, other = alive[0], alive[-1]
    class_id = make_class()
    source_id = f"lesson-{uuid.uuid4().hex[:8]}"
    body = {"url": str(media / "lesson.mp4"), "fps": FPS, "source_id": source_id}
    created = httpx.post(f"{owner.url}/v1/classes/{class_id}/sources", json=body, headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    live = _poll(other, source_id, lambda s: s["state"] == "live", 20)
    stopped = httpx.delete(f"{other.url}/v1/sources/{source_id}", headers=ADMIN, timeout=30)
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
    leaving, staying = [replica for replica in replicas if replica.process.poll() is None][:2]
    class_id = make_class()
    source_id = f"lesson-{uuid.uuid4().hex[:8]}"
    body = {"url": str(media / "lesson.mp4"), "fps": FPS, "source_id": source_id}
    created = httpx.post(f"{leaving.url}/v1/classes/{class_id}/sources", json=body, headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    _poll(staying, source_id, lambda s: s["frames_published"] >= 8, 30)

    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(timeout=30) in (0, -signal.SIGTERM), leaving.log.read_text()[-2000:]
    gone_at = time.monotonic()
    resumed = _poll(staying, source_id, lambda s: s["owner"] is not None and s["owner"].endswith(staying.owner_suffix), 20)
    resumed_after_s = time.monotonic() - gone_at
    ended = _poll(staying, source_id, lambda s: s["state"] == "ended", 60)

    # Claimed at the next round (2 s, jittered), not after the lease's 10 s: the lease was let go.
    assert resumed["owner"].endswith(staying.owner_suffix) and resumed_after_s < 5, (resumed, resumed_after_s)
    assert ended["state"] == "ended", ended
    _assert_every_frame_once(kafka_bootstrap, frames_topic, source_id, created.json()["started_at_ms"], media)
