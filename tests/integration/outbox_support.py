"""Running the integrations' delivery worker in the test's own process (test_dispatcher_fan_out.py, test_xapi.py)."""

from __future__ import annotations

import asyncio
import time

from classpulse_api.dispatcher import Dispatcher
from classpulse_api.outbox import QUEUE


async def deliver_queued(dispatcher: Dispatcher, timeout_s: float = 20.0) -> None:
    """Runs the worker until its queue is empty: each message sent, dropped, dead-lettered or scheduled for a retry."""
    stop = asyncio.Event()
    worker = asyncio.create_task(dispatcher.run(stop))
    try:
        deadline = time.monotonic() + timeout_s
        while await dispatcher.client.xlen(QUEUE):
            assert time.monotonic() < deadline, f"the outbox's queue not emptied within {timeout_s:.0f} s"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
