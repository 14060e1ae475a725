"""A minimal RTSP server for tests: one live Motion-JPEG track (RTP payload type 26, RFC 2435) over TCP.

Debian 12's RTSP servers are GStreamer's library (scripted through the system Python's gi, not this project's
Python) and a Perl relay that needs a publisher such as ffmpeg; rather than install either for one test, this one
speaks just enough RTSP (OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN) for FFmpeg's client, the one OpenCV uses, and
sends RTP interleaved on the RTSP connection ('$' framing; OpenCV asks for TCP). Each frame is a baseline JPEG from OpenCV whose scan data
is split into RTP packets, with its quantisation tables in-band (Q=255) in the first packet; timestamps are the
90 kHz RTP clock at the configured rate, so the client sees the stream's own timing.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

import numpy as np

from ingest_support import jpeg, numbered_image

RTP_JPEG = 26
DIGEST_REALM = "classpulse camera"
DIGEST_NONCE = "5150c0ffee"
RTP_CLOCK_HZ = 90_000
MAX_PAYLOAD = 1400


def jpeg_for_rtp(data: bytes) -> tuple[bytes, int, int, bytes]:
    """(the two quantisation tables, width, height, entropy-coded scan) of a baseline 4:2:0 JPEG."""
    offset, tables, width, height = 2, {}, 0, 0
    while offset < len(data):
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        segment = data[offset + 4 : offset + 2 + length]
        if marker == 0xDB:  # one or more 64-byte 8-bit tables, each after a precision/id byte
            for start in range(0, len(segment), 65):
                tables[segment[start] & 0x0F] = segment[start + 1 : start + 65]
        elif marker == 0xC0:
            height, width = struct.unpack(">HH", segment[1:5])
        elif marker == 0xDA:
            scan = data[offset + 2 + length :]
            return tables[0] + tables[1], width, height, scan[: scan.rfind(b"\xff\xd9")]
        offset += 2 + length
    raise ValueError("no start of scan in the JPEG")


class RtspServer:
    """On `host` (and `port`, any by default); `connections` are those it accepted. `tls`: an RTSPS server's context;
    `redirect_to`: the Location it answers DESCRIBE with, in a 302, instead of the stream; `credentials`: the user and
    password it asks of every request but OPTIONS by Digest authentication (RFC 2617, as cameras do), checking that the
    digest's URI is the request's; `authorized` lists the requests it let through."""

    def __init__(
        self,
        fps: float = 10.0,
        frame: Callable[[int], np.ndarray] = numbered_image,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        redirect_to: str | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.fps = fps
        self.frame = frame
        self.host = host
        self.tls = tls
        self.redirect_to = redirect_to
        self.credentials = credentials
        self.authorized: list[str] = []
        self._listener = socket.create_server((host, port))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'rtsps' if self.tls else 'rtsp'}://{self.host}:{self.port}/live"

    def stop(self) -> None:
        """Stops serving: a server on the same port may start at once (a camera coming back)."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: closed alone, it would listen on
        self._listener.close()
        for connection in self.connections:
            connection.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._session, args=(connection,), daemon=True).start()

    def _session(self, connection: socket.socket) -> None:
        if self.tls is not None:
            try:
                connection.settimeout(10)
                connection = self.tls.wrap_socket(connection, server_side=True)
                connection.settimeout(None)
            except OSError:
                return
        self._requests(connection)

    def _requests(self, connection: socket.socket) -> None:
        pending = b""
        with connection:
            while not self._stopped.is_set():
                while b"\r\n\r\n" not in pending:
                    try:
                        data = connection.recv(4096)
                    except OSError:
                        return
                    if not data:
                        return
                    pending += data
                head, pending = pending.split(b"\r\n\r\n", 1)
                request_line, *header_lines = head.decode().split("\r\n")
                method, url, _ = request_line.split(" ")
                headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
                status, extra, body = self._answer(method, url, headers)
                try:
                    connection.sendall(
                        f"RTSP/1.0 {status}\r\nCSeq: {headers['cseq']}\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}".encode()
                    )
                except OSError:
                    return  # stopped meanwhile
                if method == "PLAY":
                    threading.Thread(target=self._play, args=(connection,), daemon=True).start()
                elif method == "TEARDOWN":
                    return

    def _answer(self, method: str, url: str, headers: dict[str, str]) -> tuple[str, str, str]:
        session = "Session: 5150;timeout=60\r\n"
        if method == "OPTIONS":
            return "200 OK", "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n", ""
        if self.credentials is not None:
            if not self._digest_matches(method, url, headers.get("authorization", "")):
                return "401 Unauthorized", f'WWW-Authenticate: Digest realm="{DIGEST_REALM}", nonce="{DIGEST_NONCE}"\r\n', ""
            self.authorized.append(f"{method} {url}")
        if method == "DESCRIBE" and self.redirect_to is not None:
            return "302 Moved Temporarily", f"Location: {self.redirect_to}\r\n", ""
        if method == "DESCRIBE":
            sdp = (
                "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=classpulse test\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                f"m=video 0 RTP/AVP {RTP_JPEG}\r\na=rtpmap:{RTP_JPEG} JPEG/{RTP_CLOCK_HZ}\r\na=control:track0\r\n"
            )
            return "200 OK", f"Content-Base: {url}/\r\nContent-Type: application/sdp\r\n", sdp
        if method == "SETUP":
            if "TCP" not in headers.get("transport", ""):
                return "461 Unsupported Transport", "", ""
            return "200 OK", f"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n{session}", ""
        if method in ("PLAY", "TEARDOWN"):
            return "200 OK", session, ""
        return "405 Method Not Allowed", "", ""

    def _digest_matches(self, method: str, url: str, authorization: str) -> bool:
        scheme, _, fields = authorization.partition(" ")
        given = {name.strip(): value.strip().strip('"') for name, _, value in (item.partition("=") for item in fields.split(","))}
        if scheme != "Digest" or self.credentials is None or given.get("uri") != url:
            return False
        user, password = self.credentials

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (RFC 2617's digest)

        expected = md5(f"{md5(f'{user}:{DIGEST_REALM}:{password}')}:{DIGEST_NONCE}:{md5(f'{method}:{url}')}")
        return given.get("username") == user and given.get("response") == expected

    def _play(self, connection: socket.socket) -> None:
        sequence, started, number = 0, time.monotonic(), 0
        while not self._stopped.is_set():
            tables, width, height, scan = jpeg_for_rtp(jpeg(self.frame(number)))
            timestamp = int(number * RTP_CLOCK_HZ / self.fps) & 0xFFFFFFFF
            for offset in range(0, len(scan), MAX_PAYLOAD):
                chunk = scan[offset : offset + MAX_PAYLOAD]
                last = offset + MAX_PAYLOAD >= len(scan)
                # RFC 2435 main header: type-specific, fragment offset, type 1 (4:2:0), Q 255 (tables in-band), size/8.
                header = struct.pack(">B3sBBBB", 0, offset.to_bytes(3, "big"), 1, 255, width // 8, height // 8)
                if offset == 0:
                    header += struct.pack(">BBH", 0, 0, len(tables)) + tables
                rtp = struct.pack(">BBHII", 0x80, (0x80 if last else 0) | RTP_JPEG, sequence & 0xFFFF, timestamp, 0x5150)
                try:
                    connection.sendall(b"$\x00" + struct.pack(">H", len(rtp + header + chunk)) + rtp + header + chunk)
                except OSError:
                    return
                sequence += 1
            number += 1
            time.sleep(max(0.0, started + number / self.fps - time.monotonic()))
