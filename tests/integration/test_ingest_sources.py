"""Every kind of source ingest reads, for real, into a topic of the test's own on the real Kafka: video files in
four containers, a folder of images, an HTTP file, an HLS playlist over HTTP and over HTTPS, an MJPEG camera stream
that drops and comes back, an RTSP stream, a webcam index; and every way a source can fail, each with its reason."""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from address_support import resolving_to, silent_addresses
from classpulse_aggregator.writer import SeriesWriter, Written
from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import StorageSettings
from classpulse_ingest import publish
from classpulse_ingest.diagnose import SourceError, unopened_stream
from classpulse_ingest.egress import StreamEgressProxy
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.publisher import RUN_SEQUENCE_BLOCK
from classpulse_ingest.runner import SourceRunner, SourceState
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.video import SourceKind, SourceSpec, open_reader, webcam_index
from classpulse_store.registry import ClassRecord, class_key
from ingest_support import (
    VideoServer,
    ingest_settings,
    jpeg,
    make_class,  # noqa: F401 (a fixture)
    metric,
    numbered_image,
    png,
    read_frames,
    wait_until,
    write_hls,
    write_video,
)
from rtsp_server import RtspServer
from tls_support import CertificateAuthority

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def topic(topic_factory) -> str:
    return topic_factory(3)


@pytest.fixture
def pipeline_for(infra, kafka_bootstrap, topic):
    """`pipeline_for(**settings)`: a Pipeline publishing to the test's topic; closed (drained) afterwards."""
    made: list[Pipeline] = []

    def make(**overrides: object) -> Pipeline:
        made.append(Pipeline(ingest_settings(infra, kafka_bootstrap, topic, **overrides), "test-ingest"))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close(10)


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def run_to_the_end(pipeline: Pipeline, location: str, class_id: str, fps: float, timeout_s: float = 60, **options):
    runner = pipeline.runner(SourceSpec(location), class_id, fps, **options).start()
    assert runner.wait(timeout_s), f"source still {runner.state} after {timeout_s}s"
    pipeline.sender.close(10)  # every acknowledgement counted before the status is read
    return runner.status()


def waited_then_stopped(runners: list[SourceRunner], *servers: VideoServer) -> None:
    """Each of `runners` given 30 s to end by itself, then stopped; then `servers`."""
    try:
        for runner in runners:
            runner.wait(30)
    finally:
        for runner in runners:
            runner.stop()
            runner.wait(15)
        for server in servers:
            server.stop()


# --- Video files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,fourcc", [("mp4", "mp4v"), ("avi", "MJPG"), ("mkv", "XVID"), ("webm", "VP80")])
def test_video_files_are_sampled_at_the_requested_rate(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class, suffix, fourcc):
    video = write_video(tmp_path / f"lesson.{suffix}", fourcc, frames=20, fps=10)  # 2 s
    class_id = make_class()
    status = run_to_the_end(pipeline_for(), str(video), class_id, fps=2.5, realtime=False, session_id="lesson-1")

    frames = read_frames(kafka_bootstrap, topic, expected=5)
    assert status.state == SourceState.ENDED and status.frames_published == 5
    # 2.5 frames/s of a 10 frames/s video: every fourth frame, on the video's own timeline.
    assert [f.sequence for f in frames] == [0, 1, 2, 3, 4]
    assert {f.class_id for f in frames} == {class_id} and {f.session_id for f in frames} == {"lesson-1"}
    assert {f.source_id for f in frames} == {status.source_id} and status.source_id.startswith("file-")
    assert [f.frame_id for f in frames] == [f"{status.source_id}:{n}" for n in range(5)]
    assert [b.captured_at_ms - a.captured_at_ms for a, b in itertools.pairwise(frames)] == [400] * 4
    decoded = [decode(f.jpeg) for f in frames]
    expected = [numbered_image(n) for n in (0, 4, 8, 12, 16)]
    assert all(abs(float(d.mean()) - float(e.mean())) < 4 for d, e in zip(decoded, expected, strict=True))


