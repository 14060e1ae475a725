"""Redis as production runs it, a primary, two replicas and three sentinels, and what must hold a replica before it
counts.

The aggregator's writes: a batch returns only once a replica holds it (Redis WAIT), so its Kafka offsets are committed
only then; with the replicas away the batch is retried (a dependency outage), never committed. Ingest's source leases:
claimed or renewed only once a replica holds them, so a primary cut off from its replica cannot keep one for the
replica of ingest on its side while the other side's sentinels promote the replica and another replica of ingest
claims the source there. And the primary itself refuses writes once no replica follows it (min-replicas-to-write), in
the local stack and in Kubernetes, but takes them again within seconds of a failover. The clients made from
CLASSPULSE_REDIS_SENTINELS reach the primary the sentinels name."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI

from classpulse_aggregator.stage import AggregateResults
from classpulse_aggregator.writer import SeriesWriter, Written
from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import RedisSettings, StorageSettings
from classpulse_devstack.config import REPO_ROOT
from classpulse_devstack.redis_server import (
    MASTER_NAME,
    REPLICAS,
    current_primary,
    data_dir,
    redis_server_binary,
    sentinel_addresses,
    server_env,
)
from classpulse_ingest.manager import SourceManager
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.source_store import ALL_KEY, UNFINISHED_KEY, SourceStore, lease_key, progress_fields, record_key
from classpulse_reliability.isolated import REDIS_FAILOVER, IsolatedStack, claimed_offset
from classpulse_store.redis_clients import redis_client as make_redis_client
from classpulse_store.registry import ClassRecord, class_key
from classpulse_store.replication import ReplicasBehind
from classpulse_stream.stage import Delivery
from classpulse_web.webapp import install_common
from free_ports import free_port
from ingest_support import ingest_settings, wait_until

pytestmark = pytest.mark.integration

SENTINEL_COMPONENT = REPO_ROOT / "deploy" / "k8s" / "components" / "redis-sentinel"
BASE_REDIS = REPO_ROOT / "deploy" / "k8s" / "base" / "redis"
LEASE_TTL_MS = 10_000


@contextmanager
def replicated_redis(run_dir: Path) -> Iterator[IsolatedStack]:
    """A primary, its two replicas and three sentinels of a stack of its own, as the local stack runs them with
    CLASSPULSE_DEVSTACK_REDIS_SENTINEL=1."""
    with claimed_offset() as offset:
        stack = IsolatedStack(offset, run_dir, redis_sentinel=True)
        try:
            stack.up(only=("redis", *REDIS_FAILOVER))
            yield stack
        finally:
            stack.down()


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedStack]:
    """This module's own: stopping the replicas here holds back no other test's writes."""
    with replicated_redis(tmp_path_factory.mktemp("replicated")) as stack:
        yield stack


@pytest.fixture(scope="module")
def redis_url(replicated: IsolatedStack) -> str:
    """The module's clients (redis_client, class_id's clean-up) talk to its own primary."""
    return replicated.redis_url


@contextmanager
def replicas_frozen(stack: IsolatedStack) -> Iterator[None]:
    """Every replica stopped (SIGSTOP) for the block, as ones cut off from their primary: their links stay up, they
    answer nothing."""
    pids = [stack.pid(name) for name in REPLICAS]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def _frame(class_id: str, sequence: int) -> FrameResult:
    at_ms = int(time.time() * 1000) - 2000
    return FrameResult(
        class_id=class_id, source_id="cam", frame_id=f"cam:{sequence}", sequence=sequence, captured_at_ms=at_ms,
        completed_at_ms=at_ms, boxes=[[0, 0, 10, 10]], probabilities=[[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]],
    )


def _writer(client, replicas: int) -> SeriesWriter:
    return SeriesWriter(client, StorageSettings().resolutions(), dedup_window_s=600, replicas=replicas, replica_timeout_ms=300)


def test_a_batch_returns_once_a_replica_holds_it_and_is_retried_while_none_does(replicated, redis_client, class_id):
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id).to_hash())
    writer = _writer(redis_client, replicas=1)
    assert [write.outcome for write in writer.write([_frame(class_id, 0)])] == [Written.NEW]

    with replicas_frozen(replicated):
        with pytest.raises(ReplicasBehind, match="0 of 1 replicas"):
            writer.write([_frame(class_id, 1)])
        handler = AggregateResults(writer, alerts=None, max_capture_ahead_ms=60_000)
        with pytest.raises(DependencyUnavailable) as raised:
            handler([Delivery("classpulse.predictions", 0, 0, None, b"", _frame(class_id, 2))])
        assert raised.value.dependency == "redis_replica"
        # Without WAIT the same write returns at once: what a commit would then have trusted.
        assert [write.outcome for write in _writer(redis_client, replicas=0).write([_frame(class_id, 3)])] == [Written.NEW]
    # The retried batch is written again; what had landed is recognised, nothing counts twice.
    assert [write.outcome for write in writer.write([_frame(class_id, 1), _frame(class_id, 2)])] == [Written.DUPLICATE] * 2


def test_a_client_from_the_sentinel_settings_reaches_the_primary_they_name(replicated, redis_client, class_id):
    settings = RedisSettings(
        redis_url="redis://ignored.invalid:1/0", redis_sentinels=sentinel_addresses(replicated.config)
    )
    client = make_redis_client(settings)
    client.set(class_key(class_id), "through the sentinels")
    assert redis_client.get(class_key(class_id)) == b"through the sentinels"
    assert client.connection_pool.get_master_address() == ("127.0.0.1", replicated.config.redis_port)
    client.close()


def _lease_status(source_id: str) -> dict:
    return {"source_id": source_id, "state": "live", "started_at_ms": int(time.time() * 1000), "fps": 2.0}


def test_a_source_lease_is_claimed_or_renewed_only_once_a_replica_holds_it(replicated):
    """The primary takes a claim or a renewal whether its replica answers or not; trusted without the replica, a lease
    would keep a source running on this side of a partition while the replica the sentinels promote, which never
    saw the renewals, lets another replica of ingest claim it there: the source published twice."""
    client = redis.Redis.from_url(replicated.redis_url, decode_responses=True)
    store = SourceStore(client, finished_kept=2, replicas=1, replica_timeout_ms=300)
    held, unowned = (f"replicated-{uuid.uuid4().hex[:10]}" for _ in range(2))
    try:
        assert store.create(held, "/media/lesson.mp4", True, _lease_status(held), "ingest-a/1", LEASE_TTL_MS, "ingest-a")
        assert store.create(unowned, "/media/lesson.mp4", True, _lease_status(unowned), "gone/1", LEASE_TTL_MS, "gone")
        assert store.release(unowned, "gone/1", [])
        progress = progress_fields(_lease_status(held), 7, None)
        assert store.renew([(held, "ingest-a/1", progress)], LEASE_TTL_MS) == [1]

        with replicas_frozen(replicated):
            with pytest.raises(ReplicasBehind, match="0 of 1 replicas"):
                store.renew([(held, "ingest-a/1", progress)], LEASE_TTL_MS)
            with pytest.raises(ReplicasBehind, match="0 of 1 replicas"):
                store.claim(unowned, "ingest-a/2", LEASE_TTL_MS, "ingest-a")

        # The replica back, what it acknowledges counts again.
        assert store.renew([(held, "ingest-a/1", progress)], LEASE_TTL_MS) == [1]
    finally:
        for source_id in (held, unowned):
            client.delete(record_key(source_id), lease_key(source_id))
            client.srem(UNFINISHED_KEY, source_id)
            client.zrem(ALL_KEY, source_id)
        client.close()


def test_a_claim_no_replica_holds_is_dropped_and_the_round_claims_on(replicated, infra, kafka_bootstrap, tmp_path):
    """A claim the replica does not acknowledge is not trusted: that source waits out the lease's TTL, and the round's
    other sources are still claimed (a round that ended at its first such claim left them all to the next one)."""
    client = redis.Redis.from_url(replicated.redis_url, decode_responses=True)
    settings = ingest_settings(
        infra, kafka_bootstrap, "classpulse.frames", redis_url=replicated.redis_url, redis_wait_replicas=1,
        redis_wait_timeout_ms=300, media_dir=tmp_path,
    )
    store = SourceStore(client, finished_kept=2, replicas=1, replica_timeout_ms=300)
    manager = SourceManager(settings, Pipeline(settings, "test-replicated-claims"), store)
    sources = [f"replicated-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        for source_id in sources:
            assert store.create(source_id, "/media/lesson.mp4", True, _lease_status(source_id), "gone/1", LEASE_TTL_MS, "gone")
            assert store.release(source_id, "gone/1", [])
        with replicas_frozen(replicated):
            manager.tick()
        assert all(client.exists(lease_key(source_id)) for source_id in sources)  # each was tried
        assert not manager._owned  # and none is run on a claim no replica holds
    finally:
        manager.pipeline.close(1)
        for source_id in sources:
            client.delete(record_key(source_id), lease_key(source_id))
            client.srem(UNFINISHED_KEY, source_id)
            client.zrem(ALL_KEY, source_id)
        client.close()


def test_the_primary_refuses_writes_once_no_replica_follows_it(replicated, redis_client, class_id):
    """min-replicas-to-write 1 on the primary and on the replica a failover promotes: a primary cut off from its replica
    (and from the sentinels, which promote the replica) stops taking writes within min-replicas-max-lag seconds,
    instead of acknowledging every write until the partition heals and then dropping them all. The aggregator waits
    that out as it waits for a replica's acknowledgement."""
    wanted = {"min-replicas-to-write": "1", "min-replicas-max-lag": "5"}
    for port in (replicated.config.redis_port, *replicated.config.redis_replica_ports):
        with redis.Redis(port=port, decode_responses=True) as server:
            assert server.config_get("min-replicas-*") == wanted, port
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id).to_hash())
    handler = AggregateResults(_writer(redis_client, replicas=1), alerts=None, max_capture_ahead_ms=60_000)
    written = f"{class_key(class_id)}:written"
    with replicas_frozen(replicated):
        frozen_at = time.monotonic()
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            while time.monotonic() - frozen_at < 15:
                redis_client.set(written, "while no replica follows")
                time.sleep(0.2)
        assert time.monotonic() - frozen_at >= 4  # the replica's last acknowledgement is within the lag for a while
        with pytest.raises(DependencyUnavailable) as raised:
            handler([Delivery("classpulse.predictions", 0, 0, None, b"", _frame(class_id, 0))])
        assert raised.value.dependency == "redis_replica"
        # The API and ingest answer such a write as they answer Redis away (a 503 to retry), not as a bug.
        answers = asyncio.run(_answers_of_an_app_writing(redis_client, written))
        assert answers["write"] == (503, "2"), answers
        assert answers["bad command"][0] == 500, answers  # a bug stays one
    _wait_until_written(redis_client, written)


