"""What the egress proxy (egress.py) and its relays (hls_relay.py, rtsp_relay.py) share: what a relay needs of the
proxy, and bytes passed between two asyncio connections, as each connection FFmpeg makes through them is."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol


class CheckedEgress(Protocol):
    """What a relay needs of the egress proxy it serves in (egress.StreamEgressProxy)."""

    schemes: list[str]
    connect_timeout_s: float

    @property
    def url(self) -> str: ...

    async def open_checked(
        self, url: str, schemes: Iterable[str]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...


async def copy(source: asyncio.StreamReader, destination: asyncio.StreamWriter) -> None:
    """Until `source` ends."""
    while chunk := await source.read(64 * 1024):
        destination.write(chunk)
        await destination.drain()


async def until_first_ends(*directions: Coroutine[Any, Any, Any]) -> None:
    """Until the first of `directions` ends: then the connection is over both ways."""
    tasks = [asyncio.create_task(direction) for direction in directions]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
