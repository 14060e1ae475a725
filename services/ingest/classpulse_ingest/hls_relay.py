"""HLS, read for FFmpeg by the egress proxy itself (egress.py): FFmpeg speaks plain HTTP to the proxy alone.

For FFmpeg to read HTTPS through the proxy, its protocols would need `httpproxy` (TLS tunnelled with CONNECT), and a
playlist could then name its segments `httpproxy://anyhost/`, which FFmpeg connects to itself, past the proxy; without
it, FFmpeg cannot read an HTTP playlist's HTTPS segments. So a playlist (HTTP or HTTPS) is opened as a URL of the
proxy's own (`relay_url`: http://127.0.0.1:<port>/hls/<the relay's key>/<the session's id>/<the upstream URL in
base64url>/<its last path segment, whose extension FFmpeg's HLS demuxer judges a segment by>), which FFmpeg asks the
proxy for as it asks for any http URL. The relay checks the upstream URL as the proxy checks any
destination (the same networks; http or https, of the allowed schemes), connects to an address it checked, does TLS
itself (the host name for SNI and the certificate's verification, against SSL_CERT_FILE's authorities where it is set,
the system's otherwise) and sends one GET. A playlist's answer reaches FFmpeg with every URI in it rewritten to a relay
URL of the absolute URL it resolves to (`rewritten_playlist`), so each segment, key, init section and playlist FFmpeg
opens next is checked in turn; a URI of another scheme (`httpproxy:`, `file:`) becomes a relay URL all the same, refused
when FFmpeg asks for it; a `data:` URI (an inline key, init section or variant playlist) becomes one too, which the relay
answers itself with the bytes it holds, a playlist's rewritten as any (FFmpeg as OpenCV builds it has no data protocol,
and FFmpeg's would read it unchecked). A redirect reaches FFmpeg pointing at the relay URL of its target (FFmpeg follows
a few, each hop a new request checked as a new destination). Anything else (segments, keys, init sections, error
answers) is passed on as it comes, with the upstream's status and framing and `Connection: close`.

Each open of a playlist is a session of the relay's (`HlsRelay.session`: its relay URLs carry the session's id, and
FFmpeg is given no others), which keeps the cookies the upstream hosts set and sends them back as FFmpeg would have
(CDNs authenticate a lesson's segments by a cookie set with its playlist: CloudFront's signed cookies, Akamai's
tokens): FFmpeg, which keeps the cookies of what it reads itself, sees the relay's answers alone, from 127.0.0.1, and
no Set-Cookie reaches it. A session ends with the capture that opened it; its relay URLs are refused after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.message
import http.cookiejar
import posixpath
import re
import secrets
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, unquote, unquote_to_bytes, urljoin, urlsplit

from prometheus_client import Counter

from classpulse_ingest.piping import HEAD_LIMIT_BYTES, CheckedEgress, read_head, stream_tls
from classpulse_web.destinations import DestinationRefused

RELAY_PATH = "/hls/"
PLAYLIST_LIMIT_BYTES = 4 * 1024 * 1024  # a long VOD lists some 10,000 segments in about 1 MB
PLAYLIST_TYPES = frozenset({"application/vnd.apple.mpegurl", "audio/mpegurl", "application/x-mpegurl", "audio/x-mpegurl"})
PLAYLIST_SUFFIXES = (".m3u8", ".m3u")
_RELAYED_SCHEMES = ("http", "https")
PROBED_REDIRECTS = 5  # followed by serves_a_playlist, as FFmpeg follows a few
_NAME_LIMIT = 64  # of the upstream's last path segment kept in a relay URL: enough for its extension
# FFmpeg's headers worth passing on: its client name (some CDNs answer by it) and a byte range (EXT-X-BYTERANGE).
_FORWARDED = (b"user-agent", b"accept", b"range")
_WHOLE_RANGE = b"bytes=0-"  # what FFmpeg asks of every URL: dropped, so that a playlist comes whole, as a 200
# The upstream's headers that describe its body to FFmpeg; the rest (caching, the server's name) stay here, and its
# cookies with the session (SessionCookies).
_PASSED_ON = (b"content-type", b"content-length", b"content-range", b"accept-ranges", b"transfer-encoding")
# How FFmpeg reads a playlist (libavformat's ff_get_line): a line ends at \n, \r, \r\n or a NUL byte; an attribute
# list's items are separated by commas or its white space (av_isspace).
_LINE_END = re.compile("\r\n|[\r\n\0]")
_FFMPEG_SPACE = " \t\n\v\f\r"
_SEPARATORS = _FFMPEG_SPACE + ","
_SEPARATOR = re.compile(f"[{re.escape(_SEPARATORS)}]")
MAX_SESSION_COOKIES = 64  # a CDN sets a few; a host setting a new one on every reload of a live playlist is bounded

HLS_RELAYED = Counter(
    "classpulse_ingest_stream_hls_relay_requests_total",
    "Requests FFmpeg made to the stream egress proxy's HLS relay, by outcome (playlist: served with its URIs rewritten; "
    "relayed: passed on as it came; redirect: pointed at the relay URL of its target; inline: a data: URI's bytes; "
    "refused: a destination outside the allowed networks or schemes; ended: a relay URL of a session that ended; "
    "unreachable, tls_failed, bad_answer, too_large: no answer passed on)",
    ["outcome"],
)
HLS_COOKIES_DROPPED = Counter(
    "classpulse_ingest_stream_hls_relay_cookies_dropped_total",
    f"Cookies an HLS stream's hosts set past the {MAX_SESSION_COOKIES} a session of the relay keeps, not kept",
)


class RelayFailed(Exception):
    """The relay answers FFmpeg `status` alone: nothing of the upstream's answer (if any) reaches it."""

    def __init__(self, status: bytes, outcome: str) -> None:
        super().__init__(outcome)
        self.status = status
        self.outcome = outcome


