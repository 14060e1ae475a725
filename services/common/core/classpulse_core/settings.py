"""Settings shared by every service, read from environment variables prefixed CLASSPULSE_.

Each service subclasses `ServiceSettings` with its own fields; secrets are `SecretStr` so that logging the settings
never prints them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from classpulse_core.timeseries import RAW_RESOLUTION, Resolution


class KafkaSettings(BaseSettings):
    """How every service reaches Kafka. TLS and SASL apply to every client when set."""

    model_config = SettingsConfigDict(env_prefix="CLASSPULSE_KAFKA_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    frames_topic: str = "classpulse.frames"
    faces_topic: str = "classpulse.faces"
    predictions_topic: str = "classpulse.predictions"
    dead_letter_suffix: str = ".dlq"
    # Producer batching, chosen by measurement (make bench, docs/performance.md): 1 MiB batches after up to 20 ms
    # instead of kafka-python's 16 KiB (which made a request of almost every 53 KB frame). A stage's flush after each
    # batch sends at once, whatever the linger. Fetch batching (fetch_min_bytes 256 KiB, 50 ms) cut the broker's CPU
    # further but is back at kafka-python's defaults: re-measured on the same code it gained nothing end to end (7.4x vs
    # 7.5x fer per core) and doubled p95 at half load (461 vs 216 ms), and one earlier run under it saw every commit
    # of a consumer fail with RebalanceInProgressError (not seen again; cause not pinned down).
    producer_linger_ms: int = Field(20, ge=0, description="CLASSPULSE_KAFKA_PRODUCER_LINGER_MS: wait to fill a batch")
    producer_batch_bytes: int = Field(
        1024 * 1024, ge=1024,
        description="CLASSPULSE_KAFKA_PRODUCER_BATCH_BYTES: records of one partition sent together",
    )
    fetch_min_bytes: int = Field(
        1, ge=1,
        description="CLASSPULSE_KAFKA_FETCH_MIN_BYTES: the broker answers a fetch once this much is there, or after "
        "fetch_max_wait_ms",
    )
    fetch_max_wait_ms: int = Field(500, ge=0, description="CLASSPULSE_KAFKA_FETCH_MAX_WAIT_MS")
    # What a consumer fetched is held in the process (the response, then each record's bytes) until its batches are
    # processed, and the allocator keeps the memory once the peak is over: with 32 MiB a fetch, a detector stopped
    # for 20 s (400 frames of 38 KB behind) came back 26 MiB larger for good (101 -> 128 MiB); with 4 MiB, 9 MiB;
    # with 1 MiB it peaked 3 MiB higher and returned to where it was. 1 MiB is still 27 such frames a fetch, more
    # than the detector's 16 a batch, and a larger message still comes, alone (test_consumer_fetch_bound.py).
    fetch_max_bytes: int = Field(
        1024 * 1024, ge=1024,
        description="CLASSPULSE_KAFKA_FETCH_MAX_BYTES: most bytes a consumer fetches at a time (a larger message "
        "still comes)",
    )

    def client_options(self) -> dict[str, object]:
        """Connection options accepted by kafka-python's producer, consumer and admin client alike."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                options[name] = getattr(self, name)
        return options


class ServiceSettings(BaseSettings):
    """Settings every service has."""

    model_config = SettingsConfigDict(env_prefix="CLASSPULSE_", frozen=True, extra="ignore")

    log_level: str = Field("INFO", description="CLASSPULSE_LOG_LEVEL")
    http_host: str = Field("127.0.0.1", description="CLASSPULSE_HTTP_HOST: where health and metrics listen")
    emotion_enabled: bool = Field(
        True,
        description="CLASSPULSE_EMOTION_ENABLED: false runs presence-only, no emotion is inferred or stored",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)