def test_a_promoted_replica_takes_writes_within_seconds_of_the_failover(tmp_path):
    """The primary killed, the sentinels promote a replica and point the other one at it: the new primary has a
    replica following it again within seconds and takes writes (min-replicas-to-write 1), rather than refuse them
    until the killed primary is back as its replica (nothing restarts a server of the local stack)."""
    with replicated_redis(tmp_path / "stack") as stack:
        client = stack.redis()
        client.set("before the failover", "written")
        killed_port = stack.config.redis_port
        stack.kill("redis")
        assert wait_until(lambda: current_primary(stack.config) not in (None, ("127.0.0.1", killed_port)), 30), "no failover"
        assert wait_until(lambda: _takes_a_write(client), 5), "the new primary still refuses writes 5 s after promotion"
        assert client.get("before the failover") == b"written"
        client.close()
        # Started again (as Kubernetes restarts a pod), it is the new primary's replica from the start: as a primary,
        # until the sentinels demote it, it would take the clients of a sentinel not yet told of the failover and
        # refuse their writes, no replica following it.
        stack.start("redis")
        with redis.Redis(port=killed_port, decode_responses=True) as restarted:
            replication = restarted.info("replication")
        assert (replication["role"], replication.get("master_port")) == ("slave", current_primary(stack.config)[1])