@dataclass(frozen=True)
class Relayed:
    """The relay's answer to FFmpeg: `start` (its head, and a playlist's whole rewritten body), then `rest`, the
    upstream's body as it comes (None: nothing more)."""

    start: bytes
    rest: asyncio.StreamReader | None
    outcome: str


def relay_url(relay: str, upstream: str) -> str:
    """The URL at which the relay at `relay` (its base URL: HlsRelay.base) reads `upstream`."""
    encoded = base64.urlsafe_b64encode(upstream.encode("utf-8", "surrogateescape")).rstrip(b"=").decode("ascii")
    try:
        name = posixpath.basename(urlsplit(upstream).path)[-_NAME_LIMIT:]
    except ValueError:
        name = ""  # malformed: refused when asked for (egress.py)
    return f"{relay}/{encoded}/{quote(name, safe='', errors='surrogateescape')}"


def upstream_url(relay: str, target: str) -> str | None:
    """The upstream URL a request target of the relay at `relay` names; None if the target is not the relay's."""
    if not target.startswith(f"{relay}/"):
        return None
    encoded = target.removeprefix(f"{relay}/").partition("/")[0]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8", "surrogateescape")
    except ValueError:
        return ""  # the relay's, naming nothing: refused as a URL of no scheme


def rewritten_playlist(text: str, playlist_url: str, relay: str) -> str:
    """The playlist with every URI in it, resolved against `playlist_url`, replaced by its URL at the relay at `relay`:
    each URI line (a line that is not empty and does not start with '#') and each URI attribute of a tag (EXT-X-KEY,
    EXT-X-MAP, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-SESSION-KEY, ...; any tag's, to stay ahead of what FFmpeg
    reads). Lines and attributes are split as FFmpeg splits them, and the lines joined again with \\n: a line end or
    separator only FFmpeg saw could hide a URI from the rewriting."""

    def relayed(uri: str) -> str:
        try:
            absolute = urljoin(playlist_url, uri.strip(_FFMPEG_SPACE))
        except ValueError:
            absolute = uri  # malformed: its relay URL is refused when asked for
        return relay_url(relay, absolute)

    lines = _LINE_END.split(text)
    return "\n".join(
        _rewritten_tag(line, relayed) if line.startswith("#") else relayed(line) if line.rstrip(_FFMPEG_SPACE) else line
        for line in lines
    )