class RedisSettings(ServiceSettings):
    """Settings of the services that use Redis (the class registry, keys, time series)."""

    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="CLASSPULSE_REDIS_URL (rediss:// for TLS; may hold a password). With sentinels, its host and port"
        " are not used: the sentinels name the primary; its scheme, credentials and database still apply",
    )
    redis_sentinels: str = Field(
        "",
        description="CLASSPULSE_REDIS_SENTINELS: comma-separated host:port of Redis Sentinels; when set, every client"
        " asks them for the current primary and follows a failover",
    )
    redis_master_name: str = Field(
        "classpulse", description="CLASSPULSE_REDIS_MASTER_NAME: the primary's name the sentinels monitor"
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, description="CLASSPULSE_REDIS_SENTINEL_PASSWORD: the sentinels' own password, if they require one"
    )
    redis_wait_replicas: int | None = Field(
        None, ge=0,
        description="CLASSPULSE_REDIS_WAIT_REPLICAS: replicas that must hold a write (Redis WAIT) before it counts: an"
        " aggregator batch before its Kafka offsets are committed, an ingest source lease claimed or renewed; default 1"
        " with sentinels (CLASSPULSE_REDIS_SENTINELS), else 0 (no WAIT)",
    )
    redis_wait_timeout_ms: int = Field(
        2000, ge=1, description="CLASSPULSE_REDIS_WAIT_TIMEOUT_MS: how long such a write waits for its replicas before"
        " it is retried (a batch never committed, a lease not trusted)",
    )

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        addresses = []
        for entry in filter(None, (part.strip() for part in self.redis_sentinels.split(","))):
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"CLASSPULSE_REDIS_SENTINELS: {entry!r} is not host:port")
            addresses.append((host, int(port)))
        return addresses

    def replicas_to_wait_for(self) -> int:
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if self.redis_sentinels else 0


class CaptureWindowSettings(ServiceSettings):
    """The capture times a service accepts (classpulse_core.capture): the services where frames enter or are
    counted read the same variables, so they refuse the same frames."""

    raw_retention_ms: int = Field(6 * 3_600_000, ge=60_000, description="CLASSPULSE_RAW_RETENTION_MS: 1 s samples kept")
    max_capture_ahead_ms: int = Field(
        60_000, ge=0, description="CLASSPULSE_MAX_CAPTURE_AHEAD_MS: clock skew accepted on a frame's capture time"
    )


class StorageSettings(RedisSettings, CaptureWindowSettings):
    """Settings of the services that read or write the class time series (retentions: a deployment's choice)."""

    # A student page posts a snapshot every 5 s (CLASSPULSE_STUDENT_SNAPSHOT_INTERVAL_S): 12 s lets one snapshot be
    # lost or late by 2 s before a student counts as gone, and a camera that stops is gone 12 s after its last frame.
    # The aggregator writes a frame's presence this far ahead; readers need it to know what the series still hold.
    presence_window_ms: int = Field(
        12_000, ge=1_000, le=600_000,
        description="CLASSPULSE_PRESENCE_WINDOW_MS: how long a camera's last frame counts when no next frame comes",
    )
    retention_10s_ms: int = Field(7 * 86_400_000, ge=60_000, description="CLASSPULSE_RETENTION_10S_MS: 10 s buckets kept")
    retention_1m_ms: int = Field(30 * 86_400_000, ge=60_000, description="CLASSPULSE_RETENTION_1M_MS: 1 min buckets kept")
    retention_1h_ms: int = Field(400 * 86_400_000, ge=60_000, description="CLASSPULSE_RETENTION_1H_MS: 1 h buckets kept")

    def resolutions(self) -> tuple[Resolution, ...]:
        """Raw seconds, then the compactions, finest first."""
        return (
            Resolution(RAW_RESOLUTION, 1000, self.raw_retention_ms),
            Resolution("10s", 10_000, self.retention_10s_ms),
            Resolution("1m", 60_000, self.retention_1m_ms),
            Resolution("1h", 3_600_000, self.retention_1h_ms),
        )

    def newest_sample_lead_ms(self) -> int:
        """How far past the clock a series' newest sample may lie: a frame captured up to `max_capture_ahead_ms`
        ahead, its presence written a presence window past that. RedisTimeSeries trims a series behind its own
        newest sample, so a series keeps its retention behind the clock only less this lead."""
        return self.max_capture_ahead_ms + self.presence_window_ms