def test_a_recording_at_its_own_pace_takes_its_own_time(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    video = write_video(tmp_path / "lesson.mp4", "mp4v", frames=15, fps=10)  # 1.5 s
    started = time.monotonic()
    status = run_to_the_end(pipeline_for(), str(video), make_class(), fps=4)
    assert time.monotonic() - started >= 1.2  # the last sampled frame is at 1.25 s of the video
    assert status.frames_published == len(read_frames(kafka_bootstrap, topic, expected=6)) == 6


def test_oversized_frames_are_downscaled_and_quality_applies(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    video = write_video(tmp_path / "big.avi", "MJPG", frames=4, fps=4, size=(1920, 1080))
    status = run_to_the_end(pipeline_for(max_frame_side=640, jpeg_quality=40), str(video), make_class(), fps=4, realtime=False)
    frames = read_frames(kafka_bootstrap, topic, expected=4)
    assert status.frames_published == 4
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    image = decode(frames[0].jpeg)
    assert image.shape == (360, 640, 3)
    assert len(frames[0].jpeg) < len(jpeg(image, quality=85))  # quality 40 is smaller than the default would be


def test_publish_command_prints_the_final_state_and_fails_loudly(tmp_path, infra, kafka_bootstrap, topic, make_class):
    video = write_video(tmp_path / "lesson.mp4", "mp4v", frames=10, fps=10)
    env = {
        **os.environ,
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLASSPULSE_KAFKA_FRAMES_TOPIC": topic,
        "CLASSPULSE_REDIS_URL": f"redis://127.0.0.1:{infra.config.redis_port}/0",
        "CLASSPULSE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "classpulse_ingest", "publish", "--class", make_class(), "--fps", "5"]
    done = subprocess.run([*command, "--source", str(video), "--no-realtime"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "ended" and summary["frames"] == summary["frames_published"] == 5
    # The capture-time span the demo waits on: 5 frames/s of a file, on its own timeline.
    assert summary["last_captured_at_ms"] - summary["first_captured_at_ms"] == 800
    assert len(read_frames(kafka_bootstrap, topic, expected=5)) == 5

    failed = subprocess.run([*command, "--source", str(tmp_path / "nope.mp4")], env=env, capture_output=True, text=True, timeout=120)
    summary = json.loads(failed.stdout.strip().splitlines()[-1])
    assert failed.returncode == 1 and summary["state"] == "failed" and "no such file" in summary["reason"]


def test_a_run_again_under_the_same_source_id_is_counted_not_taken_for_redeliveries(
    tmp_path, infra, kafka_bootstrap, topic, redis_client, class_id
):
    """A lesson's second part (or a run again after a crash) published under the same --source-id, its frames taken
    in the same minute as the first part's: the aggregator counts every frame of both, and a redelivery still once."""
    redis_client.hset(class_key(class_id), mapping=ClassRecord(class_id=class_id).to_hash())
    parser = argparse.ArgumentParser()
    publish.add_arguments(parser)
    minute_s = (int(time.time()) // 60 - 2) * 60  # a whole minute in the past, within what the raw series keep
    statuses = []
    for part in range(2):
        folder = tmp_path / f"part-{part}"
        folder.mkdir()
        for index in range(3):
            image = folder / f"{index:02}.jpg"
            image.write_bytes(jpeg(numbered_image(part * 3 + index)))
            os.utime(image, (minute_s + part * 30 + index,) * 2)
        args = parser.parse_args(["--class", class_id, "--source", str(folder), "--fps", "20", "--source-id", "room-101"])
        statuses.append(publish.publish_source(ingest_settings(infra, kafka_bootstrap, topic), args, StopSignal()))

    frames = read_frames(kafka_bootstrap, topic, expected=6)
    assert [status.frames_published for status in statuses] == [3, 3]
    assert {f.captured_at_ms // 60_000 for f in frames} == {minute_s // 60}
    results = [FrameResult(**f.identity(), completed_at_ms=f.published_at_ms, boxes=[]) for f in frames]
    writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
    assert [write.outcome for write in writer.write(results)] == [Written.NEW] * 6
    assert [write.outcome for write in writer.write(results)] == [Written.DUPLICATE] * 6
    second = RUN_SEQUENCE_BLOCK  # the second run numbers its frames after every number the first could use
    assert sorted(f.sequence for f in frames) == [0, 1, 2, second, second + 1, second + 2]


# --- A folder of images ------------------------------------------------------------------------------------------


def test_a_folder_of_images_in_name_order_skipping_the_bad_ones(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "01.jpg").write_bytes(jpeg(numbered_image(1)))
    (folder / "02.png").write_bytes(png(numbered_image(2)))
    (folder / "03.jpg").write_bytes(jpeg(numbered_image(3))[:500])  # cut short
    (folder / "04.JPEG").write_bytes(jpeg(numbered_image(4)))
    (folder / "notes.txt").write_text("not an image, not even looked at")
    taken = int(time.time()) - 600  # ten minutes ago: within what the raw series keep
    for index, path in enumerate(sorted(folder.iterdir())):
        os.utime(path, (taken + index, taken + index))
    skipped_before = metric("classpulse_ingest_images_skipped_total", reason="truncated")

    status = run_to_the_end(pipeline_for(), str(folder), make_class(), fps=20)

    frames = read_frames(kafka_bootstrap, topic, expected=3)
    assert status.state == SourceState.ENDED and status.kind == "folder"
    assert status.frames_published == 3 and status.images_skipped == 1
    assert metric("classpulse_ingest_images_skipped_total", reason="truncated") == skipped_before + 1
    # Each image is stamped with its own modification time (01, 02 and 04 of the sorted folder).
    assert [f.captured_at_ms for f in frames] == [taken * 1000, (taken + 1) * 1000, (taken + 3) * 1000]


def test_images_stamped_in_the_future_or_before_the_retention_are_refused(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    """One image with a file time a day ahead (a camera's clock gone wrong) would push the class's series ahead and
    make RedisTimeSeries refuse every honest sample after it; one from 2020 cannot be stored at all."""
    folder = tmp_path / "snapshots"
    folder.mkdir()
    now_s = int(time.time())
    for name, stamp in (("01.jpg", now_s - 30), ("02.jpg", now_s + 24 * 3600), ("03.jpg", 1_580_000_000), ("04.jpg", now_s - 20)):
        (folder / name).write_bytes(jpeg(numbered_image(int(name[1]))))
        os.utime(folder / name, (stamp, stamp))
    refused = {reason: metric("classpulse_capture_times_refused_total", stage="ingest", reason=reason)
               for reason in ("capture_time_future", "capture_time_too_old")}

    status = run_to_the_end(pipeline_for(), str(folder), make_class(), fps=20)

    frames = read_frames(kafka_bootstrap, topic, expected=2)
    assert [f.captured_at_ms for f in frames] == [(now_s - 30) * 1000, (now_s - 20) * 1000]
    assert status.frames_published == 2 and status.frames_dropped == {"capture_time": 2}
    for reason, before in refused.items():
        assert metric("classpulse_capture_times_refused_total", stage="ingest", reason=reason) == before + 1


# --- Recordings and streams over the network ---------------------------------------------------------------------


def test_an_http_file_and_an_hls_playlist_are_recordings_that_end(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    write_video(tmp_path / "lesson.mp4", "mp4v", frames=20, fps=10)
    write_hls(tmp_path / "hls", segments=2, frames_per_segment=20)
    server = VideoServer(tmp_path).start()
    try:
        class_id = make_class()
        pipeline = pipeline_for()
        over_http = pipeline.runner(SourceSpec(f"{server.url}/lesson.mp4"), class_id, 5, realtime=False).start()
        over_hls = pipeline.runner(SourceSpec(f"{server.url}/hls/index.m3u8"), class_id, 5, realtime=False).start()
        assert over_http.wait(60) and over_hls.wait(60)
    finally:
        server.stop()
    pipeline.sender.close(10)
    assert over_http.status().state == over_hls.status().state == SourceState.ENDED
    assert over_http.status().kind == "stream" and over_http.status().frames_published == 10
    assert over_hls.status().frames_published >= 18  # 4 s at 5 frames/s; segment seams may cost a frame
    by_source = {}
    for frame in read_frames(kafka_bootstrap, topic, expected=28):
        by_source.setdefault(frame.source_id, []).append(frame.sequence)
    assert by_source[over_http.source_id] == list(range(10))
    assert by_source[over_hls.source_id] == list(range(over_hls.status().frames_published))


def test_an_https_hls_playlist_is_read_through_the_egress_proxys_relay(tmp_path, monkeypatch, kafka_bootstrap, topic, pipeline_for, make_class):
    """An HLS playlist over HTTPS, as CDNs, cloud encoders and lesson recordings serve it, was refused ("read over HTTP
    only"). The egress proxy now reads it for FFmpeg: a VOD of relative segment URIs, one of AES-128 segments (its key
    served, or inline as a data: URI), a master playlist naming its media playlist on another allowed host, one whose
    media playlist is inline (a data: URI, its segments on that host), one whose segments a cookie set with the
    playlist unlocks (a CDN's signed cookies), and one over plain HTTP whose segments are on that host over HTTPS each
    play to their end, over TLS verified against the hosts' names (an authority of the test's own)."""
    authority = CertificateAuthority.made(tmp_path / "authority")
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.path))
    write_hls(tmp_path / "hls", segments=2, frames_per_segment=20)
    write_hls(tmp_path / "secret", segments=2, frames_per_segment=20, key=bytes(range(16)))
    tls = authority.server_tls("cdn.test", "media.test", "signed.test")
    cdn = VideoServer(tmp_path, tls=tls).start()
    media = VideoServer(tmp_path, host="127.0.0.3", tls=tls).start()
    signed = VideoServer(tmp_path, tls=tls, cookie="CloudFront-Policy=lesson-12").start()
    resolving_to(monkeypatch, "cdn.test", cdn.port, cdn.host)
    resolving_to(monkeypatch, "media.test", media.port, media.host)
    resolving_to(monkeypatch, "signed.test", signed.port, signed.host)
    (tmp_path / "master.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=320x240\nhttps://media.test:{media.port}/hls/index.m3u8\n"
    )
    inline_key = "data:application/octet-stream;base64," + base64.b64encode(bytes(range(16))).decode()
    (tmp_path / "secret" / "inline.m3u8").write_text((tmp_path / "secret" / "index.m3u8").read_text().replace("key.bin", inline_key))
    # A master playlist whose variant is inline, naming its segments by absolute URLs (as a packager writes it).
    variant = (tmp_path / "hls" / "index.m3u8").read_text().replace("segment", f"https://media.test:{media.port}/hls/segment")
    (tmp_path / "inline_master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\ndata:application/vnd.apple.mpegurl;base64,"
        + base64.b64encode(variant.encode()).decode() + "\n"
    )
    class_id = make_class()
    pipeline = pipeline_for(source_allowed_networks=["127.0.0.1/32", "127.0.0.3/32"])
    paths = ("hls/index.m3u8", "secret/index.m3u8", "master.m3u8", "secret/inline.m3u8", "inline_master.m3u8")
    locations = [f"https://cdn.test:{cdn.port}/{path}" for path in paths]
    locations.append(f"https://signed.test:{signed.port}/hls/index.m3u8")
    # A playlist over plain HTTP naming its segments over HTTPS, which FFmpeg could not reach through the proxy.
    (tmp_path / "mixed.m3u8").write_text(variant)
    plain = VideoServer(tmp_path).start()
    locations.append(f"{plain.url}/mixed.m3u8")
    runners = [pipeline.runner(SourceSpec(location), class_id, 5, realtime=False).start() for location in locations]
    try:
        assert all(runner.wait(60) for runner in runners)
    finally:
        for server in (cdn, media, signed, plain):
            server.stop()
    pipeline.sender.close(10)
    for runner in runners:
        assert runner.status().state == SourceState.ENDED and runner.status().frames_published >= 18, runner.status()
    assert "GET /master.m3u8 HTTP/1.1" in cdn.requested and "GET /hls/segment1.ts HTTP/1.1" in media.requested
    assert "GET /hls/segment1.ts HTTP/1.1" in signed.requested
    by_source = {}
    for frame in read_frames(kafka_bootstrap, topic, expected=sum(runner.status().frames_published for runner in runners)):
        by_source.setdefault(frame.source_id, []).append(frame.sequence)
    assert {runner.source_id: list(range(runner.status().frames_published)) for runner in runners} == by_source


@pytest.mark.parametrize("name", ["index.m3u8", "manifest(format=m3u8-cmaf)"])
def test_a_live_https_hls_playlist_is_read_through_the_relay_as_it_grows(name, tmp_path, monkeypatch, pipeline_for, make_class):
    """A live HLS stream over HTTPS (no end list; a window of three 1-s segments that moves on every second, as a live
    encoder or CDN serves a lesson): FFmpeg reloads the playlist through the relay, each reload rewritten afresh, and
    reads the segments as they appear, past the window it started with, sampled on the stream's own timeline. So is
    one whose URL does not end in .m3u8 (as Azure Media Services names them), known by its answer's media type: it did
    not open at all."""
    authority = CertificateAuthority.made(tmp_path / "authority")
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.path))
    write_hls(tmp_path / "live", segments=12, frames_per_segment=10)
    playlist_types = {f"/live/{name}": "application/vnd.apple.mpegurl"}
    cdn = VideoServer(tmp_path, tls=authority.server_tls("cdn.test"), content_types=playlist_types).start()
    resolving_to(monkeypatch, "cdn.test", cdn.port, cdn.host)
    moving = threading.Event()

    def window(first: int) -> None:
        entries = "".join(f"#EXTINF:1.0,\nsegment{n}.ts\n" for n in range(first, first + 3))
        written = tmp_path / "live" / "next.m3u8"
        written.write_text(f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{first}\n{entries}")
        written.replace(tmp_path / "live" / name)  # whole, as a server swaps it

    def move_on() -> None:
        for first in range(1, 10):
            if moving.wait(1.0):
                return
            window(first)

    window(0)
    threading.Thread(target=move_on, daemon=True).start()
    runner = pipeline_for().runner(SourceSpec(f"https://cdn.test:{cdn.port}/live/{name}"), make_class(), fps=5).start()
    try:
        assert wait_until(lambda: runner.status().frames_published >= 25, 30), (runner.status(), cdn.requested)
    finally:
        moving.set()
        runner.stop()
        runner.wait(15)
        cdn.stop()
    assert runner.status().kind == "stream"
    assert cdn.requested.count(f"GET /live/{name} HTTP/1.1") >= 3  # reloaded as it grew
    assert any(f"GET /live/segment{n}.ts HTTP/1.1" in cdn.requested for n in range(4, 12)), cdn.requested


def test_an_mjpeg_camera_that_drops_comes_back_and_resumes(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    server = VideoServer(tmp_path, stream_fps=10).start()
    reconnects_before = metric("classpulse_ingest_source_reconnects_total", kind="stream")
    runner = pipeline_for().runner(SourceSpec(f"{server.url}/stream.mjpg"), make_class(), fps=4).start()
    try:
        assert wait_until(lambda: runner.status().frames_published >= 4, 20), runner.status()
        assert runner.state == SourceState.LIVE
        state_series = {"class_id": runner.class_id, "source_id": runner.source_id, "kind": "stream"}
        assert metric("classpulse_ingest_source_state", **state_series, classpulse_ingest_source_state="live") == 1

        server.stop()  # the camera goes away
        assert wait_until(lambda: runner.state == SourceState.RECONNECTING, 15), runner.status()
        assert "stopped delivering" in runner.status().reason or "did not open" in runner.status().reason
        assert metric("classpulse_ingest_source_state", **state_series, classpulse_ingest_source_state="reconnecting") == 1
        published_while_away = runner.status().frames_published

        time.sleep(1.5)
        server.start()  # and comes back on the same address
        assert wait_until(lambda: runner.status().frames_published >= published_while_away + 4, 30), runner.status()
        assert runner.state == SourceState.LIVE and runner.status().reason is None
    finally:
        runner.stop()
        server.stop()
    assert runner.wait(15) and runner.state == SourceState.STOPPED
    assert runner.status().reconnects >= 1
    assert metric("classpulse_ingest_source_reconnects_total", kind="stream") >= reconnects_before + 1
    frames = read_frames(kafka_bootstrap, topic)
    sequences = [f.sequence for f in frames]
    assert sequences == list(range(len(sequences))) and len(sequences) >= published_while_away + 4  # no gap, no repeat
    assert len({f.frame_id for f in frames}) == len(sequences)


def test_an_rtsp_stream_is_sampled_with_its_own_timestamps(kafka_bootstrap, topic, pipeline_for, make_class):
    server = RtspServer(fps=10)
    runner = pipeline_for().runner(SourceSpec(server.url), make_class(), fps=5).start()
    try:
        assert wait_until(lambda: runner.status().frames_published >= 10, 30), runner.status()
    finally:
        runner.stop()
        runner.wait(15)
        server.stop()
    frames = read_frames(kafka_bootstrap, topic)
    assert runner.status().kind == "stream" and len(frames) >= 10
    gaps = [b.captured_at_ms - a.captured_at_ms for a, b in itertools.pairwise(frames)]
    # Every other frame of a 10 frames/s stream: 200 ms apart on the stream's clock, give or take its jitter.
    assert 150 <= sorted(gaps)[len(gaps) // 2] <= 250, gaps
    assert all(f.captured_at_ms <= f.published_at_ms for f in frames)


# --- Where a stream's connections go ----------------------------------------------------------------------------


def _reached(server: VideoServer | RtspServer) -> int:
    """Requests (HTTP) or connections (RTSP) the server had."""
    return len(server.connections) if isinstance(server, RtspServer) else len(server.requested)


def _run_for_three_frames(runner, *servers: VideoServer | RtspServer) -> None:
    """Starts `runner`, waits (20 s at most) for its third frame published, then stops it and `servers`."""
    runner.start()
    try:
        wait_until(lambda: runner.status().frames_published >= 3, 20)
    finally:
        runner.stop()
        runner.wait(15)
        for server in servers:
            server.stop()


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_a_stream_connects_to_the_address_its_host_was_checked_at(scheme, tmp_path, monkeypatch, pipeline_for, make_class):
    """The host answered an allowed address (127.0.0.2 here) to the check, then FFmpeg resolved it again to connect
    and got another (127.0.0.1 here; in earnest the pod's loopback or the metadata service), which served the stream.
    Now FFmpeg opens an RTSP stream at the address checked and reaches an HTTP one through the egress proxy, which
    connects to the address it checked: the other address sees nothing. The status shows the URL as given."""
    # The internal server takes a free port of 127.0.0.1 first: a port free on 127.0.0.2, where nothing else listens,
    # may be held on 127.0.0.1 by another test's servers or clients.
    if scheme == "rtsp":
        internal: VideoServer | RtspServer = RtspServer()
        camera: VideoServer | RtspServer = RtspServer(host="127.0.0.2", port=internal.port)
        location = f"rtsp://admin:cam-secret@localhost:{camera.port}/live"
    else:
        internal = VideoServer(tmp_path).start()
        camera = VideoServer(tmp_path, host="127.0.0.2", port=internal.port).start()
        location = f"http://admin:cam-secret@localhost:{camera.port}/stream.mjpg"
    resolving_to(monkeypatch, "localhost", camera.port, "127.0.0.2")
    runner = pipeline_for(source_allowed_networks=["127.0.0.2/32"]).runner(SourceSpec(location), make_class(), fps=5)
    _run_for_three_frames(runner, camera, internal)
    assert _reached(internal) == 0
    assert _reached(camera) >= 1 and runner.status().frames_published >= 3, runner.status()
    assert runner.status().location == f"{scheme}://***@localhost:{camera.port}/{location.rpartition('/')[2]}"


def test_an_rtsp_camera_is_opened_at_the_next_address_of_its_host_when_the_first_does_not_answer(monkeypatch, pipeline_for, make_class):
    """A camera's name with two addresses (IPv4 and IPv6, a pair of recorders): FFmpeg was handed the first checked
    address alone, and a camera answering at the second never opened. Now it opens the first that takes a connection."""
    camera = RtspServer(host="127.0.0.2")
    resolving_to(monkeypatch, "localhost", camera.port, "127.0.0.3", "127.0.0.2")  # nothing listens on 127.0.0.3
    location = f"rtsp://localhost:{camera.port}/live"
    pipeline = pipeline_for(source_allowed_networks=["127.0.0.2/32", "127.0.0.3/32"])
    runner = pipeline.runner(SourceSpec(location), make_class(), fps=5)
    _run_for_three_frames(runner, camera)
    assert _reached(camera) >= 1 and runner.status().frames_published >= 3, runner.status()


OPEN_TIMEOUT_S = 5  # this RTSP server takes FFmpeg about 2 s to open


def _opening_settings(*addresses: str) -> IngestSettings:
    return IngestSettings(stream_open_timeout_ms=OPEN_TIMEOUT_S * 1000, source_allowed_networks=[f"{a}/32" for a in addresses])


@contextlib.contextmanager
def _egress_for(settings: IngestSettings) -> Iterator[StreamEgressProxy]:
    """The egress proxy a pipeline of `settings` reads its streams through."""
    egress = StreamEgressProxy(settings.source_allowed_networks, settings.source_allowed_schemes, settings.stream_open_timeout_ms / 1000)
    try:
        yield egress.start()
    finally:
        egress.close()


def test_an_rtsp_camera_behind_silent_addresses_of_its_host_opens_within_one_open_timeout(monkeypatch):
    """A camera's name with four addresses, the first three silent. FFmpeg was tried at each in turn with the whole
    open timeout (15 s here before it reached the camera's). Now connections to them are raced, 250 ms apart, and FFmpeg
    opens the first address that took one: all within the one open timeout."""
    camera = RtspServer(host="127.0.0.2")
    silent = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
    resolving_to(monkeypatch, "localhost", camera.port, *silent, camera.host)
    settings = _opening_settings(*silent, camera.host)
    try:
        with silent_addresses(*silent, port=camera.port), _egress_for(settings) as egress:
            started = time.monotonic()
            reader = open_reader(SourceSpec(f"rtsp://localhost:{camera.port}/live"), settings, egress=egress)
            opened_after_s = time.monotonic() - started
            try:
                frame = next(reader.frames(5, 0.0))
            finally:
                reader.release()
    finally:
        camera.stop()
    assert opened_after_s < OPEN_TIMEOUT_S, opened_after_s
    assert frame.image.size > 0 and _reached(camera) >= 1


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
@pytest.mark.parametrize("first_takes_the_connection", [False, True])
def test_a_camera_none_of_whose_addresses_opens_fails_once_within_its_open_timeout(scheme, first_takes_the_connection, monkeypatch):
    """A camera's name with three silent addresses: each had the whole open timeout in turn (15 s here) before the
    source failed. Now it fails once, within the open timeout, saying how many addresses were tried. A first address
    that takes the connection but serves no stream (FFmpeg is handed it and fails there) fails the same way, in the same
    words: which of a host's ports are open is not told. An HTTP camera too, whose host is first asked whether it
    serves an HLS playlist: that look is the open's, not a timeout before it."""
    hosts = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
    settings = _opening_settings(*hosts)
    with silent_addresses(*hosts[1:]) as port, (
        socket.create_server((hosts[0], port)) if first_takes_the_connection else silent_addresses(hosts[0], port=port)
    ), _egress_for(settings) as egress:
        resolving_to(monkeypatch, "localhost", port, *hosts)
        started = time.monotonic()
        with pytest.raises(SourceError) as failed:
            open_reader(SourceSpec(f"{scheme}://localhost:{port}/live"), settings, egress=egress)
        failed_after_s = time.monotonic() - started
    assert OPEN_TIMEOUT_S * 0.9 < failed_after_s < OPEN_TIMEOUT_S + 1, failed_after_s
    assert failed.value.cause == "unreachable"
    assert str(failed.value).startswith(
        f"{scheme}://localhost:{port}/live did not open as a video stream at any of the 3 addresses its host resolves to "
        f"within {OPEN_TIMEOUT_S} s: "
    )


def test_an_rtsp_cameras_redirect_outside_the_networks_is_refused_unfollowed(pipeline_for, make_class):
    """An allowed camera (127.0.0.3) answering DESCRIBE with a 302 to a host outside the networks (127.0.0.2; in
    earnest the metadata service or the pod's neighbours): FFmpeg followed it by itself, unchecked, and read the
    stream there. Now the redirect is refused, counted, the source fails as a stream that did not open, and the host
    outside gets no connection."""
    outside = RtspServer(host="127.0.0.2")
    camera = RtspServer(host="127.0.0.3", redirect_to=outside.url)
    refused_before = metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed")
    pipeline = pipeline_for(source_allowed_networks=["127.0.0.3/32"], reconnect_attempts=0)
    runner = pipeline.runner(SourceSpec(camera.url), make_class(), fps=5).start()
    try:
        assert runner.wait(30), runner.status()
    finally:
        runner.stop()
        runner.wait(15)
        camera.stop()
        outside.stop()
    assert _reached(outside) == 0 and _reached(camera) >= 1
    assert runner.status().state == SourceState.FAILED and runner.status().frames_published == 0
    assert "did not open as a video stream" in runner.status().reason
    assert metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed") > refused_before


def test_an_rtsp_cameras_redirect_is_followed_to_the_address_its_target_was_checked_at(monkeypatch, pipeline_for, make_class):
    """A camera (127.0.0.3) redirecting to another by name, which the check resolves to an allowed address (127.0.0.2)
    and FFmpeg would resolve itself to another (127.0.0.1 here; in earnest the pod's loopback). FFmpeg followed the
    redirect to the address it resolved; now it is led back to the relay, which connects to the address checked: the
    stream plays from there, and the other address sees nothing."""
    internal = RtspServer()
    target = RtspServer(host="127.0.0.2", port=internal.port)
    camera = RtspServer(host="127.0.0.3", redirect_to=f"rtsp://localhost:{target.port}/live")
    resolving_to(monkeypatch, "localhost", target.port, target.host)
    redirects_before = metric("classpulse_ingest_stream_rtsp_relay_redirects_total")
    pipeline = pipeline_for(source_allowed_networks=["127.0.0.2/32", "127.0.0.3/32"])
    runner = pipeline.runner(SourceSpec(camera.url), make_class(), fps=5)
    _run_for_three_frames(runner, camera, target, internal)
    assert _reached(internal) == 0
    assert _reached(camera) >= 1 and _reached(target) >= 1 and runner.status().frames_published >= 3, runner.status()
    assert metric("classpulse_ingest_stream_rtsp_relay_redirects_total") > redirects_before


def test_an_rtsp_camera_asking_for_digest_authentication_is_read_through_the_relay(pipeline_for, make_class, caplog):
    """Cameras ask for Digest authentication, computed over the URL of each request and checked against it: FFmpeg
    computes it over the relay's URL it sends, which the relay passes on as it is, so the camera's check holds. The
    source stopped, its relay closes without an error in the log."""
    camera = RtspServer(credentials=("teacher", "cam pass"))
    location = camera.url.replace("rtsp://", "rtsp://teacher:cam%20pass@")
    runner = pipeline_for().runner(SourceSpec(location), make_class(), fps=5)
    _run_for_three_frames(runner, camera)
    assert runner.status().frames_published >= 3, runner.status()
    assert [request.split(" ")[0] for request in camera.authorized[:2]] == ["DESCRIBE", "SETUP"]
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def test_an_rtsp_camera_that_drops_comes_back_through_a_relay_of_its_own_reopening(pipeline_for, make_class):
    """The camera goes away and comes back on the same address: the source reopens it at a relay port of that
    reopening, the last one's closed with its capture, so a source holds one relay however often its camera drops;
    none is left once the source stops."""
    camera = RtspServer()
    pipeline = pipeline_for()
    runner = pipeline.runner(SourceSpec(camera.url), make_class(), fps=5).start()
    relays = pipeline.egress.rtsp.cameras
    try:
        assert wait_until(lambda: runner.status().frames_published >= 4, 20), runner.status()
        first_relay = next(iter(relays)).url
        camera.stop()
        assert wait_until(lambda: runner.state == SourceState.RECONNECTING, 20), runner.status()
        published_while_away = runner.status().frames_published
        camera = RtspServer(port=camera.port)
        assert wait_until(lambda: runner.status().frames_published >= published_while_away + 4, 30), runner.status()
        assert len(relays) == 1 and next(iter(relays)).url != first_relay
    finally:
        runner.stop()
        runner.wait(15)
        camera.stop()
    assert runner.status().reconnects >= 1 and not relays


def test_an_rtsps_camera_is_read_over_tls_through_the_relay(tmp_path, pipeline_for, make_class):
    """The relay does the camera's TLS (FFmpeg speaks plain RTSP to the relay alone), with a certificate of the
    camera's own making, as cameras serve them."""
    camera = RtspServer(tls=CertificateAuthority.made(tmp_path / "camera-authority").server_tls("127.0.0.1"))
    runner = pipeline_for().runner(SourceSpec(camera.url), make_class(), fps=5)
    _run_for_three_frames(runner, camera)
    assert camera.url.startswith("rtsps://") and _reached(camera) >= 1
    assert runner.status().frames_published >= 3, runner.status()


def test_an_rtsps_cameras_certificate_is_verified_where_the_deployment_asks_for_it(tmp_path, monkeypatch, pipeline_for, make_class):
    """CLASSPULSE_RTSPS_VERIFY_CERTIFICATES: rtsps was encrypted, never authenticated (anyone on the path could pose as
    the camera). Turned on, a camera whose certificate an authority the school trusts (SSL_CERT_FILE) issued for its
    name plays; one of its own making, or of that authority for another name, gets no request: its TLS fails, counted,
    and the source fails as a stream that did not open."""
    school = CertificateAuthority.made(tmp_path / "school")
    monkeypatch.setenv("SSL_CERT_FILE", str(school.path))
    trusted = RtspServer(tls=school.server_tls("camera.test"))
    own_making = RtspServer(tls=CertificateAuthority.made(tmp_path / "own").server_tls("camera.test"))
    misnamed = RtspServer(tls=school.server_tls("other.test"))
    for camera in (trusted, own_making, misnamed):
        resolving_to(monkeypatch, "camera.test", camera.port, camera.host)
    failed_before = metric("classpulse_ingest_stream_rtsp_relay_connections_total", outcome="tls_failed")
    pipeline = pipeline_for(rtsps_verify_certificates=True, reconnect_attempts=0)
    class_id = make_class()
    refused = [pipeline.runner(SourceSpec(f"rtsps://camera.test:{camera.port}/live"), class_id, fps=5).start() for camera in (own_making, misnamed)]
    runner = pipeline.runner(SourceSpec(f"rtsps://camera.test:{trusted.port}/live"), class_id, fps=5)
    _run_for_three_frames(runner, trusted)
    try:
        assert all(source.wait(30) for source in refused), [source.status() for source in refused]
    finally:
        own_making.stop()
        misnamed.stop()
    assert runner.status().frames_published >= 3, runner.status()
    for source in refused:
        assert source.status().state == SourceState.FAILED and source.status().frames_published == 0, source.status()
        assert "did not open as a video stream" in source.status().reason
    assert metric("classpulse_ingest_stream_rtsp_relay_connections_total", outcome="tls_failed") >= failed_before + 2


def test_what_a_stream_leads_ffmpeg_to_outside_the_networks_is_refused_unfetched(tmp_path, pipeline_for, make_class, caplog):
    """An allowed camera (127.0.0.1) pointing FFmpeg at a host outside the networks (127.0.0.2; in earnest the metadata
    service): an HLS playlist whose segments are there, a 302 to a stream there. FFmpeg followed both by itself,
    unchecked; now the egress proxy refuses each (403, counted, logged), the source fails as a stream that did not
    open, and the host outside gets no request. Nor does it from a playlist naming its segments httpproxy://outside/
    (FFmpeg's protocol of a proxy's CONNECT, which would connect there itself, past the proxy). The playlist with its
    segments at home still plays."""
    write_hls(tmp_path / "hls", segments=2, frames_per_segment=20)
    outside = VideoServer(tmp_path, host="127.0.0.2").start()
    playlist = (tmp_path / "hls" / "index.m3u8").read_text()
    (tmp_path / "hls" / "elsewhere.m3u8").write_text(playlist.replace("segment", f"{outside.url}/hls/segment"))
    past_the_proxy = playlist.replace("segment", f"httpproxy://{outside.host}:{outside.port}/hls/segment")
    (tmp_path / "hls" / "past_the_proxy.m3u8").write_text(past_the_proxy)
    camera = VideoServer(tmp_path, redirects={"/moved.mjpg": f"{outside.url}/stream.mjpg"}).start()
    refused_before = metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed")
    pipeline = pipeline_for(source_allowed_networks=["127.0.0.1/32"], reconnect_attempts=0)
    class_id = make_class()
    at_home, segments_elsewhere, redirected, segments_past_the_proxy = runners = [
        pipeline.runner(SourceSpec(f"{camera.url}/{path}"), class_id, 5, realtime=False).start()
        for path in ("hls/index.m3u8", "hls/elsewhere.m3u8", "moved.mjpg", "hls/past_the_proxy.m3u8")
    ]
    waited_then_stopped(runners, camera, outside)
    assert outside.requested == []
    assert at_home.status().state == SourceState.ENDED and at_home.status().frames_published >= 18, at_home.status()
    for runner in (segments_elsewhere, redirected, segments_past_the_proxy):
        assert runner.status().state == SourceState.FAILED, runner.status()
        assert "did not open as a video stream" in runner.status().reason
    assert metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed") >= refused_before + 2
    refusals = [r.reason for r in caplog.records if r.name == "classpulse_ingest.egress"]
    assert f"{outside.url}/stream.mjpg is outside the networks stream URLs may reach" in " ".join(refusals), refusals


def test_what_an_https_playlist_names_outside_the_networks_or_past_the_proxy_is_refused_unfetched(
    tmp_path, monkeypatch, pipeline_for, make_class, caplog
):
    """An HTTPS playlist on an allowed host (read by the egress proxy's relay) naming its segments on a host outside
    the networks (127.0.0.2; in earnest the metadata service), at httpproxy://outside/ (FFmpeg's protocol of a proxy's
    tunnel, which would connect there itself) or at file: URLs: none is fetched, each refusal counted, and each source
    fails as a stream that did not open, in the same words as one whose host's certificate does not verify."""
    authority = CertificateAuthority.made(tmp_path / "authority")
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.path))
    playlist = write_hls(tmp_path / "hls", segments=2, frames_per_segment=20).read_text()
    outside = VideoServer(tmp_path, host="127.0.0.2", tls=authority.server_tls("outside.test")).start()
    cdn = VideoServer(tmp_path, tls=authority.server_tls("cdn.test")).start()
    impostor = VideoServer(tmp_path, tls=CertificateAuthority.made(tmp_path / "untrusted").server_tls("cdn.test")).start()
    for server, name in ((outside, "outside.test"), (cdn, "cdn.test"), (impostor, "cdn.test")):
        resolving_to(monkeypatch, name, server.port, server.host)
    for name, segments_at in (
        ("elsewhere", f"https://outside.test:{outside.port}/hls/segment"),
        ("past_the_proxy", f"httpproxy://{outside.host}:{outside.port}/hls/segment"),
        ("local_files", f"file://{tmp_path}/hls/segment"),
    ):
        (tmp_path / "hls" / f"{name}.m3u8").write_text(playlist.replace("segment", segments_at))
    locations = [f"https://cdn.test:{cdn.port}/hls/{name}.m3u8" for name in ("elsewhere", "past_the_proxy", "local_files")]
    locations.append(f"https://cdn.test:{impostor.port}/hls/index.m3u8")
    refused_before = {cause: metric("classpulse_ingest_stream_egress_refused_total", cause=cause) for cause in ("not_allowed", "bad_location")}
    relayed_before = {outcome: metric("classpulse_ingest_stream_hls_relay_requests_total", outcome=outcome) for outcome in ("refused", "tls_failed")}
    pipeline = pipeline_for(source_allowed_networks=["127.0.0.1/32"], reconnect_attempts=0)
    class_id = make_class()
    runners = [pipeline.runner(SourceSpec(location), class_id, 5, realtime=False).start() for location in locations]
    waited_then_stopped(runners, outside, cdn, impostor)
    assert outside.requested == [] and impostor.requested == []
    for runner, location in zip(runners, locations, strict=True):
        assert runner.status().state == SourceState.FAILED, runner.status()
        assert runner.status().reason == f"gave up after 0 reconnection attempts: {unopened_stream(location, 3.0)}"
    assert metric("classpulse_ingest_stream_egress_refused_total", cause="not_allowed") >= refused_before["not_allowed"] + 1
    assert metric("classpulse_ingest_stream_egress_refused_total", cause="bad_location") >= refused_before["bad_location"] + 2
    assert metric("classpulse_ingest_stream_hls_relay_requests_total", outcome="refused") >= relayed_before["refused"] + 3
    assert metric("classpulse_ingest_stream_hls_relay_requests_total", outcome="tls_failed") >= relayed_before["tls_failed"] + 1
    refusals = " ".join(r.reason for r in caplog.records if r.name == "classpulse_ingest.egress")
    assert f"https://outside.test:{outside.port}/hls/segment0.ts is outside the networks stream URLs may reach" in refusals


# --- Sources that cannot be read ---------------------------------------------------------------------------------


def test_a_webcam_index_opens_that_camera_and_fails_clearly_without_one(pipeline_for, make_class):
    spec = SourceSpec("7")
    assert spec.kind == SourceKind.WEBCAM and webcam_index(spec) == 7
    failures_before = metric("classpulse_ingest_source_failures_total", kind="webcam", cause="no_camera")
    runner = pipeline_for(reconnect_attempts=0).runner(spec, make_class(), fps=2).start()
    assert runner.wait(20)
    status = runner.status()
    assert status.state == SourceState.FAILED
    assert "no camera at index 7: /dev/video7" in status.reason
    assert metric("classpulse_ingest_source_failures_total", kind="webcam", cause="no_camera") == failures_before + 1


def test_a_stream_that_never_comes_back_fails_after_its_attempts(tmp_path, pipeline_for, make_class):
    server = VideoServer(tmp_path).start()
    try:
        pipeline = pipeline_for(reconnect_attempts=2)
        missing = pipeline.runner(SourceSpec(f"{server.url}/no-such-camera.mjpg"), make_class(), fps=2).start()
        assert missing.wait(30)
    finally:
        server.stop()
    refused = pipeline.runner(SourceSpec(f"rtsp://127.0.0.1:{server.port}/live"), make_class(), fps=2).start()
    assert refused.wait(30)
    assert missing.status().state == refused.status().state == SourceState.FAILED
    assert missing.status().reason.startswith("gave up after 2 reconnection attempts")
    # The same words whatever the host answered (a 404, a refused connection): a source never reports what an
    # address said, or whether anything listens there.
    for runner in (missing, refused):
        assert "did not open as a video stream within 3 s" in runner.status().reason
        assert "404" not in runner.status().reason and "refused" not in runner.status().reason
    assert missing.status().reconnects == 2


def test_ffmpeg_opens_a_file_only_as_a_plain_video(tmp_path, pipeline_for, make_class):
    """A list or playlist among the media files would make FFmpeg open other files (or hosts) in its stead."""
    write_video(tmp_path / "lesson.avi", "MJPG", frames=4, fps=4)
    concat_list = written(tmp_path / "lesson.mp4", b"ffconcat version 1.0\nfile lesson.avi\nfile lesson.avi\n")
    playlist = written(tmp_path / "lesson.mkv", b"#EXTM3U\n#EXTINF:1.0,\nlesson.avi\n#EXT-X-ENDLIST\n")
    pipeline = pipeline_for()
    for disguised in (concat_list, playlist):
        status = run_to_the_end(pipeline, str(disguised), make_class(), fps=4, realtime=False)
        assert status.state == SourceState.FAILED and status.frames_published == 0, status


def written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def unsupported_codec_avi(folder: Path) -> Path:
    """An AVI whose video stream claims a codec no decoder knows."""
    return written(folder / "odd.avi", write_video(folder / "ok.avi", "MJPG", frames=5).read_bytes().replace(b"MJPG", b"ZZZZ"))


def truncated_mp4(folder: Path) -> Path:
    """The first 3000 bytes of an MP4 whose index ('moov') comes last, as OpenCV writes it: a copy cut short."""
    return written(folder / "cut.mp4", write_video(folder / "whole.mp4", "mp4v", frames=20).read_bytes()[:3000])


@pytest.mark.parametrize(
    "make_file,cause,words",
    [
        (lambda folder: folder / "missing.mp4", "missing", "no such file"),
        (lambda folder: written(folder / "empty.mkv", b""), "unreadable", "is empty"),
        (lambda folder: written(folder / "notes.mp4", b"hello"), "unreadable", "not a video file"),
        (unsupported_codec_avi, "unsupported", "video codec 'ZZZZ'"),
        (truncated_mp4, "unreadable", "incomplete MP4"),
    ],
    ids=["missing", "empty", "text", "unknown-codec", "truncated"],
)
def test_unreadable_files_fail_with_their_reason(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class, make_file, cause, words):
    path = make_file(tmp_path)
    failures_before = metric("classpulse_ingest_source_failures_total", kind="file", cause=cause)
    status = run_to_the_end(pipeline_for(), str(path), make_class(), fps=2)
    assert status.state == SourceState.FAILED and words in status.reason, status.reason
    assert metric("classpulse_ingest_source_failures_total", kind="file", cause=cause) == failures_before + 1
    assert read_frames(kafka_bootstrap, topic, quiet_s=0.5) == []


# --- Quotas -------------------------------------------------------------------------------------------------------


def test_a_live_source_over_its_class_quota_skips_frames(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    server = VideoServer(tmp_path, stream_fps=20).start()
    runner = pipeline_for(class_max_fps=3, class_burst=2).runner(SourceSpec(f"{server.url}/stream.mjpg"), make_class(), fps=20).start()
    try:
        assert wait_until(lambda: runner.state == SourceState.LIVE, 20)
        time.sleep(3)
    finally:
        runner.stop()
        runner.wait(15)
        server.stop()
    frames = read_frames(kafka_bootstrap, topic)
    status = runner.status()
    # About 3 s live at 3 frames/s plus a burst of 2 (and the time it took to open): far fewer than the ~60 sampled.
    assert 6 <= len(frames) == status.frames_published <= 16
    assert status.frames_dropped["class_quota"] >= 20


def test_a_recording_waits_for_its_quota_and_loses_nothing(tmp_path, kafka_bootstrap, topic, pipeline_for, make_class):
    video = write_video(tmp_path / "lesson.mp4", "mp4v", frames=20, fps=10)
    started = time.monotonic()
    status = run_to_the_end(pipeline_for(class_max_fps=8, class_burst=2), str(video), make_class(), fps=10, realtime=False)
    assert time.monotonic() - started >= (20 - 2) / 8 - 0.3  # paced by the quota, not as fast as it could read
    assert status.frames_published == len(read_frames(kafka_bootstrap, topic, expected=20)) == 20
    assert status.frames_dropped == {}