def _rewritten_tag(line: str, relayed: Callable[[str], str]) -> str:
    """A tag with the value of each URI attribute replaced by `relayed(value)`, quoted. Its attributes are read as
    FFmpeg reads them (ff_parse_key_value: a name runs to the next '=', a value is quoted, with backslash escapes, or
    bare up to the next separator), so that every value FFmpeg would take for a URI is one replaced; so is a value
    whose name ends in URI after a separator (`X,URI=`), which FFmpeg ignores and a stricter reader might not."""
    colon = line.find(":")
    if colon < 0:
        return line
    rewritten = [line[: colon + 1]]
    position = colon + 1
    while True:
        start = position
        while position < len(line) and line[position] in _SEPARATORS:
            position += 1
        equals = line.find("=", position)
        if position == len(line) or equals < 0:
            rewritten.append(line[start:])
            return "".join(rewritten)
        name = line[position:equals]
        value, end = _attribute_value(line, equals + 1)
        if _SEPARATOR.split(name)[-1].upper() == "URI":
            rewritten.append(f'{line[start : equals + 1]}"{relayed(value)}"')
        else:
            rewritten.append(line[start:end])
        position = end


def _attribute_value(line: str, position: int) -> tuple[str, int]:
    """The attribute value starting at `position` as FFmpeg reads it, and where it ends."""
    if not line.startswith('"', position):
        end = position
        while end < len(line) and line[end] not in _SEPARATORS:
            end += 1
        return line[position:end], end
    value = []
    end = position + 1
    while end < len(line) and line[end] != '"':
        if line[end] == "\\":
            if end + 1 == len(line):
                break
            end += 1
        value.append(line[end])
        end += 1
    return "".join(value), min(end + 1, len(line))


