"""The only way FFmpeg reaches a stream: through a proxy of ingest's own, on 127.0.0.1, that connects only to
addresses it has checked (an RTSP(S) camera through its relay: rtsp_relay.py).

FFmpeg resolves a URL's host name itself, and opens by itself what a stream points to: an HTTP redirect, an HLS
playlist's segments, on any host. Given this proxy (its `http_proxy` option, which it passes on to TLS's CONNECT and
which the HLS demuxer passes on to every segment and playlist it opens), FFmpeg asks it for each of those connections:
the proxy judges the destination as the source's own URL was (the same networks and schemes,
classpulse_web.destinations) and connects to an address it resolved and checked (of several, the first to take a
connection: classpulse_web.happy_eyeballs), never to the name resolved once more; anything else gets a 403, is counted
(`classpulse_ingest_stream_egress_refused_total`) and logged, and no byte goes to it. A plain-HTTP request is forwarded
alone, with `Connection: close` both ways, and the connection from FFmpeg ends with its answer: a connection kept alive
cannot go on to another host unchecked. A CONNECT tunnel is one host's. FFmpeg reads an HLS playlist over HTTPS from the
proxy itself, at a URL of the proxy's own (hls_relay.py): the proxy fetches it, and each URI it names, checked as it is
asked for, and FFmpeg needs no protocol but plain HTTP. FFmpeg reads an RTSP(S) camera at ports of the proxy's RTSP
relay, one for the camera and one for each target of its redirects, each of whose connections is one the proxy makes
to a checked address (rtsp_relay.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from prometheus_client import Counter

from classpulse_ingest.destinations import DEFAULT_PORTS, NETWORKS_SETTING
from classpulse_ingest.hls_relay import HlsRelay, HlsSession, RelayFailed
from classpulse_ingest.piping import HEAD_LIMIT_BYTES, ConnectionTasks, copy, read_head, until_first_ends
from classpulse_ingest.rtsp_relay import RelayedCamera, RtspRelay
from classpulse_web.destinations import DestinationRefused, Network, allowed_addresses, checked_location, redact
from classpulse_web.happy_eyeballs import first_connected, interleaved

log = logging.getLogger(__name__)

EGRESS_REFUSED = Counter(
    "classpulse_ingest_stream_egress_refused_total",
    "Connections FFmpeg asked the stream egress proxy for and it refused (a redirect, a segment, a name outside the "
    "allowed networks or schemes; bad_request: not a proxy request)",
    ["cause"],
)

LOOK_MARGIN_S = 2.0  # past the connect timeout that bounds the playlist look: a source's thread never waits longer
HEAD_TIMEOUT_S = 10.0  # FFmpeg writes its request at once: a connection that does not is not FFmpeg's
# Headers of one connection (RFC 9110, 7.6.1), replaced by the proxy's own `Connection: close`.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"upgrade"})


class StreamEgressProxy:
    """A forward proxy (CONNECT for https, absolute-form GET and HEAD for http) on an ephemeral port of 127.0.0.1,
    served by an asyncio loop on a thread of its own, with its HLS relay (`relay`) at its own URL and its RTSP relay
    (`rtsp`) at ports of its own; `close()` ends every connection through them."""

    def __init__(
        self, allowed_networks: Iterable[Network], allowed_schemes: Iterable[str], connect_timeout_s: float, verify_rtsps: bool = False
    ) -> None:
        """`verify_rtsps`: an rtsps camera's certificate verified as an HTTPS stream's is (rtsp_relay.py)."""
        self.networks = list(allowed_networks)
        self.schemes = list(allowed_schemes)
        self.connect_timeout_s = connect_timeout_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stream-egress-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections = ConnectionTasks()
        self.relay = HlsRelay(self)
        self.rtsp = RtspRelay(self, verify_rtsps)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StreamEgressProxy:
        self._thread.start()
        listening = asyncio.start_server(self._serve, "127.0.0.1", 0, limit=HEAD_LIMIT_BYTES)
        self._server = asyncio.run_coroutine_threadsafe(listening, self._loop).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop_serving(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def camera(self, location: str) -> RelayedCamera:
        """The RTSP relay's ports for one open of the camera at `location` (rtsp_relay.py), until their `close()`."""
        return asyncio.run_coroutine_threadsafe(self.rtsp.camera(location), self._loop).result()

    def serves_a_playlist(self, location: str) -> bool:
        """Whether the HTTP(S) stream at `location` is an HLS playlist, by its name or its answer (hls_relay.py);
        TimeoutError or OSError as there, or if the proxy closes meanwhile."""
        looking = asyncio.run_coroutine_threadsafe(self.relay.serves_a_playlist(location), self._loop)
        try:
            return looking.result(timeout=self.connect_timeout_s + LOOK_MARGIN_S)
        except concurrent.futures.CancelledError:
            raise ConnectionAbortedError("the stream egress proxy closed") from None

    async def _stop_serving(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.rtsp.close()
        await self._connections.close()
        # What else runs on the loop (a playlist look for a source still opening) ends with it, its caller answered.
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        async with self._connections.serving(to_client):
            try:
                await self._forward(client, to_client)
            except (OSError, EOFError, ValueError, TimeoutError, asyncio.LimitOverrunError):
                pass  # either side went away or spoke no HTTP: nothing to answer

    async def _forward(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(HEAD_TIMEOUT_S):
            head = await client.readuntil(b"\r\n\r\n")
        request_line, *headers = head[:-4].split(b"\r\n")
        method, target, _version = request_line.decode("latin-1").split(" ")
        if method == "GET" and (relayed := self.relay.request_of(target)) is not None:
            await until_first_ends(_ignored(client), self._relayed(*relayed, headers, to_client))
            return
        if method == "CONNECT":
            url = f"https://{target}"
        elif method in ("GET", "HEAD") and target.startswith("http://"):
            url = target
        else:
            EGRESS_REFUSED.labels("bad_request").inc()
            await _answer(to_client, b"400 Bad Request")
            return
        try:
            upstream, to_upstream = await self.open_checked(url, self.schemes)
        except DestinationRefused:
            await _answer(to_client, b"403 Forbidden")
            return
        except (OSError, TimeoutError):
            await _answer(to_client, b"502 Bad Gateway")
            return
        try:
            if method == "CONNECT":
                to_client.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await until_first_ends(copy(client, to_upstream), copy(upstream, to_client))
            else:
                parts = urlsplit(target)
                origin_form = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                to_upstream.write(f"{method} {origin_form} HTTP/1.1\r\n".encode("latin-1") + _closing(headers))
                await until_first_ends(_ignored(client), _answer_closing(upstream, to_client))
        finally:
            to_upstream.close()

    async def open_checked(self, url: str, schemes: Iterable[str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the first of the checked addresses of `url`'s host to take one within the connect timeout,
        as a client connecting to the name would. DestinationRefused, counted and logged, if `url` may not be reached
        (`schemes`: those it may have); TimeoutError or the last address's OSError if no address takes a connection."""
        try:
            host, port = checked_location(url, schemes, "stream")
            port = port or DEFAULT_PORTS[urlsplit(url).scheme]
            addresses = await asyncio.to_thread(allowed_addresses, host, port, self.networks, "stream", NETWORKS_SETTING, redact(url))
        except DestinationRefused as refusal:
            EGRESS_REFUSED.labels(refusal.cause).inc()
            log.warning("a stream's connection refused", extra={"reason": str(refusal), "cause": refusal.cause})
            raise
        _address, reader, writer = await first_opened(addresses, port, self.connect_timeout_s)
        return reader, writer

    async def _relayed(self, session: HlsSession | None, url: str, headers: list[bytes], to_client: asyncio.StreamWriter) -> None:
        """The HLS relay's answer for the upstream `url` in `session`, or the status it answers instead."""
        try:
            async with self.relay.answer(session, url, headers) as relayed:
                to_client.write(relayed.start)
                if relayed.rest is not None:
                    await copy(relayed.rest, to_client)
                await to_client.drain()
        except RelayFailed as failed:  # raised before anything was answered
            await _answer(to_client, failed.status)


async def first_opened(addresses: list[str], port: int, timeout_s: float) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """The first of `addresses` to take a TCP connection on `port` (classpulse_web.happy_eyeballs), with it."""

    async def opened(address: str) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        return (address, *await asyncio.open_connection(address, port))

    async def close(connection: tuple[str, asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        connection[2].close()

    return await first_connected([functools.partial(opened, address) for address in interleaved(addresses)], timeout_s, close)


def _closing(headers: list[bytes]) -> bytes:
    """The header block with this connection's own headers replaced by `Connection: close`."""
    kept = [line for line in headers if line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP]
    return b"".join(line + b"\r\n" for line in [*kept, b"Connection: close"]) + b"\r\n"


async def _answer(to_client: asyncio.StreamWriter, status: bytes) -> None:
    to_client.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await to_client.drain()


async def _answer_closing(upstream: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
    """The upstream's answer with `Connection: close`, so that FFmpeg opens a new connection for its next request; its
    head's lines ended with \\r\\n whatever ended them upstream (FFmpeg reads a bare \\n too)."""
    status_line, *headers = await read_head(upstream, HEAD_LIMIT_BYTES)
    to_client.write(status_line + b"\r\n" + _closing(headers))
    await copy(upstream, to_client)


async def _ignored(client: asyncio.StreamReader) -> None:
    """Until the client closes: what it sends after its request (a second one, on a connection it meant to keep) goes
    nowhere; it learns from `Connection: close` to send that on a new connection."""
    while await client.read(64 * 1024):
        pass
