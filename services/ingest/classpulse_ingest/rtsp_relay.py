"""RTSP(S) cameras read by FFmpeg through a relay of the egress proxy's (egress.py): FFmpeg connects to 127.0.0.1 alone.

Given a camera's address, FFmpeg would still follow the camera's redirect by itself (a 3xx answer to OPTIONS,
DESCRIBE or SETUP: it connects to the host the Location names, resolving the name itself), and over UDP it sends to
ports the camera names. So FFmpeg reads a camera at a URL of the relay's (`RelayedCamera.url`: rtsp://[the camera
URL's credentials@]127.0.0.1:<a port of the relay's own for this camera>/<its path and query>), with RTP interleaved
on the RTSP connection (FFmpeg's `rtsp_transport tcp`: no UDP at all). Each connection FFmpeg makes there is relayed
to a connection the proxy made to an address it checked (`open_checked`: the allowed networks and schemes; of a host's
addresses, the first to take a connection), over TLS done by the relay for rtsps. What FFmpeg sends goes to the camera
as it is. What the camera sends is read as FFmpeg reads it (libavformat/rtsp.c: a line ends at \\n and every \\r is
dropped; a `$` at a line's start begins an interleaved packet of the length its next 3 bytes give; a head ends at an
empty line and is followed by its last Content-Length of body) and passed on as it comes, but for the heads' Location
lines: a head's Location lines become one, pointing at the relay URL of the last one's target, a port of this
camera's relay too (at most MAX_REDIRECTS of them), whose connections are checked as the camera's own. So a redirect
leads FFmpeg back to the relay alone, and one to a host outside the networks ends at its refusal.

rtsps is encrypted to the camera, not authenticated, as FFmpeg's own TLS did it (`tls_verify` off by default): cameras
serve certificates of their own making. Where a school's cameras have certificates of an authority it trusts, the
relay verifies them as the HLS relay verifies a stream's (CLASSPULSE_RTSPS_VERIFY_CERTIFICATES: the host name, against
SSL_CERT_FILE's authorities or the system's), and a camera whose certificate does not verify gets no request. The
camera sees the relay's URLs in FFmpeg's requests, as it saw a checked address there before; FFmpeg computes Digest
authentication over the URL it sends, so that still verifies. What the relay costs: about 19 ms of CPU a MB passed
on, its reader included (20,000 interleaved packets of 1,400 bytes through it on 127.0.0.1; a 2-core Intel Xeon,
2026-12-07): 1% of a core for a 4 Mbit/s camera, whose decoding by FFmpeg costs far more.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from prometheus_client import Counter

from classpulse_ingest.piping import (
    HEAD_LIMIT_BYTES,
    CheckedEgress,
    ConnectionTasks,
    copy,
    stream_tls,
    until_first_ends,
)
from classpulse_web.destinations import DestinationRefused, redact

log = logging.getLogger(__name__)

RTSP_SCHEMES = ("rtsp", "rtsps")
MAX_REDIRECTS = 5  # FFmpeg follows as many as a camera gives; a real one gives one, a load balancer two
BODY_LIMIT_BYTES = 1024 * 1024  # a DESCRIBE's session description is a few kB
_SPACES = b" \t\n\v\f\r"  # C's isspace, which strtol skips

RTSP_RELAYED = Counter(
    "classpulse_ingest_stream_rtsp_relay_connections_total",
    "Connections FFmpeg made to the RTSP relay of the stream egress proxy, by outcome (relayed: to a checked address of "
    "the camera; refused: a camera or redirect outside the allowed networks or schemes, or past the redirects allowed; "
    "unreachable, tls_failed: no connection to the camera; bad_answer: the camera sent a line or head past the limits)",
    ["outcome"],
)
RTSP_REDIRECTS = Counter(
    "classpulse_ingest_stream_rtsp_relay_redirects_total",
    "Redirects RTSP cameras answered, pointed at the relay URL of their target",
)


class RelayRefused(Exception):
    """The camera's connection ends here, counted as `outcome`."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class RelayedCamera:
    """One open of a camera: the relay's ports for it and for the targets of its redirects, until `close()`."""

    def __init__(self, relay: RtspRelay, loop: asyncio.AbstractEventLoop) -> None:
        self.relay = relay
        self.url = ""  # the relay URL FFmpeg opens for the camera (RtspRelay.camera)
        self._loop = loop
        self._servers: list[asyncio.Server] = []
        self._connections = ConnectionTasks()

    async def listen(self, upstream: str) -> str:
        """The relay URL at which FFmpeg reaches `upstream` (its credentials, path and query kept) through a port of
        this camera's."""
        serving = functools.partial(self._serve, upstream)
        server = await asyncio.start_server(serving, "127.0.0.1", 0, limit=HEAD_LIMIT_BYTES)
        self._servers.append(server)
        parts = urlsplit(upstream)
        credentials, at, _host = parts.netloc.rpartition("@")
        port = server.sockets[0].getsockname()[1]
        return parts._replace(scheme="rtsp", netloc=f"{credentials}{at}127.0.0.1:{port}").geturl()

    def close(self) -> None:
        if self._loop.is_running():  # else the proxy has closed, and every camera with it
            asyncio.run_coroutine_threadsafe(self.closed(), self._loop).result()

    async def closed(self) -> None:
        for server in self._servers:
            server.close()
        await self._connections.close()
        self.relay.cameras.discard(self)

    async def _serve(self, upstream: str, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        async with self._connections.serving(to_client):
            await self._relayed(upstream, client, to_client)

    async def _relayed(self, upstream: str, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            camera, to_camera = await self.relay.connect(upstream)
        except RelayRefused as refused:
            RTSP_RELAYED.labels(refused.outcome).inc()
            return
        RTSP_RELAYED.labels("relayed").inc()
        try:
            await until_first_ends(copy(client, to_camera), self._answers(upstream, camera, to_client))
        finally:
            to_camera.close()

    async def _answers(self, upstream: str, camera: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        """What the camera sends, to FFmpeg, each head's Location pointed at the relay; ends (and so does the
        connection) at the camera's end or at a refused redirect or an answer past the limits, counted."""
        try:
            async for part in _answer_parts(camera):
                if isinstance(part, _Head):
                    part = await self._relayed_head(upstream, part)
                to_client.write(part.data if isinstance(part, _Passed) else part.encoded())
                await to_client.drain()
        except RelayRefused as refused:
            RTSP_RELAYED.labels(refused.outcome).inc()
        except (ValueError, asyncio.LimitOverrunError):
            RTSP_RELAYED.labels("bad_answer").inc()
        except asyncio.IncompleteReadError:
            pass  # the camera closed the connection within a line or packet: FFmpeg's read ends there too

    async def _relayed_head(self, upstream: str, head: _Head) -> _Head:
        location = head.location()
        if location is None:
            return head
        if not _is_camera_url(location, self.relay.schemes):
            refusal = "not a camera URL of the allowed schemes"
        elif len(self._servers) > MAX_REDIRECTS:
            refusal = f"more than {MAX_REDIRECTS} redirects"
        else:
            refusal = None
        if refusal is not None:
            log.warning("an RTSP camera's redirect refused", extra={"location": redact(upstream), "reason": refusal})
            raise RelayRefused("refused")
        target = await self.listen(location)
        RTSP_REDIRECTS.inc()
        log.info("an RTSP camera redirected", extra={"location": redact(upstream), "target": redact(location)})
        return head.with_location(target)


def _is_camera_url(url: str, schemes: list[str]) -> bool:
    """Whether `url` could be a camera's: of one of `schemes`, with a host and a port that can be connected to (its
    host is checked when FFmpeg connects)."""
    try:
        parts = urlsplit(url)
        return parts.scheme in schemes and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:
        return False


class RtspRelay:
    """The RTSP relay of one egress proxy (`proxy`), serving on its event loop."""

    def __init__(self, proxy: CheckedEgress, verify: bool = False) -> None:
        self.proxy = proxy
        self.schemes = [scheme for scheme in proxy.schemes if scheme in RTSP_SCHEMES]
        # Unless `verify`: encrypted, not authenticated, as FFmpeg's TLS was, for cameras' own certificates.
        self.tls = stream_tls(verified=verify)
        self.cameras: set[RelayedCamera] = set()

    async def camera(self, location: str) -> RelayedCamera:
        """A relay for one open of the camera at `location` (checked as each connection to it is made)."""
        camera = RelayedCamera(self, asyncio.get_running_loop())
        camera.url = await camera.listen(location)
        self.cameras.add(camera)
        return camera

    async def close(self) -> None:
        await asyncio.gather(*(camera.closed() for camera in list(self.cameras)))

    async def connect(self, upstream: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to `upstream`'s host at an address checked now, TLS for rtsps; RelayRefused if it may not be
        reached (the proxy counts and logs it), no address takes a connection or TLS fails."""
        try:
            camera, to_camera = await self.proxy.open_checked(upstream, self.schemes)
        except DestinationRefused:
            raise RelayRefused("refused") from None
        except (OSError, TimeoutError):
            raise RelayRefused("unreachable") from None
        parts = urlsplit(upstream)
        if parts.scheme == "rtsps":
            try:
                await to_camera.start_tls(
                    self.tls, server_hostname=parts.hostname, ssl_handshake_timeout=self.proxy.connect_timeout_s
                )
            except (OSError, TimeoutError):
                to_camera.close()
                raise RelayRefused("tls_failed") from None
        return camera, to_camera


class _Passed:
    """Bytes passed on as they came: an interleaved packet, a body."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Head:
    """A head's lines as FFmpeg reads them (no \\r, no \\n), the first its status (or request) line."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def _headers(self, name: bytes) -> list[bytes]:
        """The values of the header lines that FFmpeg takes for `name` (av_stristart: the name and its colon at the
        line's start, in any case), in order."""
        return [line[len(name) :] for line in self.lines[1:] if line[: len(name)].lower() == name]

    def location(self) -> str | None:
        values = self._headers(b"location:")
        return values[-1].strip(_SPACES).decode("latin-1") if values else None

    def with_location(self, url: str) -> _Head:
        kept = [line for line in self.lines[1:] if line[:9].lower() != b"location:"]
        return _Head([self.lines[0], *kept, b"Location: " + url.encode("ascii")])

    def content_length(self) -> int:
        """As FFmpeg reads it: the last Content-Length, by strtol (leading spaces, a sign, the digits up to the
        first other character; none: 0)."""
        values = self._headers(b"content-length:")
        if not values:
            return 0
        text = values[-1].lstrip(_SPACES)
        sign = -1 if text[:1] == b"-" else 1
        text = text[1:] if text[:1] in (b"-", b"+") else text
        digits = len(text) - len(text.lstrip(b"0123456789"))
        return sign * int(text[:digits] or b"0")

    def encoded(self) -> bytes:
        return b"".join(line + b"\r\n" for line in self.lines) + b"\r\n"


async def _answer_parts(camera: asyncio.StreamReader) -> AsyncIterator[_Passed | _Head]:
    """The camera's bytes as FFmpeg's RTSP client reads them: interleaved packets and bodies as they come, each head
    whole; ValueError past the limits. A packet that begins among a head's lines is passed on before the head (FFmpeg
    reads it and goes on with the head all the same)."""
    lines: list[bytes] = []
    size = 0
    while True:
        first = await camera.read(1)
        while first == b"\r":  # FFmpeg drops every \r: a `$` after some still begins a packet
            first = await camera.read(1)
        if not first:
            return
        if first == b"$":
            header = await camera.readexactly(3)
            yield _Passed(first + header + await camera.readexactly(int.from_bytes(header[1:], "big")))
            continue
        line = first if first == b"\n" else first + await camera.readuntil(b"\n")
        line = line[:-1].replace(b"\r", b"")
        size += len(line)
        if size > HEAD_LIMIT_BYTES:
            raise ValueError("an RTSP head past the limit")
        if line:
            lines.append(line)
            continue
        head = _Head(lines)
        lines, size = [], 0
        if (length := head.content_length()) > BODY_LIMIT_BYTES:
            raise ValueError("an RTSP body past the limit")
        yield head
        if length > 0:
            yield _Passed(await camera.readexactly(length))
