from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork

from classpulse_core.settings import CaptureWindowSettings, RedisSettings


class IngestSettings(RedisSettings, CaptureWindowSettings):
    http_port: int = Field(8001, description="CLASSPULSE_HTTP_PORT")

    # Size and quality of what reaches Kafka.
    jpeg_quality: int = Field(85, ge=30, le=100, description="CLASSPULSE_JPEG_QUALITY of frames put on Kafka")
    max_frame_side: int = Field(
        1280, ge=160, le=8192, description="CLASSPULSE_MAX_FRAME_SIDE: larger frames are downscaled before publishing"
    )
    max_upload_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="CLASSPULSE_MAX_UPLOAD_BYTES per posted frame")
    max_image_pixels: int = Field(
        1920 * 1080,
        ge=10_000,
        description="CLASSPULSE_MAX_IMAGE_PIXELS: a posted image (or a folder's) declaring more pixels is refused before "
        "decoding; a 1080p webcam frame by default (a small file can decompress into gigabytes)",
    )
    upload_max_concurrent: int = Field(
        8, ge=1, description="CLASSPULSE_UPLOAD_MAX_CONCURRENT: uploads read and decoded at once by one ingest process"
    )
    upload_slot_wait_s: float = Field(
        2.0, ge=0, description="CLASSPULSE_UPLOAD_SLOT_WAIT_S: how long an upload waits for one of those before a 503"
    )
    upload_read_timeout_s: float = Field(
        10.0, gt=0, description="CLASSPULSE_UPLOAD_READ_TIMEOUT_S: a frame's body must arrive within this (else 408)"
    )
    upload_student_max_concurrent: int = Field(
        2, ge=1, description="CLASSPULSE_UPLOAD_STUDENT_MAX_CONCURRENT: uploads one student token may have in progress at "
        "once, on every replica together (else 429): one slow sender holds no more than this of the slots"
    )
    upload_key_max_concurrent: int = Field(
        4, ge=1, description="CLASSPULSE_UPLOAD_KEY_MAX_CONCURRENT: the same for one service or admin key, all its sources together"
    )
    upload_idempotency_window_s: int = Field(
        300, ge=10, description="CLASSPULSE_UPLOAD_IDEMPOTENCY_WINDOW_S: how long the answer to a frame posted with an "
        "Idempotency-Key is kept: a retry with that key within it gets the same answer, and nothing is published again"
    )

    # Rates: per source (sampling) and per class (a token bucket in Redis, shared by every ingest replica).
    default_fps: float = Field(2.0, gt=0, description="CLASSPULSE_DEFAULT_FPS sampled from a source unless told")
    max_source_fps: float = Field(30.0, gt=0, description="CLASSPULSE_MAX_SOURCE_FPS: the most a source may ask for")
    class_max_fps: float = Field(20.0, gt=0, description="CLASSPULSE_CLASS_MAX_FPS: a class's sustained frame quota")
    class_burst: int = Field(40, ge=1, description="CLASSPULSE_CLASS_BURST: frames a class may send at once")
    class_max_fps_overrides: dict[str, float] = Field(
        default_factory=dict, description='CLASSPULSE_CLASS_MAX_FPS_OVERRIDES, JSON: {"big-lecture": 60}'
    )
    upload_source_max_fps: float = Field(
        1.0, gt=0, description="CLASSPULSE_UPLOAD_SOURCE_MAX_FPS: the most one student token may post, from any page"
    )
    upload_source_burst: int = Field(3, ge=1, description="CLASSPULSE_UPLOAD_SOURCE_BURST: frames it may send at once")
    upload_key_max_fps: float = Field(
        20.0, gt=0, description="CLASSPULSE_UPLOAD_KEY_MAX_FPS: the most one service or admin key may post, all its sources together"
    )
    upload_key_burst: int = Field(40, ge=1, description="CLASSPULSE_UPLOAD_KEY_BURST: frames it may send at once")
    upload_key_max_sources: int = Field(
        64, ge=1, description="CLASSPULSE_UPLOAD_KEY_MAX_SOURCES: source ids one service or admin key may post under in an hour"
    )

    # Backpressure: the bounded buffer between capture and Kafka.
    buffer_max_frames: int = Field(256, ge=1, description="CLASSPULSE_BUFFER_MAX_FRAMES waiting for Kafka")
    buffer_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024, description="CLASSPULSE_BUFFER_MAX_BYTES waiting")
    in_flight_max_bytes: int = Field(
        32 * 1024 * 1024, ge=1024 * 1024, description="CLASSPULSE_IN_FLIGHT_MAX_BYTES sent but not yet acknowledged"
    )
    recording_wait_s: float = Field(
        30.0, ge=0, description="CLASSPULSE_RECORDING_WAIT_S: a recording waits this long for room before dropping"
    )
    kafka_block_ms: int = Field(5_000, ge=100, description="CLASSPULSE_KAFKA_BLOCK_MS: longest wait for Kafka metadata")
    kafka_delivery_timeout_ms: int = Field(
        30_000, ge=1_000, description="CLASSPULSE_KAFKA_DELIVERY_TIMEOUT_MS: a frame not acknowledged by then is dropped"
    )

    # Streams that drop.
    stream_open_timeout_ms: int = Field(10_000, ge=500, description="CLASSPULSE_STREAM_OPEN_TIMEOUT_MS")
    stream_read_timeout_ms: int = Field(10_000, ge=500, description="CLASSPULSE_STREAM_READ_TIMEOUT_MS")
    reconnect_initial_s: float = Field(0.5, gt=0, description="CLASSPULSE_RECONNECT_INITIAL_S: first backoff")
    reconnect_max_s: float = Field(30.0, gt=0, description="CLASSPULSE_RECONNECT_MAX_S: longest backoff")
    reconnect_attempts: int = Field(
        20, ge=0, description="CLASSPULSE_RECONNECT_ATTEMPTS in a row before a stream is declared failed"
    )

    # Sources started through the HTTP API.
    max_sources: int = Field(64, ge=1, description="CLASSPULSE_MAX_SOURCES running at once in one ingest process")
    source_lease_ttl_s: float = Field(
        10.0, ge=1, le=300,
        description="CLASSPULSE_SOURCE_LEASE_TTL_S: a replica that stops renewing its sources' leases (killed, cut off "
        "from Redis) loses them this long after its last renewal; another replica then continues them",
    )
    source_claim_interval_s: float = Field(
        2.0, gt=0, le=60,
        description="CLASSPULSE_SOURCE_CLAIM_INTERVAL_S: how often (jittered) each replica renews its leases and "
        "claims sources nobody runs; a source resumes within the lease TTL plus this after its replica dies",
    )
    shutdown_budget_s: int = Field(
        20, ge=4, le=3600,
        description="CLASSPULSE_SHUTDOWN_BUDGET_S: the longest a graceful shutdown (SIGTERM) takes, whatever Kafka "
        "and Redis do: the requests in progress get up to half of it; in the rest the uploads cut off while recording "
        "their answers queue their frames (2 s at most), the sources stop, the frames waiting for Kafka are sent and "
        "every source is handed over (its lease let go: another replica continues it at once; a "
        "recording's frames Kafka has not acknowledged by then are read again there; a source Redis has not answered "
        "for by the end is left to lapse, and continued after its lease's TTL). Keep it under the pod's "
        "termination grace period less its preStop pause (30 - 5 s in deploy/k8s)",
    )
    camera_host: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=253,
        description="CLASSPULSE_CAMERA_HOST: the machine whose cameras this process opens by index: a webcam source "
        "runs only on the replicas of the machine it was started on, as an index names a camera of one machine (while "
        "none runs there it reads `stalled`); the host name by default, set it to a name that outlives the process "
        "where a container's host name changes when it is made again",
    )
    media_dir: Path | None = Field(
        None, description="CLASSPULSE_MEDIA_DIR: the only folder whose files and image folders the API may ingest"
    )
    source_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description='CLASSPULSE_SOURCE_ALLOWED_NETWORKS, JSON: the networks a stream source\'s host may resolve into, e.g. '
        '["10.20.0.0/16"]; none by default (no stream source); loopback, link-local and metadata addresses need an '
        "entry within their own range (destinations.py)",
    )
    source_allowed_schemes: list[Literal["rtsp", "rtsps", "http", "https"]] = Field(
        ["rtsp", "rtsps", "http", "https"], min_length=1, description="CLASSPULSE_SOURCE_ALLOWED_SCHEMES, JSON"
    )
    rtsps_verify_certificates: bool = Field(
        False,
        description="CLASSPULSE_RTSPS_VERIFY_CERTIFICATES: an rtsps camera's certificate verified against its host "
        "name and the authorities of SSL_CERT_FILE (the system's where it is unset), as an HLS stream's over HTTPS "
        "always is; off by default, as FFmpeg's own TLS (`tls_verify` 0): most cameras serve a certificate of their "
        "own making. Turn it on where the cameras' certificates come from an authority of the school's",
    )

    # The student page.
    student_snapshot_interval_s: float = Field(
        5.0, ge=0.5, le=600, description="CLASSPULSE_STUDENT_SNAPSHOT_INTERVAL_S between a student page's snapshots"
    )
    student_snapshot_side: int = Field(640, ge=160, le=1920, description="CLASSPULSE_STUDENT_SNAPSHOT_SIDE, pixels")
    student_token_ttl_s: int = Field(
        12 * 3600, ge=60, description="CLASSPULSE_STUDENT_TOKEN_TTL_S: default lifetime of a student token"
    )

    @property
    def requests_shutdown_s(self) -> int:
        """The part of the shutdown budget in which requests in progress may finish (uvicorn's graceful shutdown)."""
        return self.shutdown_budget_s // 2

    def class_quota_fps(self, class_id: str) -> float:
        return self.class_max_fps_overrides.get(class_id, self.class_max_fps)