def test_after_a_failover_a_full_restart_keeps_the_promoted_primary_and_what_it_took(tmp_path):
    """The primary killed and a replica promoted, which takes writes; then `down` and `up`. The servers start before the
    sentinels, in the roles the sentinels recorded: the old primary started as the primary would have the others copy
    its stale data set, the writes taken since the failover dropped."""
    with replicated_redis(tmp_path / "stack") as stack:
        client = stack.redis()
        killed_port = stack.config.redis_port
        stack.kill("redis")
        assert wait_until(lambda: current_primary(stack.config) not in (None, ("127.0.0.1", killed_port)), 30), "no failover"
        promoted = current_primary(stack.config)
        assert wait_until(lambda: _takes_a_write(client), 5), "the new primary still refuses writes 5 s after promotion"
        client.close()

        stack.down()
        stack.up(fresh=False, only=("redis", *REDIS_FAILOVER))
        with stack.redis() as client:
            assert client.get("after the failover") == b"written"
        assert current_primary(stack.config) == promoted
        with redis.Redis(port=killed_port, decode_responses=True) as restarted:
            replication = restarted.info("replication")
        assert (replication["role"], replication.get("master_port")) == ("slave", promoted[1])


def test_a_primary_restarted_with_an_empty_data_dir_hands_over_to_a_replica_that_holds_the_writes(tmp_path):
    """`redis`'s data dir lost, it is started again before the sentinels noticed it was away, so they still name it the
    primary. As such it would have both replicas copy its empty data set; the sentinels promote a replica instead,
    and it follows that one."""
    with replicated_redis(tmp_path / "stack") as stack:
        client = stack.redis()
        client.set("before the data dir was lost", "written")
        assert client.execute_command("WAIT", 2, 2000) == 2
        empty_port = stack.config.redis_port
        # The restart beats the sentinels however slow this machine: they would not notice it within a minute.
        for port in stack.config.redis_sentinel_ports:
            with redis.Redis(port=port) as sentinel:
                sentinel.execute_command("SENTINEL", "SET", MASTER_NAME, "down-after-milliseconds", 60_000)

        stack.stop("redis")
        shutil.rmtree(data_dir(stack.config))
        stack.start("redis")

        assert client.get("before the data dir was lost") == b"written"
        primary = current_primary(stack.config)
        assert primary is not None and primary[1] != empty_port
        assert wait_until(lambda: _follows(empty_port, primary[1]), 10), "redis does not sync from the new primary"
        with redis.Redis(port=empty_port) as restarted:
            assert restarted.get("before the data dir was lost") == b"written"
        client.close()


