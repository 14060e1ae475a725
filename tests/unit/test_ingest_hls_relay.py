"""The egress proxy's HLS relay rewrites every URI of a playlist to a relay URL of the absolute URL it resolves to (so
FFmpeg asks the proxy for each, checked then), reading lines and attributes as FFmpeg does: a URI the rewriting
missed would reach FFmpeg as it is."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from classpulse_ingest.hls_relay import MAX_SESSION_COOKIES, SessionCookies, relay_url, rewritten_playlist, upstream_url

pytestmark = pytest.mark.unit

RELAY = "http://127.0.0.1:4100/hls/k3y"
PLAYLIST_URL = "https://cdn.school.test/lessons/room-12/index.m3u8?token=s3cret"


def relayed(url: str) -> str:
    return relay_url(RELAY, url)


def test_a_relay_url_names_its_upstream_and_ends_in_its_name():
    """FFmpeg's HLS demuxer judges a segment by its URL's extension: the relay URL keeps the upstream's last segment."""
    upstream = "https://cdn.school.test/lessons/room-12/segment0.ts?token=s3cret&part=1"
    url = relayed(upstream)
    assert url.startswith(f"{RELAY}/") and url.endswith("/segment0.ts")
    assert upstream_url(RELAY, url) == upstream
    assert upstream_url(RELAY, "http://127.0.0.1:4100/metrics") is None
    assert upstream_url(RELAY, url.replace("/k3y/", "/guessed/")) is None  # a URL the relay did not make
    assert upstream_url(RELAY, f"{RELAY}/a/x.ts") == ""  # no URL in it: refused as naming no scheme


def test_every_uri_of_a_media_playlist_is_relayed_resolved_against_the_playlist():
    playlist = "\n".join([
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:4",
        '#EXT-X-KEY:METHOD=AES-128,URI="keys/k1.bin",IV=0x00000000000000000000000000000001',
        '#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"',
        "#EXTINF:4.0,lesson, part 1",
        "seg0.m4s",
        "#EXT-X-BYTERANGE:1000@0",
        "#EXTINF:4.0,",
        "../other/seg1.m4s?token=abc",
        "#EXTINF:4.0,",
        "/root/seg2.m4s",
        "#EXTINF:4.0,",
        "//cdn2.school.test/seg3.m4s",
        "#EXTINF:4.0,",
        "https://cdn3.school.test/seg4.m4s",
        '#EXT-X-PART:DURATION=1.0,URI="part5.0.m4s"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part5.1.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../alt/index.m3u8",LAST-MSN=5',
        "",
        "#EXT-X-ENDLIST",
        "",
    ])
    base = "https://cdn.school.test/lessons/room-12"
    assert rewritten_playlist(playlist, PLAYLIST_URL, RELAY) == "\n".join([
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:4",
        f'#EXT-X-KEY:METHOD=AES-128,URI="{relayed(f"{base}/keys/k1.bin")}",IV=0x00000000000000000000000000000001',
        f'#EXT-X-MAP:URI="{relayed(f"{base}/init.mp4")}",BYTERANGE="720@0"',
        "#EXTINF:4.0,lesson, part 1",
        relayed(f"{base}/seg0.m4s"),
        "#EXT-X-BYTERANGE:1000@0",
        "#EXTINF:4.0,",
        relayed("https://cdn.school.test/lessons/other/seg1.m4s?token=abc"),
        "#EXTINF:4.0,",
        relayed("https://cdn.school.test/root/seg2.m4s"),
        "#EXTINF:4.0,",
        relayed("https://cdn2.school.test/seg3.m4s"),
        "#EXTINF:4.0,",
        relayed("https://cdn3.school.test/seg4.m4s"),
        f'#EXT-X-PART:DURATION=1.0,URI="{relayed(f"{base}/part5.0.m4s")}"',
        f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{relayed(f"{base}/part5.1.m4s")}"',
        f'#EXT-X-RENDITION-REPORT:URI="{relayed("https://cdn.school.test/lessons/alt/index.m3u8")}",LAST-MSN=5',
        "",
        "#EXT-X-ENDLIST",
        "",
    ])


def test_every_uri_of_a_master_playlist_is_relayed():
    playlist = "\n".join([
        "#EXTM3U",
        '#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://keys.school.test/session.key"',
        '#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="title.json"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English, main",DEFAULT=YES,URI="audio/en.m3u8"',
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="iframes.m3u8"',
        '#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"',
        "https://media.school.test/video/720.m3u8",
    ])
    base = "https://cdn.school.test/lessons/room-12"
    assert rewritten_playlist(playlist, PLAYLIST_URL, RELAY).split("\n") == [
        "#EXTM3U",
        f'#EXT-X-SESSION-KEY:METHOD=AES-128,URI="{relayed("https://keys.school.test/session.key")}"',
        f'#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="{relayed(f"{base}/title.json")}"',
        f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English, main",DEFAULT=YES,URI="{relayed(f"{base}/audio/en.m3u8")}"',
        f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="{relayed(f"{base}/iframes.m3u8")}"',
        '#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"',
        relayed("https://media.school.test/video/720.m3u8"),
    ]


@pytest.mark.parametrize(
    "uri",
    ["httpproxy://10.20.0.9:3128/seg.ts", "file:///etc/passwd", "crypto+https://cdn.school.test/seg.ts", "data:text/plain;base64,AAAA",
     "tcp://10.20.0.9:80"],
)
def test_a_uri_of_another_scheme_becomes_a_relay_url_of_it_as_it_is(uri):
    """Refused when FFmpeg asks for it (only http and https are relayed): FFmpeg is never handed it."""
    playlist = f'#EXTM3U\n#EXT-X-MAP:URI="{uri}"\n#EXTINF:4,\n{uri}\n'
    assert rewritten_playlist(playlist, PLAYLIST_URL, RELAY) == f'#EXTM3U\n#EXT-X-MAP:URI="{relayed(uri)}"\n#EXTINF:4,\n{relayed(uri)}\n'


