"""FFmpeg's per-kind limits (protocols, formats) apply to the one capture they were set for: OpenCV reads them from
the environment, and left there they would limit every later capture of the process to the last kind's formats. And
what FFmpeg is given to open for a stream names no host it would resolve itself: an RTSP stream is read at the egress
proxy's RTSP relay, an HTTP one through the proxy."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest

from classpulse_ingest.diagnose import SourceError
from classpulse_ingest.egress import StreamEgressProxy
from classpulse_ingest.hls_relay import HlsSession
from classpulse_ingest.rtsp_relay import RelayedCamera
from classpulse_ingest.video import SourceSpec, Timeouts, _open_capture, ffmpeg_input

pytestmark = pytest.mark.unit


@pytest.fixture
def proxy():
    made = StreamEgressProxy([], ["rtsp", "rtsps", "http", "https"], 1.0).start()
    yield made
    made.close()


def test_a_streams_ffmpeg_limits_do_not_outlive_its_open(tmp_path, proxy):
    video = tmp_path / "lesson.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for n in range(5):
        writer.write(np.full((48, 64, 3), 40 * n, np.uint8))
    writer.release()
    before = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
    spec = SourceSpec("rtsp://127.0.0.1:1/camera")
    with pytest.raises(SourceError):
        _open_capture(spec, Timeouts(open_ms=500, read_ms=500), ffmpeg_input(spec, proxy))
    assert os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS") == before
    capture = cv2.VideoCapture(str(video))  # a later reader of an mp4 file, with no limits of its own
    assert capture.isOpened() and capture.read()[0]
    capture.release()


@pytest.mark.parametrize(
    ("url", "relayed"),
    [
        ("rtsp://admin:p%40ss@camera.school.test:8554/live?channel=1", "rtsp://admin:p%40ss@127.0.0.1:{port}/live?channel=1"),
        ("rtsps://camera.school.test/live", "rtsp://127.0.0.1:{port}/live"),
        ("rtsp://user@[2001:db8::1]:554/", "rtsp://user@127.0.0.1:{port}/"),
    ],
)
def test_an_rtsp_stream_is_read_at_a_port_of_the_relay_with_tcp_alone(url, relayed, proxy):
    """FFmpeg was handed the camera's checked address, and followed the camera's redirects and the UDP ports it named
    by itself. It now reads the camera at a port of the egress proxy's RTSP relay (plain RTSP: the relay does an rtsps
    camera's TLS), its credentials, path and query kept, and over TCP alone."""
    source = ffmpeg_input(SourceSpec(url), proxy)
    try:
        assert isinstance(source.relayed, RelayedCamera)
        port = urlsplit(source.url).port
        assert source.url == relayed.format(port=port) and port != urlsplit(url).port
        assert source.options == "protocol_whitelist;tcp|format_whitelist;rtsp|rtsp_transport;tcp"
    finally:
        source.close()


def test_an_http_stream_is_opened_by_its_name_through_the_egress_proxy(proxy, monkeypatch):
    # Whether the stream is a playlist is asked of it first, through the proxy: its name resolves here to an address
    # of no network the proxy allows, so the look is refused at once, touching no network.
    resolve = socket.getaddrinfo

    def resolving(host, *args, **kwargs):
        return resolve("192.0.2.1" if host == "camera.school.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolving)
    url = "http://camera.school.test:8080/video.mjpg"
    source = ffmpeg_input(SourceSpec(url), proxy)
    assert source.url == url and source.options.endswith(f"|http_proxy;{proxy.url}")
    tunnelled = ffmpeg_input(SourceSpec("https://camera.school.test/video.mjpg"), proxy)
    assert "httpproxy" in tunnelled.options  # https tunnels through it with CONNECT
    for stream in (url, "rtsp://camera.school.test/live"):
        with pytest.raises(SourceError, match="only through the egress proxy"):
            ffmpeg_input(SourceSpec(stream), None)


def test_an_hls_playlist_is_read_at_the_proxys_relay_with_plain_http_alone(proxy):
    """An HTTPS playlist was refused: what FFmpeg needs for HTTPS through the proxy (httpproxy) would let a playlist's
    httpproxy:// segments past it. It is now handed to FFmpeg as a URL of the proxy's HLS relay, which reads it over
    TLS itself, and FFmpeg may speak nothing but plain HTTP (through the proxy). So is an HTTP playlist, whose https
    segments FFmpeg could not reach through the proxy."""
    location = "https://relay.school.test/live/room-12.M3U8?token=s3cret"
    relayed = ffmpeg_input(SourceSpec(location), proxy)
    over_http = ffmpeg_input(SourceSpec("http://relay.school.test/live/room-12.m3u8"), proxy)
    assert isinstance(relayed.relayed, HlsSession) and isinstance(over_http.relayed, HlsSession)
    assert over_http.url == over_http.relayed.url_for("http://relay.school.test/live/room-12.m3u8")
    assert relayed.url == relayed.relayed.url_for(location) and relayed.url.endswith("/room-12.M3U8")
    assert proxy.relay.request_of(relayed.url) == (relayed.relayed, location)
    # Each open is a session of its own (its cookies its own), whose relay URLs name nothing once it is closed.
    again = ffmpeg_input(SourceSpec(location), proxy)
    assert again.url != relayed.url
    relayed.close()
    assert proxy.relay.request_of(relayed.url) == (None, location) and proxy.relay.request_of(again.url) == (again.relayed, location)
    protocols, formats, through = relayed.options.split("|")
    assert protocols == "protocol_whitelist;http,tcp,crypto" and "hls" in formats and through == f"http_proxy;{proxy.url}"
    assert over_http.options == relayed.options and over_http.playlist and relayed.playlist


def test_a_relayed_stream_that_does_not_open_is_reported_by_its_own_url(proxy):
    spec = SourceSpec("rtsp://admin:cam-secret@camera.school.test:1/live")
    with pytest.raises(SourceError) as failed:
        _open_capture(spec, Timeouts(open_ms=500, read_ms=500), ffmpeg_input(spec, proxy))
    assert str(failed.value).startswith("rtsp://***@camera.school.test:1/live did not open")
