"""The egress proxy FFmpeg reaches HTTP(S) streams through, spoken to directly: one request per connection (so a
connection kept alive cannot go on to another host unchecked), each destination checked, anything else refused; and
its HLS relay, which reads HTTPS for FFmpeg (real TLS servers, with an authority of the test's own), and its RTSP relay,
which passes a camera's answers on with each redirect pointed at itself."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import mimetypes
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from address_support import resolving_to, silent_addresses
from classpulse_ingest.egress import StreamEgressProxy
from classpulse_ingest.hls_relay import PLAYLIST_LIMIT_BYTES, HlsSession, rewritten_playlist
from classpulse_ingest.piping import HEAD_LIMIT_BYTES
from classpulse_ingest.rtsp_relay import BODY_LIMIT_BYTES, MAX_REDIRECTS
from ingest_support import VideoServer, metric, write_hls
from tls_support import CertificateAuthority

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy() -> Iterator[StreamEgressProxy]:
    """Allowing 127.0.0.1 only, by http and https."""
    made = StreamEgressProxy([ipaddress.ip_network("127.0.0.1/32")], ["http", "https"], 2.0).start()
    yield made
    made.close()


def _exchange(proxy: StreamEgressProxy, *requests: bytes) -> bytes:
    """What the proxy answers to `requests`, written one after the other on one connection, until it closes it."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
        for request in requests:
            connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_kept_alive_connection_carries_one_request_and_closes(proxy, tmp_path):
    (tmp_path / "a.txt").write_text("first")
    camera = VideoServer(tmp_path).start()
    other = VideoServer(tmp_path, port=camera.port, host="127.0.0.2").start()
    try:
        answer = _exchange(
            proxy,
            f"GET {camera.url}/a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode(),
            f"GET {other.url}/a.txt HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: keep-alive\r\n\r\n".encode(),
        )
    finally:
        camera.stop()
        other.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and body == b"first" and b"Connection: close" in head.split(b"\r\n")
    assert camera.requested == ["GET /a.txt HTTP/1.1"] and other.requested == []


def test_a_stream_host_with_silent_addresses_is_reached_at_its_live_one_within_one_connect_timeout(monkeypatch, tmp_path):
    """A camera's name with four addresses, the first three silent (a recorder off behind a firewall dropping packets).
    The proxy tried each in turn with the whole connect timeout (6 s here before it reached the live one, and FFmpeg
    gives up on a stream sooner). Now connections to them are raced, 250 ms apart: the live one answers within one."""
    connect_timeout_s = 2.0
    (tmp_path / "a.txt").write_text("live")
    camera = VideoServer(tmp_path).start()
    silent = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
    resolving_to(monkeypatch, "cameras.test", camera.port, *silent, camera.host)
    proxy = StreamEgressProxy([ipaddress.ip_network(f"{a}/32") for a in (*silent, camera.host)], ["http"], connect_timeout_s).start()
    try:
        with silent_addresses(*silent, port=camera.port):
            started = time.monotonic()
            answer = _exchange(proxy, f"GET http://cameras.test:{camera.port}/a.txt HTTP/1.1\r\nHost: cameras.test\r\n\r\n".encode())
            answered_after_s = time.monotonic() - started
    finally:
        proxy.close()
        camera.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and body == b"live", answer
    assert answered_after_s < connect_timeout_s, answered_after_s