@pytest.mark.parametrize(
    ("line", "rewritten", "uris"),
    [
        # FFmpeg takes a bare value to the next comma or white space, and white space between attributes.
        ("#EXT-X-KEY:METHOD=AES-128,URI=https://keys.evil.test/k,IV=0x1", '#EXT-X-KEY:METHOD=AES-128,URI="{}",IV=0x1', ["https://keys.evil.test/k"]),
        ('#EXT-X-KEY:METHOD=AES-128 URI="k.bin"', '#EXT-X-KEY:METHOD=AES-128 URI="{}"', ["k.bin"]),
        # ... a backslash in a quoted value as an escape: the value FFmpeg reads is the one relayed.
        ('#EXT-X-MAP:URI="in\\"it.mp4"', '#EXT-X-MAP:URI="{}"', ['in"it.mp4']),
        # ... so this name hides no URI from FFmpeg, and the one after it is relayed.
        ('#EXT-X-MEDIA:NAME="a\\",URI=\\"https://evil.test/\\"",URI="en.m3u8"', '#EXT-X-MEDIA:NAME="a\\",URI=\\"https://evil.test/\\"",URI="{}"', ["en.m3u8"]),
        # A name FFmpeg runs to the '=' past a separator ("X,URI"), ignoring it: relayed all the same, for a stricter reader.
        ('#EXT-X-KEY:X,URI="https://evil.test/k"', '#EXT-X-KEY:X,URI="{}"', ["https://evil.test/k"]),
        # No attributes: the tag as it is.
        ("#EXTINF:4.0,URI is in the title", "#EXTINF:4.0,URI is in the title", []),
        ("#EXT-X-ENDLIST", "#EXT-X-ENDLIST", []),
    ],
)
def test_attributes_are_read_as_ffmpeg_reads_them(line, rewritten, uris):
    relay_urls = [relayed(f"https://cdn.school.test/lessons/room-12/{uri}" if "://" not in uri else uri) for uri in uris]
    assert rewritten_playlist(f"#EXTM3U\n{line}", PLAYLIST_URL, RELAY) == f"#EXTM3U\n{rewritten.format(*relay_urls)}"


def test_lines_end_where_ffmpeg_ends_them():
    """FFmpeg ends a line at \\r and at a NUL byte as at \\n: a segment after either is a line of its own to it, so
    to the rewriting, and the lines are joined again with \\n alone."""
    playlist = "#EXTM3U\r\n#EXTINF:4,\rhttps://evil.test/a.ts\r#EXTINF:4,\0https://evil.test/b.ts\n   \n"
    assert rewritten_playlist(playlist, PLAYLIST_URL, RELAY) == (
        f"#EXTM3U\n#EXTINF:4,\n{relayed('https://evil.test/a.ts')}\n#EXTINF:4,\n{relayed('https://evil.test/b.ts')}\n   \n"
    )


def _set(cookies: SessionCookies, url: str, *set_cookies: str) -> None:
    cookies.remember(url, [b"Content-Type: application/vnd.apple.mpegurl", *(f"Set-Cookie: {c}".encode() for c in set_cookies)])


def test_a_sessions_cookies_go_back_as_a_browser_sends_them():
    """Each to the host (or the domain it names) and path that set it, a Secure one over https alone, until it
    expires; a cookie for a domain the host is not in is refused, as browsers refuse it."""
    cookies = SessionCookies()
    _set(
        cookies, "https://cdn.school.test/lessons/room-12/index.m3u8",
        "host=1; Path=/", "lessons=2; Path=/lessons", "domain=3; Domain=school.test; Path=/",
        "secure=4; Path=/; Secure", "gone=5; Path=/; Max-Age=0", "foreign=6; Domain=other.test; Path=/",
    )
    sent = (cookies.header_for("https://cdn.school.test/lessons/room-12/segment0.ts") or "").split("; ")
    assert sent[0] == "lessons=2" and set(sent) == {"lessons=2", "host=1", "domain=3", "secure=4"}  # longer paths first
    assert set((cookies.header_for("http://cdn.school.test/other/segment0.ts") or "").split("; ")) == {"host=1", "domain=3"}
    assert cookies.header_for("https://media.school.test/segment0.ts") == "domain=3"  # the others are the host's alone
    assert cookies.header_for("https://other.test/segment0.ts") is None
    assert len(cookies) == 4


def test_a_session_keeps_a_bounded_number_of_cookies():
    """A host setting a new cookie on every reload of a live playlist fills no memory: past the bound new cookies are
    dropped and counted, and a kept one is still replaced."""
    cookies = SessionCookies()
    url = "https://cdn.school.test/live/index.m3u8"
    dropped_before = REGISTRY.get_sample_value("classpulse_ingest_stream_hls_relay_cookies_dropped_total") or 0.0
    _set(cookies, url, *(f"c{n}=v; Path=/" for n in range(MAX_SESSION_COOKIES + 10)))
    _set(cookies, url, "c0=replaced; Path=/")
    assert len(cookies) == MAX_SESSION_COOKIES
    assert REGISTRY.get_sample_value("classpulse_ingest_stream_hls_relay_cookies_dropped_total") == dropped_before + 10
    assert "c0=replaced" in (cookies.header_for(url) or "").split("; ")
