"""The egress proxy FFmpeg reaches HTTP(S) streams through, spoken to directly: one request per connection (so a
connection kept alive cannot go on to another host unchecked), each destination checked, anything else refused."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator

import pytest

from address_support import resolving_to, silent_addresses
from classpulse_ingest.egress import StreamEgressProxy
from ingest_support import VideoServer, metric

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