@pytest.mark.parametrize(
    ("request_head", "status", "cause"),
    [
        (b"CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n", b"403", "not_allowed"),
        (b"GET http://127.0.0.2:80/ HTTP/1.1\r\n\r\n", b"403", "not_allowed"),
        (b"GET ftp://127.0.0.1/ HTTP/1.1\r\n\r\n", b"400", "bad_request"),
        (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"400", "bad_request"),
        (b"POST http://127.0.0.1:1/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"400", "bad_request"),
    ],
)
def test_anything_but_a_checked_destination_is_refused(proxy, request_head, status, cause):
    before = metric("classpulse_ingest_stream_egress_refused_total", cause=cause)
    assert _exchange(proxy, request_head).startswith(b"HTTP/1.1 " + status)
    assert metric("classpulse_ingest_stream_egress_refused_total", cause=cause) == before + 1


# --- The HLS relay --------------------------------------------------------------------------------------------------


@pytest.fixture
def authority(tmp_path, monkeypatch) -> CertificateAuthority:
    """The only authority a proxy made after it trusts (SSL_CERT_FILE)."""
    made = CertificateAuthority.made(tmp_path / "authority")
    monkeypatch.setenv("SSL_CERT_FILE", str(made.path))
    return made


@pytest.fixture
def relay_proxy(authority) -> Iterator[StreamEgressProxy]:
    """Allowing 127.0.0.1 and 127.0.0.3 (127.0.0.2 stands for a host outside the networks) by rtsp, http and https, of
    which its relay reads http and https alone; trusting the test's authority."""
    made = StreamEgressProxy([ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("127.0.0.3/32")], ["rtsp", "http", "https"], 2.0)
    yield made.start()
    made.close()


@pytest.fixture
def https_server(authority, monkeypatch, tmp_path) -> Iterator[Callable[..., VideoServer]]:
    """`https_server(name, host="127.0.0.1", tls=None, **options)`: an HTTPS VideoServer of tmp_path as the host `name`
    (resolving to `host`), its certificate the test authority's for `name` unless `tls` is given; stopped afterwards."""
    started: list[VideoServer] = []

    def start(name: str, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None, **options) -> VideoServer:
        started.append(VideoServer(tmp_path, host=host, tls=tls or authority.server_tls(name), **options).start())
        resolving_to(monkeypatch, name, started[-1].port, host)
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def session(relay_proxy) -> Iterator[HlsSession]:
    """One open of a playlist through the relay of `relay_proxy`."""
    opened = relay_proxy.relay.session()
    yield opened
    opened.close()


def _relay_answer(session: HlsSession, upstream: str, *headers: str) -> tuple[list[bytes], bytes]:
    """The head lines and the body of the proxy's answer to FFmpeg's GET of the relay URL of `upstream` in `session`."""
    return _answer_to(session.relay.proxy, session.url_for(upstream), *headers)


def _answer_to(proxy: StreamEgressProxy, url: str, *headers: str) -> tuple[list[bytes], bytes]:
    request = f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n" + "".join(f"{h}\r\n" for h in headers)
    head, _, body = _exchange(proxy, f"{request}\r\n".encode()).partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _relayed(outcome: str) -> float:
    return metric("classpulse_ingest_stream_hls_relay_requests_total", outcome=outcome)


def test_an_https_playlist_is_relayed_with_every_uri_rewritten_and_the_rest_as_it_comes(session, https_server, tmp_path):
    """The relay reads over TLS, verifying the certificate (for cdn.test alone) against the host name it connected to
    an address of; a playlist reaches FFmpeg whole with each URI a relay URL of its absolute URL; a segment or key as
    the upstream answered it (FFmpeg's `Range: bytes=0-` dropped, its other headers passed on)."""
    write_hls(tmp_path / "hls", key=bytes(range(16)))
    cdn = https_server("cdn.test")
    playlist, segment = f"https://cdn.test:{cdn.port}/hls/index.m3u8", f"https://cdn.test:{cdn.port}/hls/segment0.ts"
    before = {outcome: _relayed(outcome) for outcome in ("playlist", "relayed")}
    playlist_head, playlist_body = _relay_answer(session, playlist, "Range: bytes=0-", "User-Agent: Lavf/62.3.100")
    segment_head, segment_body = _relay_answer(session, segment, "Range: bytes=188-")
    text = (tmp_path / "hls" / "index.m3u8").read_text()
    assert playlist_head[0] == b"HTTP/1.1 200 OK" and b"Content-Type: application/vnd.apple.mpegurl" in playlist_head
    assert playlist_body == rewritten_playlist(text, playlist, session.base).encode() and b"cdn.test" not in playlist_body
    assert f'URI="{session.url_for(f"https://cdn.test:{cdn.port}/hls/key.bin")}"'.encode() in playlist_body
    assert session.url_for(segment).encode() in playlist_body.split(b"\n")
    encrypted = (tmp_path / "hls" / "segment0.ts").read_bytes()  # whole: the test's server answers no range
    assert segment_head[0] == b"HTTP/1.1 200 OK" and segment_body == encrypted and b"Connection: close" in segment_head
    served_type = mimetypes.guess_type("segment0.ts")[0]  # the test's server's guess, passed on as it came
    assert f"Content-Length: {len(encrypted)}".encode() in segment_head and f"Content-type: {served_type}".encode() in segment_head
    assert cdn.requested == ["GET /hls/index.m3u8 HTTP/1.1", "GET /hls/segment0.ts HTTP/1.1"]
    playlist_request, segment_request = cdn.request_headers
    assert playlist_request["Host"] == segment_request["Host"] == f"cdn.test:{cdn.port}"
    assert "Range" not in playlist_request and playlist_request["User-Agent"] == "Lavf/62.3.100"
    assert segment_request["Range"] == "bytes=188-"
    assert [_relayed(outcome) - before[outcome] for outcome in ("playlist", "relayed")] == [1, 1]


@pytest.mark.parametrize(
    ("upstream", "cause"),
    [
        ("https://outside.test:{port}/hls/segment0.ts", "not_allowed"),
        ("httpproxy://127.0.0.2:{port}/hls/segment0.ts", "bad_location"),
        ("file:///etc/passwd", "bad_location"),
        ("rtsp://127.0.0.1:{port}/live", "bad_location"),
    ],
)
def test_a_relay_url_outside_the_networks_or_not_http_is_refused_unfetched(session, https_server, tmp_path, upstream, cause):
    """What a playlist names outside the networks (127.0.0.2 here, the metadata service in earnest), or by a scheme
    other than http(s), is relayed by no connection: a 403, counted and logged as any refusal of the proxy."""
    write_hls(tmp_path / "hls")
    outside = https_server("outside.test", host="127.0.0.2")
    refused_before, relayed_before = metric("classpulse_ingest_stream_egress_refused_total", cause=cause), _relayed("refused")
    head, _body = _relay_answer(session, upstream.format(port=outside.port))
    assert head[0] == b"HTTP/1.1 403 Forbidden" and outside.requested == []
    assert metric("classpulse_ingest_stream_egress_refused_total", cause=cause) == refused_before + 1
    assert _relayed("refused") == relayed_before + 1


def test_a_relayed_redirect_points_ffmpeg_at_the_relay_url_of_its_target(session, https_server):
    """Not followed by the relay: FFmpeg asks for the target's relay URL next, checked as a destination of its own."""
    moved_to = "https://elsewhere.test/lessons/index.m3u8"
    server = https_server("cdn.test", redirects={"/moved.m3u8": moved_to})
    before = _relayed("redirect")
    head, _body = _relay_answer(session, f"https://cdn.test:{server.port}/moved.m3u8")
    assert head[0] == b"HTTP/1.1 302 Found" and f"Location: {session.url_for(moved_to)}".encode() in head
    assert _relayed("redirect") == before + 1


def test_the_cookies_a_playlists_host_sets_go_back_to_that_host_alone_within_its_session(relay_proxy, session, https_server, tmp_path):
    """A CDN that authenticates a lesson's segments by a cookie set with its playlist (CloudFront's signed cookies):
    FFmpeg keeps such cookies itself, but through the relay it saw none, and every segment was a 403. The session now
    keeps them: sent back to the host that set them, not to another host, not in another session (another open of the
    stream); a session's relay URLs are refused once it has ended."""
    write_hls(tmp_path / "hls")
    cdn = https_server("cdn.test", cookie="CloudFront-Policy=lesson-12")
    media = https_server("media.test", host="127.0.0.3")
    segment = f"https://cdn.test:{cdn.port}/hls/segment0.ts"
    other = relay_proxy.relay.session()
    assert _relay_answer(other, segment)[0][0] == b"HTTP/1.1 403 Forbidden"  # no playlist read in that session
    assert _relay_answer(session, f"https://cdn.test:{cdn.port}/hls/index.m3u8")[0][0] == b"HTTP/1.1 200 OK"
    head, body = _relay_answer(session, segment)
    assert head[0] == b"HTTP/1.1 200 OK" and body == (tmp_path / "hls" / "segment0.ts").read_bytes()
    assert not any(line.lower().startswith(b"set-cookie") for line in head)  # FFmpeg is given no cookie
    assert _relay_answer(session, f"https://media.test:{media.port}/hls/segment1.ts")[0][0] == b"HTTP/1.1 200 OK"
    assert _relay_answer(other, segment)[0][0] == b"HTTP/1.1 403 Forbidden"
    assert [headers.get("Cookie") for headers in cdn.request_headers] == [None, None, "CloudFront-Policy=lesson-12", None]
    assert media.request_headers[0].get("Cookie") is None
    ended_before, requests_before = _relayed("ended"), len(cdn.requested)
    other.close()
    assert _answer_to(relay_proxy, other.url_for(segment))[0][0] == b"HTTP/1.1 404 Not Found"
    assert _relayed("ended") == ended_before + 1 and len(cdn.requested) == requests_before


AZURE_MANIFEST = "/lessons/12/manifest(format=m3u8-cmaf)"  # as Azure Media Services names an HLS playlist


def test_a_playlist_named_otherwise_is_known_by_its_answer(relay_proxy, https_server, tmp_path):
    """An HLS playlist at a URL that does not end in .m3u8 (a service's manifest URL, a lesson's share link redirecting
    to its playlist) was opened as any HTTPS stream, through the tunnel, where FFmpeg may not read HLS: it never
    opened. Its answer's media type, after the redirects it answers (each checked), now tells; a stream named as a
    playlist is one without a request; an MJPEG camera with a certificate of its own making is no playlist (read over
    TLS unverified: only the tunnel's path is chosen by it, so the URL's credentials are sent with it over plain HTTP
    alone); a redirect
    outside the networks or in a loop tells nothing; a host that takes no connection is an open that fails."""
    write_hls(tmp_path / "lessons" / "12")
    (tmp_path / AZURE_MANIFEST.lstrip("/")).write_text((tmp_path / "lessons" / "12" / "index.m3u8").read_text())
    outside = https_server("outside.test", host="127.0.0.2")
    cdn = https_server(
        "cdn.test",
        content_types={AZURE_MANIFEST: "application/vnd.apple.mpegurl"},
        redirects={"/share/12": "/lessons/12/index.m3u8", "/away": f"https://outside.test:{outside.port}/lesson", "/loop": "/loop"},
    )
    camera = https_server("camera.test", tls=CertificateAuthority.made(tmp_path / "own").server_tls("camera.test"))
    refused_before = metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed")
    answers = {
        path: relay_proxy.serves_a_playlist(f"https://cdn.test:{cdn.port}{path}")
        for path in ("/lessons/12/index.m3u8", AZURE_MANIFEST, "/share/12", "/lessons/12/segment0.ts", "/away", "/loop")
    }
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        relay_proxy.serves_a_playlist(f"http://127.0.0.1:{port}/lesson")
    assert answers == {
        "/lessons/12/index.m3u8": True, AZURE_MANIFEST: True, "/share/12": True,
        "/lessons/12/segment0.ts": False, "/away": False, "/loop": False,
    }
    assert relay_proxy.serves_a_playlist(f"https://admin:cam-secret@camera.test:{camera.port}/stream.mjpg") is False
    assert "Authorization" not in camera.request_headers[0]
    plain = VideoServer(tmp_path).start()  # over plain HTTP they are sent, as FFmpeg sends them
    try:
        assert relay_proxy.serves_a_playlist(f"http://admin:cam-secret@127.0.0.1:{plain.port}/stream.mjpg") is False
    finally:
        plain.stop()
    assert plain.request_headers[0]["Authorization"] == "Basic " + base64.b64encode(b"admin:cam-secret").decode()
    assert [request.split(" ")[1] for request in cdn.requested] == [AZURE_MANIFEST, "/share/12", "/lessons/12/segment0.ts", "/away", *["/loop"] * 6]
    assert camera.requested == ["GET /stream.mjpg HTTP/1.1"] and outside.requested == []
    assert metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed") == refused_before + 1


def test_a_playlist_look_under_a_closing_proxy_ends_within_its_timeout():
    """A source opening while ingest shuts down: the proxy's loop stopped with the look unfinished, whose answer then
    never came, and the source's thread waited for it forever. The look now ends with the proxy, and the source's
    thread gets an OSError at once, as from a host that went away."""
    proxy = StreamEgressProxy([ipaddress.ip_network("127.0.0.1/32")], ["http"], 1.0).start()
    outcome: list[BaseException | bool] = []

    def look(url: str) -> None:
        try:
            outcome.append(proxy.serves_a_playlist(url))
        except BaseException as raised:  # noqa: BLE001 (what the source's thread would get, whatever it is)
            outcome.append(raised)

    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, never answers
        looking = threading.Thread(target=look, args=(f"http://127.0.0.1:{silent.getsockname()[1]}/lesson",), daemon=True)
        looking.start()
        time.sleep(0.3)
        proxy.close()
        looking.join(1.0)
    assert not looking.is_alive() and len(outcome) == 1 and isinstance(outcome[0], ConnectionAbortedError), outcome


def test_an_upstream_answer_passes_on_no_header_line_of_the_upstreams_making(session):
    """A bare \\n in the upstream's head ends a line to FFmpeg: passed on inside a header, it would make a header line
    of the upstream's (a Location to follow, past the playlist's rewriting). The relay splits the head as FFmpeg does
    and passes on only the headers that describe the body."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\nLocation: http://evil.test/\r\nContent-Type: video/mp2t\nSet-Cookie: a=b\r\n"
                    b"Content-Length: 2\r\n\r\nok"
                )

        threading.Thread(target=answer, daemon=True).start()
        head, body = _relay_answer(session, f"http://127.0.0.1:{listener.getsockname()[1]}/segment0.ts")
    assert head == [b"HTTP/1.1 200 OK", b"Content-Type: video/mp2t", b"Content-Length: 2", b"Connection: close"] and body == b"ok"


def test_an_upstream_whose_certificate_does_not_verify_gets_no_request(session, https_server, authority, tmp_path):
    """A certificate of an authority not trusted, or of the trusted one for another name: TLS fails, no request is
    sent, and FFmpeg gets a 502 (the stream does not open, in the same words as any)."""
    untrusted = https_server("cdn.test", tls=CertificateAuthority.made(tmp_path / "untrusted").server_tls("cdn.test"))
    misnamed = https_server("media.test", host="127.0.0.3", tls=authority.server_tls("other.test"))
    before = _relayed("tls_failed")
    answers = [
        _relay_answer(session, f"https://cdn.test:{untrusted.port}/hls/index.m3u8")[0][0],
        _relay_answer(session, f"https://media.test:{misnamed.port}/hls/index.m3u8")[0][0],
    ]
    assert answers == [b"HTTP/1.1 502 Bad Gateway"] * 2
    assert untrusted.requested == misnamed.requested == []
    assert _relayed("tls_failed") == before + 2


def test_a_playlist_past_the_limit_is_not_passed_on(session, https_server, tmp_path):
    (tmp_path / "long.m3u8").write_text("#EXTM3U\n" + "#EXTINF:1,\nsegment0.ts\n" * (PLAYLIST_LIMIT_BYTES // 20))
    cdn = https_server("cdn.test")
    before = _relayed("too_large")
    head, body = _relay_answer(session, f"https://cdn.test:{cdn.port}/long.m3u8")
    assert head[0] == b"HTTP/1.1 502 Bad Gateway" and body == b""
    assert _relayed("too_large") == before + 1


BARE_LINE_ENDS = b"HTTP/1.1 200 OK\nContent-Type: %s\nX-Camera: model 7\r\n\n%s"


def test_an_answer_whose_lines_end_in_a_bare_newline_is_passed_on_whole(proxy):
    """Some cameras end their answer's lines with \\n alone, which FFmpeg reads. The proxy looked for \\r\\n\\r\\n:
    it took the answer's head to run on into its body, up to the first \\r\\n\\r\\n there, or found none and sent
    nothing. It now reads the head as FFmpeg does and passes it on with \\r\\n line ends and its body as it came."""
    body = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8 not a head\n\n"
    with _answering(BARE_LINE_ENDS % (b"multipart/x-mixed-replace;boundary=frame", body)) as (port, received):
        answer = _exchange(proxy, f"GET http://127.0.0.1:{port}/video.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head, _, passed = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK", b"Content-Type: multipart/x-mixed-replace;boundary=frame", b"X-Camera: model 7", b"Connection: close"
    ]
    assert passed == body and received[0].startswith(b"GET /video.mjpg HTTP/1.1\r\n")


def test_a_playlist_whose_lines_end_in_a_bare_newline_is_relayed_rewritten(session, authority, monkeypatch):
    playlist = b"#EXTM3U\n#EXTINF:4,\nhttps://cdn.test/segment0.ts\n#EXT-X-ENDLIST\n"
    answer = BARE_LINE_ENDS % (b"application/vnd.apple.mpegurl", playlist)
    with _answering(answer, authority.server_tls("cdn.test")) as (port, _received):
        resolving_to(monkeypatch, "cdn.test", port, "127.0.0.1")
        head, body = _relay_answer(session, f"https://cdn.test:{port}/live")
    assert head[0] == b"HTTP/1.1 200 OK" and b"Content-Type: application/vnd.apple.mpegurl" in head
    assert body == rewritten_playlist(playlist.decode(), f"https://cdn.test:{port}/live", session.base).encode()


@pytest.mark.parametrize(
    ("uri", "status", "body"),
    [
        ("data:application/octet-stream;base64,AAECAwQFBgcICQoLDA0ODw==", b"200 OK", bytes(range(16))),
        ("DATA:;BASE64,AAECAw%3D%3D", b"200 OK", bytes(range(4))),
        ("data:text/plain,key%20one", b"200 OK", b"key one"),
        ("data:application/octet-stream;base64,AAECAw=", b"400 Bad Request", b""),
        ("data:application/octet-stream;base64", b"400 Bad Request", b""),
    ],
)
def test_an_inline_data_uri_is_answered_by_the_relay_itself(session, uri, status, body):
    """A playlist's inline key or init section (`data:`): OpenCV's FFmpeg has no data protocol to read it, so such a
    playlist did not play; the relay answers it with the bytes it holds (RFC 2397), a malformed one with a 400."""
    before = _relayed("inline")
    head, answered = _relay_answer(session, uri)
    assert head[0] == b"HTTP/1.1 " + status and answered == body
    assert _relayed("inline") == before + (status == b"200 OK")


def test_an_inline_playlist_is_answered_rewritten_as_any_playlist(session):
    """An inline variant playlist (`data:`, known by its media type or its #EXTM3U) was answered as its bytes: the
    URIs in it reached FFmpeg as they were (https:// segments, which it cannot open). They are rewritten as any
    playlist's, a relative one (which resolves against no URL) to a relay URL refused when asked for."""
    variant = "#EXTM3U\n#EXTINF:2,\nhttps://cdn.test/hls/segment0.ts\n#EXTINF:2,\nsegment1.ts\n#EXT-X-ENDLIST\n"
    encoded = base64.b64encode(variant.encode()).decode()
    for uri in (f"data:application/vnd.apple.mpegurl;base64,{encoded}", f"data:;base64,{encoded}"):
        head, body = _relay_answer(session, uri)
        assert head[0] == b"HTTP/1.1 200 OK" and b"Content-Type: application/vnd.apple.mpegurl" in head
        assert body.decode().split("\n") == [
            "#EXTM3U", "#EXTINF:2,", session.url_for("https://cdn.test/hls/segment0.ts"), "#EXTINF:2,",
            session.url_for("segment1.ts"), "#EXT-X-ENDLIST", "",
        ]
    assert _relay_answer(session, "segment1.ts")[0][0] == b"HTTP/1.1 403 Forbidden"


# --- The RTSP relay ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _answering(sent: bytes, tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """A server on 127.0.0.1 (its port) answering the first request of its first connection with `sent`, as it is,
    then closing; the list of what it received fills in when it has."""
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answer() -> None:
            connection, _ = listener.accept()
            with tls.wrap_socket(connection, server_side=True) if tls else connection as serving:
                received.append(serving.recv(65536))
                serving.sendall(sent)

        threading.Thread(target=answer, daemon=True).start()
        yield listener.getsockname()[1], received


def _relayed_answers(proxy: StreamEgressProxy, sent: bytes) -> tuple[bytes, list[bytes]]:
    """What FFmpeg, connected to the relay of a camera at 127.0.0.1 that answers its first request with `sent` and
    closes, receives; and the requests the camera received."""
    with _answering(sent) as (port, received):
        camera = proxy.camera(f"rtsp://cam:secret@127.0.0.1:{port}/live")
        try:
            relay_port = urlsplit(camera.url).port
            with socket.create_connection(("127.0.0.1", relay_port), timeout=10) as connection:
                connection.sendall(b"DESCRIBE " + camera.url.encode() + b" RTSP/1.0\r\nCSeq: 2\r\n\r\n")
                answered = b""
                while chunk := connection.recv(65536):
                    answered += chunk
        finally:
            camera.close()
    return answered, received


def _packet(channel: int, payload: bytes) -> bytes:
    return b"$" + bytes([channel]) + len(payload).to_bytes(2, "big") + payload


def test_the_rtsp_relay_passes_a_cameras_answers_on_as_ffmpeg_reads_them_each_location_pointed_at_itself():
    """FFmpeg's RTSP client (libavformat/rtsp.c) ends a line at \\n and drops every \\r, takes a `$` at a line's start
    (after \\r's too) for an interleaved packet, reads a head's last Content-Length of body, and takes a head's last
    `Location:` line, in any case, for a redirect. Every Location reaches it pointing at a port of the relay, read that
    way: a Location-looking line inside a packet or a body is passed on untouched, as FFmpeg reads it as data."""
    proxy = StreamEgressProxy([ipaddress.ip_network("127.0.0.0/24")], ["rtsp", "rtsps"], 2.0).start()
    hidden_in_body = b"v=0\r\nLocation: rtsp://127.0.0.9/body\r\n"
    sent = (
        b"RTSP/1.0 200 OK\nCSeq: 1\r\nContent-Length: 00" + str(len(hidden_in_body)).encode() + b"\n\n" + hidden_in_body
        + _packet(0, b"Location: rtsp://127.0.0.9/packet\n\n")
        + b"\r\r" + _packet(1, b"\r\n")
        + b"RTSP/1.0 302 Found\r\nCSeq: 2\r\nlocation:rtsp://127.0.0.9:1/first\r\n"
        + _packet(0, b"among the head")
        + b"LOCATION:   rtsps://127.0.0.7:7/last?x=1\r\r\n\r\n"
    )
    try:
        answered, received = _relayed_answers(proxy, sent)
    finally:
        proxy.close()
    assert received and received[0].startswith(b"DESCRIBE rtsp://cam:secret@127.0.0.1:")
    ok_head, _, rest = answered.partition(b"\r\n\r\n")
    assert ok_head == b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 00" + str(len(hidden_in_body)).encode()
    assert rest.startswith(hidden_in_body + _packet(0, b"Location: rtsp://127.0.0.9/packet\n\n") + _packet(1, b"\r\n"))
    rest = rest.removeprefix(hidden_in_body + _packet(0, b"Location: rtsp://127.0.0.9/packet\n\n") + _packet(1, b"\r\n"))
    assert rest.startswith(_packet(0, b"among the head"))  # passed on before the head it came among
    redirect = rest.removeprefix(_packet(0, b"among the head")).split(b"\r\n")
    assert redirect[:2] == [b"RTSP/1.0 302 Found", b"CSeq: 2"] and redirect[-2:] == [b"", b""]
    locations = [line for line in redirect if line.lower().startswith(b"location:")]
    assert len(locations) == 1 and locations[0].startswith(b"Location: rtsp://127.0.0.1:")
    assert locations[0].endswith(b"/last?x=1") and b"127.0.0.7" not in answered and b"127.0.0.9:1" not in answered


def test_the_rtsp_relay_ends_a_connection_at_a_redirect_it_may_not_follow():
    """A Location of another scheme, or of no host, or one redirect too many: nothing of that answer reaches FFmpeg,
    and its connection ends there."""
    proxy = StreamEgressProxy([ipaddress.ip_network("127.0.0.0/24")], ["rtsp"], 2.0).start()
    try:
        for location in (b"http://127.0.0.1/stream.mjpg", b"rtsps://127.0.0.1/live", b"rtsp:///live", b"rtsp://127.0.0.1:99999/x"):
            answered, _ = _relayed_answers(proxy, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nRTSP/1.0 301 Moved\r\nLocation: " + location + b"\r\n\r\n")
            assert answered == b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n", location
        redirect = b"RTSP/1.0 302 Found\r\nLocation: rtsp://127.0.0.1/next\r\n\r\n"
        answered, _ = _relayed_answers(proxy, redirect * (MAX_REDIRECTS + 1))
        assert answered.count(b"302 Found") == MAX_REDIRECTS and answered.endswith(b"/next\r\n\r\n")
    finally:
        proxy.close()


def test_the_rtsp_relay_ends_a_connection_at_an_answer_past_its_limits():
    """A head or a line past 64 kB, a body past 1 MB: nothing of it reaches FFmpeg, the connection ends, counted."""
    proxy = StreamEgressProxy([ipaddress.ip_network("127.0.0.0/24")], ["rtsp"], 2.0).start()
    long_line = b"RTSP/1.0 200 OK\r\nX-Padding: " + b"p" * HEAD_LIMIT_BYTES + b"\r\n\r\n"
    many_lines = b"RTSP/1.0 200 OK\r\n" + b"X-Padding: pppppppppppppppp\r\n" * (HEAD_LIMIT_BYTES // 16) + b"\r\n"
    long_body = b"RTSP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (BODY_LIMIT_BYTES + 1)
    try:
        for sent in (long_line, many_lines, long_body):
            before = metric("classpulse_ingest_stream_rtsp_relay_connections_total", outcome="bad_answer")
            answered, _ = _relayed_answers(proxy, sent + b"v=0\r\n" * 10)
            assert answered == b""
            assert metric("classpulse_ingest_stream_rtsp_relay_connections_total", outcome="bad_answer") == before + 1
    finally:
        proxy.close()
