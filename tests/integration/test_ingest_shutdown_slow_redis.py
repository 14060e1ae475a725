"""The sources of ingest replicas while Redis stops answering (a Redis of the module's own, frozen: connections stay
open, every command waits out its socket timeout and its retries): a replica stopped (SIGTERM) exits within its
shutdown budget whatever Redis does and names the sources it could not hand over, whose leases lapse, and another
replica continues them once Redis answers again; a replica whose Redis answers again within the budget still hands
its sources over, and one going away runs no source it claims or is given meanwhile: it lets it go at once."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from classpulse_devstack.components import Component
from classpulse_devstack.stack import Stack
from classpulse_ingest.manager import FINISHED_KEPT, SourceManager
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.source_store import SourceStore
from classpulse_ingest.video import SourceSpec
from classpulse_store.redis_clients import redis_client
from classpulse_web.auth import new_key
from free_ports import free_port
from ingest_replicas import install_admin_key, running_replicas
from ingest_support import VideoServer, frozen, ingest_settings, make_class, wait_until  # noqa: F401 (make_class is a fixture)

pytestmark = pytest.mark.integration

ADMIN_KEY = new_key()[1]
SHUTDOWN_BUDGET_S = 8
LEASE_TTL_S = 4
FPS = 2.0


@pytest.fixture(scope="module")
def private_redis(devstack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[Component]]]:
    """A Redis on a free port with its data under tmp: frozen, it holds back no other test's clients."""
    config = dataclasses.replace(
        devstack.config, run_dir=tmp_path_factory.mktemp("redis"), redis_port=free_port(), redis_sentinel=False
    )
    stack = Stack(config)
    server = stack.select("redis")
    stack.up(server)
    yield stack, server
    stack.down(server)


@pytest.fixture(scope="module")
def redis_url(private_redis: tuple[Stack, list[Component]]) -> str:
    """The module's clients (make_class's, the replicas') talk to its own Redis."""
    stack, _ = private_redis
    return f"redis://127.0.0.1:{stack.config.redis_port}/0"


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[str]:
    """The URL of an endless MJPEG stream: a source that runs until it is stopped or handed over."""
    server = VideoServer(tmp_path, stream_fps=10).start()
    yield f"{server.url}/stream.mjpg"
    server.stop()


def test_a_replica_stopped_while_redis_answers_nothing_exits_within_its_budget_and_its_sources_lapse_to_another(
    private_redis, redis_url, kafka_bootstrap, topic_factory, make_class, camera, tmp_path
):
    stack, server = private_redis
    install_admin_key(redis_url, ADMIN_KEY)
    env = {
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": topic_factory(),
        "CLASSPULSE_REDIS_URL": redis_url,
        "CLASSPULSE_SOURCE_ALLOWED_NETWORKS": '["127.0.0.0/8"]',  # the test's camera is a local server
        "CLASSPULSE_SHUTDOWN_BUDGET_S": str(SHUTDOWN_BUDGET_S),
        "CLASSPULSE_SOURCE_LEASE_TTL_S": str(LEASE_TTL_S),
        "CLASSPULSE_SOURCE_CLAIM_INTERVAL_S": "1",
    }
    class_id = make_class()
    source_ids = sorted(f"camera-{number}-{uuid.uuid4().hex[:8]}" for number in range(2))
    (tmp_path / "logs").mkdir()
    with running_replicas(2, env, tmp_path / "logs", ADMIN_KEY) as (leaving, staying):
        for source_id in source_ids:
            created = leaving.start_source(class_id, {"url": camera, "fps": FPS, "source_id": source_id})
            assert created.status_code == 201, created.text
            leaving.poll(source_id, lambda s: s["frames_published"] > 0, 30)
        with frozen(stack, server):
            leaving.process.send_signal(signal.SIGTERM)
            stopping_at = time.monotonic()
            try:
                exit_code: int | None = leaving.process.wait(timeout=SHUTDOWN_BUDGET_S + 5)
            except subprocess.TimeoutExpired:
                exit_code = None
            shutdown_s = time.monotonic() - stopping_at
        continued = [
            staying.poll(source_id, lambda s: s["owner"] is not None and s["owner"].endswith(staying.owner_suffix), LEASE_TTL_S + 10)
            for source_id in source_ids
        ]
    leaving_log, staying_log = _records(leaving.log), _records(staying.log)

    assert exit_code in (0, -signal.SIGTERM), (exit_code, shutdown_s, leaving.log.read_text()[-3000:])
    assert shutdown_s < SHUTDOWN_BUDGET_S, (shutdown_s, leaving.log.read_text()[-3000:])
    [left] = [record for record in leaving_log if record["msg"].startswith("sources not handed over")]
    assert left["source_ids"] == source_ids, left
    assert all(status["owner"].endswith(staying.owner_suffix) for status in continued), continued
    # Taken over from the replica that left (its lease lapsed), not handed over by it.
    taken_over = {record["source_id"]: record["from"] for record in staying_log if record["msg"] == "source taken over"}
    assert all(taken_over.get(source_id, "").endswith(leaving.owner_suffix) for source_id in source_ids), taken_over


@pytest.fixture
def manager(infra, redis_url, kafka_bootstrap, topic_factory) -> Iterator[SourceManager]:
    """A SourceManager with a pipeline of its own and its loop running, as one ingest replica runs them; shut down
    afterwards."""
    settings = ingest_settings(
        infra, kafka_bootstrap, topic_factory(), redis_url=redis_url, source_lease_ttl_s=LEASE_TTL_S
    )
    store = SourceStore(redis_client(settings, decode_responses=True), FINISHED_KEPT)
    manager = SourceManager(settings, Pipeline(settings, "test-slow-redis"), store).start()
    yield manager
    manager.shut_down(SHUTDOWN_BUDGET_S)
    store.client.close()


def test_a_replica_whose_redis_answers_again_within_the_budget_hands_its_sources_over(
    private_redis, manager, make_class, camera
):
    stack, server = private_redis
    store = manager.store
    source_id = manager.create(SourceSpec(camera), make_class(), FPS, None).source_id
    assert wait_until(lambda: manager.status(source_id).frames_published > 0, 30)
    shutting_down = threading.Thread(target=manager.shut_down, args=(SHUTDOWN_BUDGET_S / 2,))
    with frozen(stack, server):
        shutting_down.start()
        started = time.monotonic()
        time.sleep(1.5)
    shutting_down.join(SHUTDOWN_BUDGET_S)
    shutdown_s = time.monotonic() - started
    stored = store.get(source_id)

    assert shutdown_s < SHUTDOWN_BUDGET_S / 2
    assert stored is not None and not stored.leased and stored.owner == "", stored
    assert stored.status["state"] == "waiting" and stored.status["reason"] == "handed over at shutdown", stored.status


def test_a_source_given_to_a_replica_going_away_is_let_go_at_once(manager, make_class, camera):
    manager.stop_running(0)
    created = manager.create(SourceSpec(camera), make_class(), FPS, None)
    stored = manager.store.get(created.source_id)

    assert created.owner is None and created.state == "waiting", created
    assert stored is not None and not stored.leased and stored.owner == "", stored


def _records(log: Path) -> list[dict]:
    """The JSON records of a replica's log (uvicorn's and the libraries' lines that are not JSON left out)."""
    records = []
    for line in log.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
