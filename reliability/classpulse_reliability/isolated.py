"""A whole ClassPulse stack of its own, to break things in: every port moved by an offset, its own run dir (data,
logs, pid files, admin key), no Prometheus. Starting, killing and stopping it never touches the default stack.

An offset is claimed with a lock file, so two test sessions on one machine never pick the same one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import redis

from classpulse_core.settings import RedisSettings
from classpulse_devstack import probes, processes
from classpulse_devstack.components import SERVICE_PORTS, Component, service_replica
from classpulse_devstack.config import REPO_ROOT, DevstackConfig
from classpulse_devstack.redis_server import REPLICAS, sentinel_addresses
from classpulse_devstack.stack import Stack
from classpulse_store.redis_clients import redis_client

log = logging.getLogger(__name__)

SERVICES = tuple(SERVICE_PORTS)
COMPONENTS = ("kafka", "redis", "model-server", *SERVICES)
"""Everything but Prometheus: its scrapes would only cost CPU here; the tools read the services' /metrics directly."""
REDIS_FAILOVER = (*REPLICAS, "redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3")
"""The components a stack made with `redis_sentinel` adds (classpulse_devstack.components)."""
OFFSET_CANDIDATES = (10_000, 13_000, 16_000, 19_000, 22_000)
"""A stack spans ports 6379..9093 plus its offset, so offsets 3000 apart never share a port; the highest (31093) is
below Linux's ephemeral range (32768 up), where client sockets could hold one."""
PORTS_PER_OFFSET = (
    (9092, 9093, 6379, 6380, 6381, 6382, 6383, 6384, 8500, 8501, 9090)
    # The services, their replicas (+100, +200) and the copies tests start beside them (+300).
    + tuple(port + extra for port in SERVICE_PORTS.values() for extra in (0, 100, 200, 300))
)
LOCK_DIR = Path("/tmp")  # noqa: S108 - fixed, not $TMPDIR: every worktree's drills must see one another's locks
STOP_WAIT_S = 15.0


class NoFreeOffset(RuntimeError):
    pass


@contextlib.contextmanager
def claimed_offset(preferred: int | None = None) -> Iterator[int]:
    """A port offset whose ports are all free, held (by a lock file) until the block ends."""
    for offset in (preferred,) if preferred is not None else OFFSET_CANDIDATES:
        lock_file = (LOCK_DIR / f"classpulse-isolated-{offset}.lock").open("w")
        if _try_lock(lock_file) and not any(probes.port_open(port + offset) for port in PORTS_PER_OFFSET):
            try:
                yield offset
            finally:
                lock_file.close()
            return
        lock_file.close()
    raise NoFreeOffset(f"no free port offset among {preferred or OFFSET_CANDIDATES}")


