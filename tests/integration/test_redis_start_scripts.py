"""The Redis pods' start scripts of deploy/k8s/components/redis-sentinel, run against real servers: a starting pod
follows the primary the first sentinel that answers names, and never takes an error reply for its address (redis-cli
prints errors on stdout and exits 0)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from classpulse_devstack import redis_server
from classpulse_devstack.config import DevstackConfig
from free_ports import free_port

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "components" / "redis-sentinel"
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
    """Nothing: the start script then falls back to redis-0, the first start of the deployment."""
    order = [servers["redis"], servers["sentinel-other-password"], servers["nothing"]]
    assert _current_primary(order, tmp_path) == ""