class HlsRelay:
    """The relay of one egress proxy: `session` opens a playlist's session, `answer` reads the upstream a relay URL of
    one names, for FFmpeg."""

    def __init__(self, proxy: CheckedEgress) -> None:
        self.proxy = proxy
        self.schemes = [scheme for scheme in proxy.schemes if scheme in _RELAYED_SCHEMES]
        self.tls = stream_tls(verified=True)
        self._probe_tls = stream_tls(verified=False)
        self._key = secrets.token_urlsafe(16)
        self._sessions: dict[str, HlsSession] = {}
        self._sessions_lock = threading.Lock()  # sessions open on a source's thread and are read on the proxy's

    @property
    def base(self) -> str:
        """The relay's URL, which every relay URL starts with: the proxy's, with a key of the relay's own, so that
        FFmpeg is given relay URLs by the relay alone (a plain-HTTP playlist cannot name one to read HTTPS with)."""
        return f"{self.proxy.url}{RELAY_PATH}{self._key}"

    def session(self) -> HlsSession:
        """A new session, until its `close()`: one open of a playlist."""
        session = HlsSession(self, secrets.token_urlsafe(12))
        with self._sessions_lock:
            self._sessions[session.id] = session
        return session

    def ended(self, session: HlsSession) -> None:
        with self._sessions_lock:
            self._sessions.pop(session.id, None)

    def request_of(self, target: str) -> tuple[HlsSession | None, str] | None:
        """The session (None: one that ended, or none the relay made) and the upstream URL a request target of the
        relay names; None if the target is not the relay's."""
        session_id, slash, _rest = target.removeprefix(f"{self.base}/").partition("/")
        if not target.startswith(f"{self.base}/") or not slash:
            return None
        with self._sessions_lock:
            session = self._sessions.get(session_id)
        return session, upstream_url(f"{self.base}/{session_id}", target) or ""

    async def serves_a_playlist(self, url: str) -> bool:
        """Whether the HTTP(S) stream at `url` is an HLS playlist: its URL's suffix, or its answer's media type after
        the redirects it answers (at most PROBED_REDIRECTS, each checked as any destination): a playlist named otherwise
        (Azure Media Services' `manifest(format=m3u8-cmaf)`, a lesson's share link redirecting to its playlist).
        The answer chooses how FFmpeg reads the stream and nothing else: asked over TLS unverified (a playlist is then
        read through the relay, verified, and a camera's own certificate still serves its MJPEG through the proxy's
        tunnel) and then without the URL's credentials, its head alone, the connection closed at once. False where it cannot
        tell (a redirect refused or unreachable, TLS or the answer failing): FFmpeg's open then reports the stream as
        any. TimeoutError or OSError where the stream's own host takes no connection, or answers none, within the
        connect timeout: FFmpeg's open would fail there too, after as long again."""
        deadline = asyncio.get_running_loop().time() + self.proxy.connect_timeout_s
        for hop in range(PROBED_REDIRECTS + 1):
            if _named_a_playlist(url):
                return True
            try:
                async with asyncio.timeout_at(deadline):
                    status, headers = await self._answer_head_of(url)
            except DestinationRefused:
                return False
            except (OSError, TimeoutError, EOFError, ValueError, asyncio.LimitOverrunError) as failed:
                if hop == 0 and isinstance(failed, TimeoutError | ConnectionError):
                    raise
                return False
            location = _header(headers, b"location")
            if not (300 <= status < 400 and location is not None):
                return _media_type(headers) in PLAYLIST_TYPES
            url = urljoin(url, location)
        return False

    async def _answer_head_of(self, url: str) -> tuple[int, list[bytes]]:
        upstream, to_upstream = await self.proxy.open_checked(url, self.schemes)
        try:
            parts = urlsplit(url)
            if parts.scheme == "https":
                await to_upstream.start_tls(self._probe_tls, server_hostname=parts.hostname)
            # Over unverified TLS the URL's credentials would go to whoever answers: sent over plain HTTP alone, where
            # FFmpeg sends them anyway.
            asked = parts if parts.scheme == "http" else parts._replace(netloc=parts.netloc.rpartition("@")[2])
            to_upstream.write(_request(asked, []))
            status, _reason, headers = await _answer_head(upstream)
            return status, headers
        finally:
            to_upstream.close()

    @contextlib.asynccontextmanager
    async def answer(self, session: HlsSession | None, url: str, request_headers: list[bytes]) -> AsyncIterator[Relayed]:
        """The answer to FFmpeg's GET of the relay URL of `url` in `session` (`request_headers`: its header lines);
        RelayFailed, before anything is answered, if the session ended, if `url` is refused (counted in the proxy's
        refusals and logged), if none of its addresses takes a connection, TLS fails, or the upstream answers no HTTP
        or too long a playlist. The connection to the upstream lasts as long as the context."""
        async with contextlib.AsyncExitStack() as connection:
            try:
                if session is None:
                    raise RelayFailed(b"404 Not Found", "ended")
                relayed = await session.answered(url, request_headers, connection)
            except RelayFailed as failed:
                HLS_RELAYED.labels(failed.outcome).inc()
                raise
            HLS_RELAYED.labels(relayed.outcome).inc()
            yield relayed


