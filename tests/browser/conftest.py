"""Browser tests drive Debian's headless Chromium (`python -m classpulse_devstack install` installs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdp import CHROMIUM, STUDENT_SNAPSHOT_INTERVAL_S, Chromium
from free_ports import free_port
from local_servers import wait_until_up

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    """A fresh headless Chromium (its own profile) with one page of 1280x900, like a laptop's browser window."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (python -m classpulse_devstack install)")
    browser = Chromium(tmp_path / "chromium-profile")
    yield browser
    browser.close()


@pytest.fixture
def ingest_service(request, infra, topic_factory, tmp_path) -> Iterator[tuple[str, str]]:
    """`python -m classpulse_ingest serve` on a free port, its frames going to a topic of this test's own; the student
    page's interval in seconds is the fixture's parameter (indirect), else STUDENT_SNAPSHOT_INTERVAL_S."""
    topic = topic_factory(3)
    port = free_port()
    env = {
        **os.environ,
        "CLASSPULSE_HTTP_PORT": str(port),
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": infra.config.kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": topic,
        "CLASSPULSE_REDIS_URL": f"redis://127.0.0.1:{infra.config.redis_port}/0",
        "CLASSPULSE_STUDENT_SNAPSHOT_INTERVAL_S": str(getattr(request, "param", STUDENT_SNAPSHOT_INTERVAL_S)),
    }
    log = (tmp_path / "ingest.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "classpulse_ingest", "serve"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/readyz", process, tmp_path / "ingest.log")
        yield base, topic
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
