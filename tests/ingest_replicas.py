"""Several real ingest processes (`python -m classpulse_ingest`) sharing one Kafka and one Redis, as the replicas of
a deployment: started, asked over HTTP with an admin key, killed or stopped, and a recording's frames checked against
what one uninterrupted reader takes from it. Shared by the integration and end-to-end tests of source leases."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from classpulse_core.schemas import Frame
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.video import SourceSpec, open_reader
from classpulse_web.auth import Role
from classpulse_web.keystore import KeyStore
from free_ports import free_port


@dataclass
class Replica:
    process: subprocess.Popen
    url: str
    log: Path
    admin_key: str

    @property
    def owner_suffix(self) -> str:
        """The end of the `owner` a source's status names while this process runs it (host name/process id)."""
        return f"/{self.process.pid}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self._auth, timeout=10)

    def start_source(self, class_id: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/classes/{class_id}/sources", json=body, headers=self._auth, timeout=10)

    def stop_source(self, source_id: str) -> httpx.Response:
        return httpx.delete(f"{self.url}/v1/sources/{source_id}", headers=self._auth, timeout=30)

    def poll(self, source_id: str, done: Callable[[dict], bool], timeout_s: float) -> dict:
        """The source's status once `done` says so, or the last one read after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.get(f"/v1/sources/{source_id}").json()
            if done(status) or time.monotonic() > deadline:
                return status
            time.sleep(0.25)

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


def install_admin_key(redis_url: str, admin_key: str) -> None:
    async def install() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await KeyStore(client).install(admin_key, Role.ADMIN, "ingest replicas test admin")
        await client.aclose()

    asyncio.run(install())


@contextmanager
def running_replicas(count: int, env: dict[str, str], logs: Path, admin_key: str) -> Iterator[list[Replica]]:
    """`count` ingest processes with `env` (Kafka, Redis, media dir...) on free ports, ready; stopped afterwards."""
    started: list[Replica] = []
    try:
        for number in range(count):
            port = free_port()
            log = logs / f"ingest-{number}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "classpulse_ingest"],
                    env={**os.environ, **env, "CLASSPULSE_HTTP_PORT": str(port)},
                    stdout=out,
                    stderr=out,
                )
            started.append(Replica(process, f"http://127.0.0.1:{port}", log, admin_key))
        for replica in started:
            _wait_ready(replica)
        yield started
    finally:
        for replica in started:
            if replica.alive:
                replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            try:
                replica.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.process.kill()


def uninterrupted_captures(video: Path, fps: float, started_at_ms: int) -> list[int]:
    """The capture time of each frame one reader takes from the recording, read at once from start to end."""
    reader = open_reader(SourceSpec(str(video)), IngestSettings())
    try:
        return [int(started_at_ms + raw.position_ms) for raw in reader.frames(fps, 0.0)]
    finally:
        reader.release()


def assert_each_frame_once(frames: list[Frame], expected_captures: list[int]) -> None:
    """Every frame of the recording, each under one number and one capture time (what the aggregator's dedup keys
    on): frames sent again after a takeover are the same frames, counted once; and only a few were sent again."""
    by_sequence: dict[int, set[int]] = {}
    for frame in frames:
        by_sequence.setdefault(frame.sequence, set()).add(frame.captured_at_ms)
    assert sorted(by_sequence) == list(range(len(expected_captures))), (len(expected_captures), sorted(by_sequence))
    assert by_sequence == {number: {captured} for number, captured in enumerate(expected_captures)}
    assert len(frames) - len(expected_captures) < 20, f"{len(frames)} frames sent for {len(expected_captures)}"


def _wait_ready(replica: Replica) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert replica.alive, replica.log.read_text()[-3000:]
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"ingest not ready in 90 s: {replica.log.read_text()[-3000:]}")