class HlsSession:
    """One open of a playlist through the relay: the relay URLs FFmpeg is given for it (`url_for`), and the cookies its
    upstream hosts set (`cookies`), until `close()`."""

    def __init__(self, relay: HlsRelay, session_id: str) -> None:
        self.relay = relay
        self.id = session_id
        self.base = f"{relay.base}/{session_id}"
        self.cookies = SessionCookies()

    def url_for(self, upstream: str) -> str:
        return relay_url(self.base, upstream)

    def close(self) -> None:
        self.relay.ended(self)

    async def answered(self, url: str, request_headers: list[bytes], connection: contextlib.AsyncExitStack) -> Relayed:
        if url[:5].lower() == "data:":
            return _inline(url, self.base)
        try:
            upstream, to_upstream = await self.relay.proxy.open_checked(url, self.relay.schemes)
        except DestinationRefused:
            raise RelayFailed(b"403 Forbidden", "refused") from None
        except (OSError, TimeoutError):
            raise RelayFailed(b"502 Bad Gateway", "unreachable") from None
        connection.callback(to_upstream.close)
        parts = urlsplit(url)
        if parts.scheme == "https":
            try:
                await to_upstream.start_tls(
                    self.relay.tls, server_hostname=parts.hostname, ssl_handshake_timeout=self.relay.proxy.connect_timeout_s
                )
            except (OSError, TimeoutError):  # ssl.SSLError (a certificate that does not verify) is an OSError
                raise RelayFailed(b"502 Bad Gateway", "tls_failed") from None
        to_upstream.write(_request(parts, request_headers, self.cookies.header_for(url)))
        try:
            return await self._relayed(url, upstream)
        except (EOFError, ValueError, asyncio.LimitOverrunError):
            raise RelayFailed(b"502 Bad Gateway", "bad_answer") from None

    async def _relayed(self, url: str, upstream: asyncio.StreamReader) -> Relayed:
        status, reason, headers = await _answer_head(upstream)
        self.cookies.remember(url, headers)
        location = _header(headers, b"location")
        if 300 <= status < 400 and location is not None:
            moved = [b"Location: " + self.url_for(urljoin(url, location)).encode("ascii"), b"Content-Length: 0"]
            return Relayed(_head(status, reason, moved), None, "redirect")
        is_playlist = _media_type(headers) in PLAYLIST_TYPES or _named_a_playlist(url)
        if is_playlist and 200 <= status < 300:
            if status != 200 or _header(headers, b"content-encoding") is not None:
                raise RelayFailed(b"502 Bad Gateway", "bad_answer")  # in part, or compressed: not a text to rewrite
            text = (await _playlist_body(upstream, headers)).decode("utf-8", "surrogateescape")
            body = rewritten_playlist(text, url, self.base).encode("utf-8", "surrogateescape")
            described = [b"Content-Type: application/vnd.apple.mpegurl", b"Content-Length: %d" % len(body)]
            return Relayed(_head(status, reason, described) + body, None, "playlist")
        described = [line for line in headers if line.partition(b":")[0].strip().lower() in _PASSED_ON]
        return Relayed(_head(status, reason, described), upstream, "relayed")


class SessionCookies:
    """The cookies a session's upstream hosts set, sent back to them by the rules a browser's (and FFmpeg's) follow
    (RFC 6265 through http.cookiejar: a cookie goes back to its domain and path alone, a Secure one over https alone,
    until it expires); at most MAX_SESSION_COOKIES."""

    def __init__(self) -> None:
        self._jar = _BoundedJar()

    def header_for(self, url: str) -> str | None:
        """The Cookie header's value for a request of `url`; None: no cookie for it."""
        request = _cookie_request(url)
        self._jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def remember(self, url: str, headers: list[bytes]) -> None:
        """The cookies the answer to a request of `url` sets (`headers`: its header lines)."""
        message = email.message.Message()
        for line in headers:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"set-cookie":
                message["Set-Cookie"] = value.strip().decode("latin-1")
        if message:
            self._jar.extract_cookies(_Answered(message), _cookie_request(url))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._jar)


def _cookie_request(url: str) -> urllib.request.Request:
    """What http.cookiejar reads of a request: its URL. Never opened (the relay makes its own requests)."""
    return urllib.request.Request(url)  # noqa: S310 (not opened)


@dataclass(frozen=True)
class _Answered:
    """What http.cookiejar reads of an answer: its headers."""

    headers: email.message.Message

    def info(self) -> email.message.Message:
        return self.headers


class _BoundedJar(http.cookiejar.CookieJar):
    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        self.clear_expired_cookies()
        replaced = any((kept.domain, kept.path, kept.name) == (cookie.domain, cookie.path, cookie.name) for kept in self)
        if not replaced and len(self) >= MAX_SESSION_COOKIES:
            HLS_COOKIES_DROPPED.inc()
            return
        super().set_cookie(cookie)


def _inline(url: str, relay: str) -> Relayed:
    """The answer to a `data:` URI (RFC 2397: `data:[<media type>][;base64],<data>`): its bytes, as FFmpeg's data
    protocol would read them, a playlist's (an inline variant playlist: its media type or its #EXTM3U) with its URIs
    rewritten to URLs of the relay at `relay`, as any playlist's; RelayFailed if it is malformed (no comma, bad
    base64)."""
    header, comma, payload = url[5:].partition(",")
    try:
        if not comma:
            raise ValueError("no comma")
        data = unquote_to_bytes(payload)
        body = base64.b64decode(data, validate=True) if header.lower().endswith(";base64") else data
    except ValueError:  # binascii.Error (bad base64) is a ValueError
        raise RelayFailed(b"400 Bad Request", "refused") from None
    media_type = header.lower().partition(";")[0].strip()
    if media_type in PLAYLIST_TYPES or body.startswith(b"#EXTM3U"):
        # A relative URI in it resolves against no URL (data: has no path): its relay URL names no scheme, refused.
        body = rewritten_playlist(body.decode("utf-8", "surrogateescape"), url, relay).encode("utf-8", "surrogateescape")
        described = [b"Content-Type: application/vnd.apple.mpegurl", b"Content-Length: %d" % len(body)]
    else:
        described = [b"Content-Type: application/octet-stream", b"Content-Length: %d" % len(body)]
    return Relayed(_head(200, b"OK", described) + body, None, "inline")


