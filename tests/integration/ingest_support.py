"""What the ingest tests share: videos and images made at test time, local HTTP(S) video servers (files, HLS, an MJPEG
stream that can drop and come back), registered classes, settings pointing at a
test's own topic, a Kafka broker of a module's own that a test may freeze, and reading back what reached Kafka."""

from __future__ import annotations

import dataclasses
import http.server
import os
import signal
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import REGISTRY

from classpulse_core.schemas import Frame
from classpulse_core.settings import KafkaSettings
from classpulse_devstack.components import Component
from classpulse_devstack.stack import Stack
from classpulse_ingest.settings import IngestSettings
from classpulse_store.registry import ClassRecord, class_key
from free_ports import free_port

SIZE = (320, 240)
FRAMES_TOPIC = "classpulse.frames"  # a private broker's, made by the devstack


def numbered_image(number: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A frame that says which one it is: its number drawn large, on a background that changes with it."""
    image = np.full((size[1], size[0], 3), (number * 11) % 200 + 30, np.uint8)
    cv2.putText(image, str(number), (20, size[1] // 2 + 30), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 6)
    return image


def write_video(path: Path, fourcc: str, frames: int, fps: float = 10.0, size: tuple[int, int] = SIZE) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} into {path.suffix}"
    for number in range(frames):
        writer.write(numbered_image(number, size))
    writer.release()
    return path


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Classes and settings ----------------------------------------------------------------------------------------


@pytest.fixture
def make_class(redis_client) -> Iterator:
    """`make_class(teacher=None)` registers a class with a fresh id and returns the id; removed afterwards."""
    made: list[str] = []

    def make(teacher: str | None = None) -> str:
        class_id = f"ingest-{uuid.uuid4().hex[:10]}"
        record = ClassRecord(class_id=class_id, teacher=teacher, created_at_ms=int(time.time() * 1000))
        redis_client.hset(class_key(class_id), mapping=record.to_hash())
        made.append(class_id)
        return class_id

    yield make
    for class_id in made:
        redis_client.delete(class_key(class_id))
        for key in redis_client.scan_iter(match=f"ingest:*{{{class_id}}}*"):
            redis_client.delete(key)


def ingest_settings(infra, kafka_bootstrap: str, topic: str, **overrides: object) -> IngestSettings:
    """Settings of an ingest whose frames go to the test's own topic."""
    fields: dict[str, object] = {
        "kafka": KafkaSettings(bootstrap_servers=kafka_bootstrap, frames_topic=topic),
        "redis_url": f"redis://127.0.0.1:{infra.config.redis_port}/0",
        "reconnect_initial_s": 0.2,
        "reconnect_max_s": 1.0,
        "stream_open_timeout_ms": 3000,
        "stream_read_timeout_ms": 2000,
        "source_allowed_networks": ["127.0.0.0/8"],  # the tests' cameras are local servers
        **overrides,
    }
    return IngestSettings(**fields)


# --- A Kafka broker of the module's own ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_kafka(devstack, tmp_path_factory) -> Iterator[tuple[Stack, list[Component]]]:
    """A broker on free ports with its data under tmp: a test may freeze it or stop it without touching the others'."""
    config = dataclasses.replace(
        devstack.config,
        run_dir=tmp_path_factory.mktemp("kafka"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    stack = Stack(config)
    yield stack, stack.select("kafka")
    stack.down(stack.select("kafka"))


@pytest.fixture
def kafka_up(private_kafka) -> tuple[Stack, list[Component]]:
    stack, kafka = private_kafka
    stack.up(kafka)
    _every_partition_takes_frames(stack.config.kafka_bootstrap, FRAMES_TOPIC)
    return stack, kafka


def _every_partition_takes_frames(bootstrap: str, topic: str, timeout_s: float = 60.0) -> None:
    """Wait until a probe frame (source `probe`) is acknowledged on every partition: a broker just started answers
    NotLeaderForPartition for a while, and a frame refused then is lost for good (counted as delivery_failed)."""
    now = int(time.time() * 1000)
    probe = Frame(
        class_id="probe", source_id="probe", frame_id="probe:0", sequence=0, captured_at_ms=now, published_at_ms=now,
        width=SIZE[0], height=SIZE[1], jpeg=jpeg(numbered_image(0)),
    ).encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    deadline = time.monotonic() + timeout_s
    try:
        for partition in sorted(producer.partitions_for(topic)):
            while True:
                try:
                    producer.send(topic, probe, partition=partition).get(timeout=10)
                    break
                except KafkaError:
                    assert time.monotonic() < deadline, f"partition {partition} of {topic} takes no frame"
                    time.sleep(0.5)
    finally:
        producer.close()


@contextmanager
def frozen(stack: Stack, server: list[Component]) -> Iterator[None]:
    """The server (a Kafka broker, a Redis) stops answering while its connections stay open: at its slowest."""
    pid = stack.status(server)[0].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def read_frames(bootstrap: str, topic: str, expected: int | None = None, quiet_s: float = 2.0, timeout_s: float = 30.0) -> list[Frame]:
    """Every frame on `topic`: until `expected` have arrived, or until nothing new came for `quiet_s`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for records in batch.values():
                frames.extend(Frame.decode(record.value) for record in records)
                last_new = time.monotonic()
            if expected is not None and len(frames) >= expected:
                # Wait a little more: a bug that publishes too much must show up as too many.
                if time.monotonic() - last_new > 1.0:
                    break
            elif expected is None and time.monotonic() - last_new > quiet_s:
                break
        return sorted(frames, key=lambda f: (f.source_id, f.sequence))
    finally:
        consumer.close()


# --- Local video servers -------------------------------------------------------------------------------------------


class VideoServer:
    """A local HTTP server of a folder's files (recordings, HLS playlists) and of an endless MJPEG stream at
    /stream.mjpg (multipart/x-mixed-replace, as IP cameras serve it), on `host` (and `port`, any by default), with a
    302 for each path of `redirects`, the Content-Type of `content_types` for each path there (a playlist named
    otherwise, as some services name theirs); HTTPS with `tls` (a context with its certificate); with `cookie` (name=value), a
    CDN that authenticates segments by a cookie: every playlist's answer sets it, anything else is a 403 without it.
    `requested` lists the requests it had (their first lines), `request_headers` their headers. `stop()` drops every
    connection; `start()` again serves on the same port, as a camera coming back."""

    def __init__(
        self,
        folder: Path,
        stream_fps: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        redirects: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        cookie: str | None = None,
        content_types: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.cookie = cookie
        self.content_types = content_types or {}
        self.stream_fps = stream_fps
        self.host = host
        self.port = port
        self.redirects = redirects or {}
        self.tls = tls
        self.requested: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> VideoServer:
        self._stopped.clear()
        server = _TlsServer((self.host, self.port), self._handler(), self.tls)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        video_server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(video_server.folder), **kwargs)

            def parse_request(self) -> bool:
                parsed = super().parse_request()
                video_server.requested.append(self.requestline)
                video_server.request_headers.append(dict(self.headers or {}))
                return parsed

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                if self.path in video_server.redirects:
                    self.send_response(302)
                    self.send_header("Location", video_server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/stream.mjpg":
                    self._stream()
                elif self._cookie_missing():
                    self.send_error(403)
                else:
                    super().do_GET()

            def guess_type(self, path) -> str:
                return video_server.content_types.get(self.path) or super().guess_type(path)

            def _cookie_missing(self) -> bool:
                cookie = video_server.cookie
                return cookie is not None and not self.path.endswith(".m3u8") and cookie not in self.headers.get("Cookie", "").split("; ")

            def end_headers(self) -> None:
                if video_server.cookie is not None and self.path.endswith(".m3u8"):
                    self.send_header("Set-Cookie", f"{video_server.cookie}; Path=/; Secure; HttpOnly")
                super().end_headers()

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                number = 0
                while not video_server._stopped.is_set():
                    body = jpeg(numbered_image(number))
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(body)
                    try:
                        self.wfile.write(part + body + b"\r\n")
                    except OSError:
                        return
                    number += 1
                    time.sleep(1 / video_server.stream_fps)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        return Handler


class _TlsServer(http.server.ThreadingHTTPServer):
    """Plain HTTP, or HTTPS with `tls`: the handshake in the connection's own thread, so that a client refusing the
    certificate holds no other connection up (and is no error to report)."""

    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None) -> None:
        super().__init__(address, handler)
        self.tls = tls

    def finish_request(self, request, client_address) -> None:
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def write_hls(folder: Path, segments: int = 2, frames_per_segment: int = 20, fps: float = 10.0, key: bytes | None = None) -> Path:
    """An HLS VOD playlist of MPEG-TS segments (MPEG-4 part 2 video, which OpenCV's FFmpeg writes), with relative
    URIs; with `key`, segments encrypted with it (AES-128, each one's IV its sequence number), served at key.bin."""
    folder.mkdir(parents=True, exist_ok=True)
    for segment in range(segments):
        path = folder / f"segment{segment}.ts"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
        for number in range(frames_per_segment):
            writer.write(numbered_image(segment * frames_per_segment + number))
        writer.release()
        if key is not None:
            padder = padding.PKCS7(128).padder()
            encryptor = Cipher(algorithms.AES(key), modes.CBC(segment.to_bytes(16, "big"))).encryptor()
            path.write_bytes(encryptor.update(padder.update(path.read_bytes()) + padder.finalize()) + encryptor.finalize())
    if key is not None:
        (folder / "key.bin").write_bytes(key)
    duration = frames_per_segment / fps
    entries = "".join(f"#EXTINF:{duration:.1f},\nsegment{segment}.ts\n" for segment in range(segments))
    playlist = folder / "index.m3u8"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{int(duration) + 1}\n#EXT-X-MEDIA-SEQUENCE:0\n"
        + ('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n' if key is not None else "")
        + f"{entries}#EXT-X-ENDLIST\n"
    )
    return playlist


def wait_until(condition, timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())
