"""up, down and status over the registry's components: start in order and wait for each, stop in reverse."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from classpulse_devstack import probes, processes
from classpulse_devstack.components import Component, registry
from classpulse_devstack.config import DevstackConfig

log = logging.getLogger(__name__)

READY_POLL_S = 0.5


class StackError(RuntimeError):
    """A component could not be started; the message says which, why, and ends with its log's tail."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    state: str
    """ready | not ready (running, not serving yet) | stopped | external (on its port, but not started by the stack)"""
    address: str
    log_path: Path


class Stack:
    def __init__(self, config: DevstackConfig, components: list[Component] | None = None) -> None:
        self.config = config
        self.components = components if components is not None else registry(config)

    def select(self, only: str | None) -> list[Component]:
        """Components named by `only` (comma-separated component or group names), in registry order; None: all."""
        if not only:
            return list(self.components)
        wanted = {name.strip() for name in only.split(",") if name.strip()}
        known = {c.name for c in self.components} | {c.group for c in self.components}
        unknown = wanted - known
        if unknown:
            raise ValueError(f"unknown component or group {sorted(unknown)}; known: {sorted(known)}")
        return [c for c in self.components if c.name in wanted or c.group in wanted]

    def log_path(self, component: Component) -> Path:
        return self.config.logs_dir / f"{component.name}.log"

    def _pid_file(self, component: Component) -> processes.PidFile:
        return processes.PidFile(self.config.pids_dir / f"{component.name}.pid")

    def process(self, component: Component) -> processes.ProcessId | None:
        """The live process the stack started for `component`, if any (for signalling it, or reading its /proc)."""
        return self._pid_file(component).live_process()

    @contextlib.contextmanager
    def _exclusive(self, component: Component) -> Iterator[None]:
        """One start or stop of a component at a time (say `make up` and a test session at once): two could start it
        twice. Per component, so that a slow start of one does not hold up the others."""
        self.config.pids_dir.mkdir(parents=True, exist_ok=True)
        with (self.config.pids_dir / f"{component.name}.lock").open("w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield

    def up(self, components: list[Component]) -> list[str]:
        """Start each component that is not running and wait until it is ready; returns the names started now."""
        started = []
        for component in components:
            with self._exclusive(component):
                if not self._adopt_running(component):
                    self._start(component)
                    started.append(component.name)
                if component.after_ready:
                    component.after_ready()
        return started

    def _adopt_running(self, component: Component) -> bool:
        """True if the component already runs (ours, or an outside copy on its port): it is left alone."""
        process = self._pid_file(component).live_process()
        if process is not None:
            log.info("%s already running (pid %d)", component.name, process.pid)
            self._wait_ready(component, process, since_offset=0)
        elif probes.port_open(component.port):
            if not component.ready():
                raise StackError(
                    f"port {component.port} is taken by a process the stack did not start, "
                    f"and it does not answer as {component.name}"
                )
            log.info("%s is served on port %d by a process the stack did not start; leaving it",
                     component.name, component.port)
        else:
            return False
        return True

    def _start(self, component: Component) -> None:
        if shutil.which(component.command[0]) is None:
            raise StackError(
                f"{component.name}: {component.command[0]} not found; run `python -m classpulse_devstack install`"
            )
        if component.prepare:
            component.prepare()
        log_path = self.log_path(component)
        since_offset = log_path.stat().st_size if log_path.exists() else 0
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **component.env}
        process = processes.spawn_detached(component.command, cwd=self.config.repo_root, env=env, log_path=log_path)
        self._pid_file(component).write(process)
        log.info("%s started (pid %d), waiting until ready (up to %.0f s)", component.name, process.pid,
                 component.start_timeout_s)
        try:
            self._wait_ready(component, process, since_offset)
        except StackError:
            # A half-started component would be "already running" to the next `up`; stop it so a retry starts clean.
            self._stop(component, process)
            raise

    def _wait_ready(self, component: Component, process: processes.ProcessId, since_offset: int) -> None:
        started_at = time.monotonic()
        deadline = started_at + component.start_timeout_s
        while not component.ready():
            if not processes.is_alive(process):
                self._fail(component, "exited before it was ready", since_offset)
            if time.monotonic() >= deadline:
                self._fail(component, f"not ready after {component.start_timeout_s:.0f} s", since_offset)
            time.sleep(READY_POLL_S)
        log.info("%s ready after %.1f s", component.name, time.monotonic() - started_at)

    def _fail(self, component: Component, reason: str, since_offset: int) -> None:
        log_path = self.log_path(component)
        tail = processes.tail(log_path, since_offset=since_offset)
        raise StackError(f"{component.name} {reason}. Last lines of {log_path}:\n{tail}")

    def down(self, components: list[Component]) -> list[str]:
        """Stop, in reverse start order, each selected component the stack started; returns the names stopped."""
        stopped = []
        for component in reversed(components):
            with self._exclusive(component):
                process = self._pid_file(component).live_process()
                if process is not None:
                    self._stop(component, process)
                    stopped.append(component.name)
                elif probes.port_open(component.port):
                    log.info("%s on port %d was not started by the stack; leaving it", component.name, component.port)
        return stopped

    def _stop(self, component: Component, process: processes.ProcessId) -> None:
        log.info("stopping %s (pid %d)", component.name, process.pid)
        clean = processes.stop(process, timeout_s=component.stop_timeout_s)
        self._pid_file(component).remove()
        if not clean:
            log.warning("%s did not exit within %.0f s of SIGTERM and was killed", component.name,
                        component.stop_timeout_s)

    def status(self, components: list[Component]) -> list[ComponentStatus]:
        return [self._status_of(component) for component in components]

    def _status_of(self, component: Component) -> ComponentStatus:
        process = self._pid_file(component).live_process()
        if process is not None:
            state = "ready" if component.ready() else "not ready"
        elif probes.port_open(component.port):
            state = "external"
        else:
            state = "stopped"
        return ComponentStatus(
            name=component.name,
            pid=process.pid if process else None,
            state=state,
            address=component.address,
            log_path=self.log_path(component),
        )