def _request(parts: SplitResult, request_headers: list[bytes], cookie: str | None = None) -> bytes:
    """The GET of the URL of `parts` (already checked: http or https, with a host), with FFmpeg's headers worth passing
    on, the URL's credentials as Basic authorization, the session's `cookie` header, and `Connection: close`."""
    hostname = (parts.hostname or "").encode("idna").decode("ascii")
    host = (f"[{hostname}]" if ":" in hostname else hostname) + (f":{parts.port}" if parts.port is not None else "")
    # Quoted where the URL is not already: no white space, control character or non-ASCII byte in the request line.
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~", errors="surrogateescape")
    if parts.query:
        target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=~", errors="surrogateescape")
    lines = [f"GET {target} HTTP/1.1".encode("ascii"), f"Host: {host}".encode("ascii")]
    for line in request_headers:
        name, _, value = line.partition(b":")
        if name.strip().lower() in _FORWARDED and value.strip() != _WHOLE_RANGE:
            lines.append(line)
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append(b"Authorization: Basic " + base64.b64encode(credentials))
    if cookie is not None:
        lines.append(b"Cookie: " + cookie.encode("latin-1"))
    return b"".join(line + b"\r\n" for line in [*lines, b"Connection: close"]) + b"\r\n"


async def _answer_head(upstream: asyncio.StreamReader) -> tuple[int, bytes, list[bytes]]:
    """The status, reason and header lines of the upstream's answer, past any interim (1xx) one; ValueError if it is
    not HTTP/1. Lines split at a bare \\n too, as FFmpeg splits them: one inside a line passed on would be a header
    line of the upstream's making to FFmpeg (a Location, past the rewriting)."""
    while True:
        status_line, *headers = await read_head(upstream, HEAD_LIMIT_BYTES)
        version, _, rest = status_line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ValueError("not an HTTP/1 answer")
        if int(code) >= 200:
            return int(code), reason, headers


def _header(headers: list[bytes], wanted: bytes) -> str | None:
    for line in headers:
        name, _, value = line.partition(b":")
        if name.strip().lower() == wanted:
            return value.strip().decode("latin-1")
    return None


def _named_a_playlist(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(PLAYLIST_SUFFIXES)


def _media_type(headers: list[bytes]) -> str:
    return (_header(headers, b"content-type") or "").partition(";")[0].strip().lower()


def _head(status: int, reason: bytes, headers: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in [b"HTTP/1.1 %d " % status + reason, *headers, b"Connection: close"]) + b"\r\n"


async def _playlist_body(upstream: asyncio.StreamReader, headers: list[bytes]) -> bytes:
    """The playlist's body, its chunked framing undone; RelayFailed past PLAYLIST_LIMIT_BYTES."""
    body = bytearray()
    if (_header(headers, b"transfer-encoding") or "").lower() == "chunked":
        while size := int((await upstream.readuntil(b"\r\n")).partition(b";")[0], 16):
            _within_limit(len(body) + size)
            body += await upstream.readexactly(size)
            await upstream.readexactly(2)
    elif (length := _header(headers, b"content-length")) is not None:
        body += await upstream.readexactly(_within_limit(int(length)))
    else:  # as long as the connection: the upstream closes it after its answer (`Connection: close`)
        while chunk := await upstream.read(64 * 1024):
            body += chunk
            _within_limit(len(body))
    return bytes(body)


def _within_limit(size: int) -> int:
    if size > PLAYLIST_LIMIT_BYTES:
        raise RelayFailed(b"502 Bad Gateway", "too_large")
    return size