def _try_lock(lock_file: IO[str]) -> bool:
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class IsolatedStack:
    """The devstack's components, relocated by `offset`, with helpers to signal, stop and restart each one."""

    def __init__(self, offset: int, run_dir: Path | None = None, redis_sentinel: bool = False) -> None:
        """`redis_sentinel`: Redis as a primary, a replica and three sentinels, which every service goes through."""
        env = {
            **os.environ,
            "CLASSPULSE_DEVSTACK_PORT_OFFSET": str(offset),
            "CLASSPULSE_DEVSTACK_RUN_DIR": str(run_dir or REPO_ROOT / ".run" / "isolated" / str(offset)),
            "CLASSPULSE_DEVSTACK_REDIS_SENTINEL": "1" if redis_sentinel else "",
        }
        # A developer's own port overrides would win over the offset and point at their stack.
        for name in ("CLASSPULSE_DEVSTACK_KAFKA_PORT", "CLASSPULSE_DEVSTACK_KAFKA_CONTROLLER_PORT", "CLASSPULSE_DEVSTACK_REDIS_PORT"):
            env.pop(name, None)
        self.config = DevstackConfig.from_env(env)
        self.stack = Stack(self.config)
        self._replicas: dict[str, Component] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------

    @property
    def components(self) -> tuple[str, ...]:
        return COMPONENTS + (REDIS_FAILOVER if self.config.redis_sentinel else ())

    def up(self, fresh: bool = True, only: tuple[str, ...] | None = None) -> None:
        """Start every component (in order, each ready before the next), or those named in `only`; `fresh`: stop
        whatever of it still runs and wipe its run dir (data, logs, admin key) first."""
        if fresh and self.config.run_dir.exists():
            self.down()
            shutil.rmtree(self.config.run_dir)
            # The registry read the admin key (from the run dir) when it was built: build it again, with a new key.
            self.stack = Stack(self.config)
        started_at = time.monotonic()
        self.stack.up(self.stack.select(",".join(only or self.components)))
        log.info("isolated stack up in %.1f s (port offset %d)", time.monotonic() - started_at, self.config.port_offset)

    def down(self) -> None:
        """Stop every component and replica this stack started; safe to call whatever state it is in."""
        self.stack.down(list(self._replicas.values()))
        self.stack.down(self.stack.select(",".join(self.components)))

    def component(self, name: str) -> Component:
        if name in self._replicas:
            return self._replicas[name]
        return self.stack.select(name)[0]

    def start(self, name: str) -> float:
        """Start one component (a no-op if it runs) and wait until it is ready; returns the seconds that took."""
        started_at = time.monotonic()
        self.stack.up([self.component(name)])
        return time.monotonic() - started_at

    def stop(self, name: str) -> None:
        """Stop one component cleanly (SIGTERM, then SIGKILL after its stop timeout)."""
        self.stack.down([self.component(name)])
        self._wait_port_closed(name)

    def _wait_port_closed(self, name: str) -> None:
        """A killed multi-threaded process shows as a zombie while its other threads still exit and hold its
        sockets: a restart in that moment would find the port taken. So wait for the port as well."""
        port = self.component(name).port
        deadline = time.monotonic() + STOP_WAIT_S
        while probes.port_open(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port} of {name} still open {STOP_WAIT_S:.0f} s after it stopped")
            time.sleep(0.05)

    def pid(self, name: str) -> int:
        process = self.stack.process(self.component(name))
        if process is None:
            raise RuntimeError(f"{name} is not running")
        return process.pid

    def kill(self, name: str, signum: signal.Signals = signal.SIGKILL) -> None:
        """Send `signum` to the component's process and, for a fatal one, wait until it is gone."""
        process = self.stack.process(self.component(name))
        if process is None:
            raise RuntimeError(f"{name} is not running")
        os.kill(process.pid, signum)
        if signum in (signal.SIGKILL, signal.SIGTERM):
            deadline = time.monotonic() + STOP_WAIT_S
            while processes.is_alive(process):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} (pid {process.pid}) still alive {STOP_WAIT_S:.0f} s after {signum.name}")
                time.sleep(0.05)
            self._wait_port_closed(name)

    def add_replica(self, service: str, index: int = 1) -> str:
        """Start another copy of `service` in its consumer group; returns its name (for stop, kill, pid)."""
        replica = service_replica(self.config, service, index)
        self._replicas[replica.name] = replica
        self.start(replica.name)
        return replica.name

    # --- addresses and clients -------------------------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        return self.config.kafka_bootstrap

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.config.redis_port}/0"

    def url(self, service: str) -> str:
        return self.component(service).address

    def admin_key(self) -> str:
        return self.config.admin_api_key()

    def redis(self) -> redis.Redis:
        """A client of the primary: through the sentinels where the stack has them, so it follows a failover."""
        if self.config.redis_sentinel:
            settings = RedisSettings(redis_url=self.redis_url, redis_sentinels=sentinel_addresses(self.config))
            return redis_client(settings, socket_timeout=10)
        return redis.Redis(host="127.0.0.1", port=self.config.redis_port, socket_timeout=10)

    def client_env(self) -> dict[str, str]:
        """Environment for a process of ours (a publisher) that must talk to this stack, not the default one."""
        return {
            **os.environ,
            "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "CLASSPULSE_REDIS_URL": self.redis_url,
            "CLASSPULSE_REDIS_SENTINELS": sentinel_addresses(self.config) if self.config.redis_sentinel else "",
        }

    def rss_bytes(self, name: str) -> int:
        """Resident memory of the component's process, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid(name)}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {name}")

    def log_path(self, name: str) -> Path:
        return self.stack.log_path(self.component(name))


@contextlib.contextmanager
def running_isolated_stack(offset: int | None = None) -> Iterator[IsolatedStack]:
    """An isolated stack on a free port offset (or `offset`), up for the block and always stopped after it."""
    with claimed_offset(offset) as claimed:
        stack = IsolatedStack(claimed)
        try:
            stack.up()
            yield stack
        finally:
            stack.down()
