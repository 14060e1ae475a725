"""What the egress proxy (egress.py) and its relays (hls_relay.py, rtsp_relay.py) share: what a relay needs of the
proxy, and bytes passed between two asyncio connections, as each connection FFmpeg makes through them is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any, Protocol, cast

HEAD_LIMIT_BYTES = 64 * 1024
"""Of a request's or answer's head, and of each of its lines (an HTTP or RTSP head is some hundred bytes)."""


class CheckedEgress(Protocol):
    """What a relay needs of the egress proxy it serves in (egress.StreamEgressProxy)."""

    schemes: list[str]
    connect_timeout_s: float

    @property
    def url(self) -> str: ...

    async def open_checked(
        self, url: str, schemes: Iterable[str]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...


class ConnectionTasks:
    """The connections a stream server serves (each its callback's task), to end them all when it closes: the server's
    own close (Python 3.11) leaves them running."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def serving(self, to_client: asyncio.StreamWriter) -> AsyncIterator[None]:
        """Around a connection's callback: the connection is ended by `close()` as well as by itself, and closed after."""
        task = cast("asyncio.Task[Any]", asyncio.current_task())
        self._tasks.add(task)
        try:
            yield
        except asyncio.CancelledError:
            pass  # ended by close(): over, not failed (asyncio's stream server logs a connection task's error)
        finally:
            self._tasks.discard(task)
            to_client.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def read_head(source: asyncio.StreamReader, limit: int) -> list[bytes]:
    """An HTTP head's lines as FFmpeg's HTTP client reads them (http_get_line): a line ends at \\n, one \\r before it
    dropped, and the head at an empty line (a server's bare \\n line ends, which FFmpeg reads, as well). ValueError
    past `limit` bytes; asyncio.IncompleteReadError if the source ends first."""
    lines: list[bytes] = []
    size = 0
    while line := (await source.readuntil(b"\n"))[:-1].removesuffix(b"\r"):
        size += len(line)
        if size > limit:
            raise ValueError("a head past the limit")
        lines.append(line)
    return lines


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


def stream_tls(verified: bool) -> ssl.SSLContext:
    """TLS to a stream's host: `verified` against its name and the authorities of SSL_CERT_FILE where it is set (as
    the API's webhooks honour it, through httpx), the system's otherwise; or encrypted alone, as FFmpeg's own TLS is
    (`tls_verify` 0), for the certificates cameras make themselves."""
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
    if not verified:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
