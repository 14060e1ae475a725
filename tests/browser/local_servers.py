"""The servers browser tests start of their own: a free port, and the wait until one answers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    """Until `url` answers 200; the server's log in the failure when it exits or takes longer than `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{url} does not answer after {timeout_s:.0f} s: {log.read_text()}"
        time.sleep(0.3)