def test_a_primary_the_sentinels_recorded_is_not_started_with_an_empty_data_dir(tmp_path):
    """The same, but the whole stack down: no sentinel answers to fail over. `up` refuses to start `redis`, saying why,
    and nothing that could copy it is started."""
    with replicated_redis(tmp_path / "stack") as stack:
        with stack.redis() as client:
            client.set("before the data dir was lost", "written")
            assert client.execute_command("WAIT", 2, 2000) == 2
        stack.down()
        shutil.rmtree(data_dir(stack.config))

        with pytest.raises(RuntimeError, match=f"{stack.config.redis_port} as the primary, but .* holds no data"):
            stack.up(fresh=False, only=("redis", *REDIS_FAILOVER))
        assert stack.stack.process(stack.component("redis")) is None


def _follows(port: int, primary_port: int) -> bool:
    with redis.Redis(port=port, decode_responses=True) as server:
        replication = server.info("replication")
    return replication.get("master_port") == primary_port and replication.get("master_link_status") == "up"


def _takes_a_write(client: redis.Redis) -> bool:
    try:
        return bool(client.set("after the failover", "written"))
    except redis.RedisError:  # the killed primary, a replica not yet promoted, NOREPLICAS
        return False


async def _answers_of_an_app_writing(client: redis.Redis, key: str) -> dict[str, tuple[int, str | None]]:
    """{route: (status, Retry-After)} of a web app with the services' common error handling, writing `key`, and sending
    Redis a command it does not know."""
    app = FastAPI()
    install_common(app, "test", readiness=None, max_body_bytes=1024)

    @app.post("/write")
    def write() -> None:
        client.set(key, "from a request")

    @app.post("/bad-command")
    def bad_command() -> None:
        client.execute_command("NO-SUCH-COMMAND")

    answers = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
        for name, route in (("write", "/write"), ("bad command", "/bad-command")):
            response = await http.post(route)
            answers[name] = (response.status_code, response.headers.get("Retry-After"))
    return answers


def _wait_until_written(client: redis.Redis, key: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.set(key, "again")
            return
        except redis.ResponseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_a_redis_pod_of_the_sentinel_component_refuses_writes_while_no_replica_follows_it(devstack, tmp_path):
    """start-redis.sh as the pod runs it (the component's scripts mounted at /scripts, the base's at /etc/redis), as
    the deployment's first primary (redis-0, which the sentinels name on the first start), the image's entrypoint
    standing for the wheel's redis-server on a port of this test's."""
    port, password = free_port(), uuid.uuid4().hex
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "hostname", "#!/bin/sh\necho redis-0\n")
    _executable(bin_dir / "redis-cli", "#!/bin/sh\nprintf 'redis-0.redis\\n6379\\n'\n")  # every sentinel's answer
    _executable(
        bin_dir / "docker-entrypoint.sh",
        f'#!/bin/sh\nshift 2\nexec {redis_server_binary()} --port {port} --bind 127.0.0.1 --dir {tmp_path} --save "" "$@"\n',
    )
    script = tmp_path / "start-redis.sh"
    script.write_text(
        (SENTINEL_COMPONENT / "start-redis.sh").read_text()
        .replace("/scripts/", f"{SENTINEL_COMPONENT}/")
        .replace("/etc/redis/", f"{BASE_REDIS}/")
    )
    env = {
        **os.environ, **server_env(devstack.config),
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "REDIS_PASSWORD": password, "REDIS_MEMORY_LIMIT_MIB": "512",
    }
    container_args = ["redis-server", "/etc/redis/redis.conf", "--requirepass", password]
    with (tmp_path / "redis.log").open("w") as log:
        server = subprocess.Popen(["sh", str(script), *container_args], env=env, stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, password=password, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while not _answers(client):
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "redis.log").read_text()
            time.sleep(0.1)
        assert client.config_get("min-replicas-*") == {"min-replicas-to-write": "1", "min-replicas-max-lag": "5"}
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            client.set("written", "with no replica")
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
