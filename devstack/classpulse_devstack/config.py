"""Where the local stack keeps its files and which ports it uses, with environment overrides.

Defaults are the project's fixed local layout; the overrides exist so that a second stack (or a test run) can live
beside a developer's without touching it: CLASSPULSE_DEVSTACK_PORT_OFFSET=N moves every port of the stack (Kafka's
broker and controller, Redis and its exporter, Prometheus, the model server, the five services) up by N, and
CLASSPULSE_DEVSTACK_RUN_DIR gives it its own data, logs, pid files and admin key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# devstack/classpulse_devstack/config.py -> the repository root is two folders up from this package.
REPO_ROOT = Path(__file__).resolve().parents[2]

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


MAX_PORT = 65535
HIGHEST_DEFAULT_PORT = 9121
"""The Redis exporter's: the highest of the stack's default ports, so it bounds the offset."""


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    return int(value) if value else default


@dataclass(frozen=True)
class DevstackConfig:
    repo_root: Path
    run_dir: Path
    cache_dir: Path
    python: str
    kafka_port: int
    kafka_controller_port: int
    redis_port: int
    prometheus_port: int
    redis_exporter_port: int
    """Where Redis's Prometheus exporter serves the primary's (`redis`) metrics, for Prometheus to scrape."""
    model_server_port: int
    image_retention_ms: int
    """Retention of topics that carry face images (frames, faces and their dead letters): short, privacy by default."""
    predictions_retention_ms: int
    port_offset: int = 0
    """Added to every default port; the services' ports are their defaults (components.SERVICE_PORTS) plus this."""
    redis_sentinel: bool = False
    """CLASSPULSE_DEVSTACK_REDIS_SENTINEL=1: Redis as production runs it, a primary, two replicas and three sentinels
    (components redis, redis-replica, redis-replica-2, redis-sentinel-1..3), and every service finds the primary
    through them."""
    model_server_mixed_precision: str = "auto"
    """CLASSPULSE_DEVSTACK_MODEL_SERVER_MIXED_PRECISION: the stand-in's --mixed-precision (off, bfloat16, auto). The
    exported model is float32; "auto" computes it in bfloat16 only where this machine's CPU runs that faster, as a
    deployment turns TF Serving's --mixed_precision=bfloat16 on for its CPUs (deploy/k8s/README.md)."""

    @property
    def redis_replica_ports(self) -> tuple[int, ...]:
        """The replicas' (with sentinels): redis-replica's beside the primary's, redis-replica-2's after the
        sentinels'."""
        return self.redis_port + 1, 6384 + self.port_offset

    @property
    def redis_replica_port(self) -> int:
        """redis-replica's."""
        return self.redis_replica_ports[0]

    @property
    def redis_sentinel_ports(self) -> tuple[int, ...]:
        return tuple(6381 + index + self.port_offset for index in range(3))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DevstackConfig:
        """Defaults, overridden by CLASSPULSE_DEVSTACK_* variables of `environ` (default: this process's environment).

        A port named on its own (CLASSPULSE_DEVSTACK_KAFKA_PORT, ...) wins over the offset."""
        env = os.environ if environ is None else environ
        offset = _env_int(env, "CLASSPULSE_DEVSTACK_PORT_OFFSET", 0)
        if not 0 <= offset <= MAX_PORT - HIGHEST_DEFAULT_PORT:
            raise ValueError(
                f"CLASSPULSE_DEVSTACK_PORT_OFFSET={offset}: must be 0..{MAX_PORT - HIGHEST_DEFAULT_PORT} "
                "so that every port stays below 65536"
            )
        return cls(
            repo_root=REPO_ROOT,
            run_dir=Path(env.get("CLASSPULSE_DEVSTACK_RUN_DIR") or REPO_ROOT / ".run").resolve(),
            cache_dir=REPO_ROOT / ".cache",
            python=sys.executable,
            kafka_port=_env_int(env, "CLASSPULSE_DEVSTACK_KAFKA_PORT", 9092 + offset),
            kafka_controller_port=_env_int(env, "CLASSPULSE_DEVSTACK_KAFKA_CONTROLLER_PORT", 9093 + offset),
            redis_port=_env_int(env, "CLASSPULSE_DEVSTACK_REDIS_PORT", 6379 + offset),
            # Prometheus's scrape targets and the classifier's model server address follow the offset too: the
            # stack renders prometheus.yml with it and hands every service the model server's address.
            prometheus_port=9090 + offset,
            redis_exporter_port=9121 + offset,
            model_server_port=8500 + offset,
            image_retention_ms=_env_int(env, "CLASSPULSE_DEVSTACK_IMAGE_RETENTION_MINUTES", 10) * MINUTE_MS,
            predictions_retention_ms=DAY_MS,
            port_offset=offset,
            redis_sentinel=env.get("CLASSPULSE_DEVSTACK_REDIS_SENTINEL", "") in ("1", "true", "yes"),
            model_server_mixed_precision=env.get("CLASSPULSE_DEVSTACK_MODEL_SERVER_MIXED_PRECISION") or "auto",
        )

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def admin_key_file(self) -> Path:
        return self.run_dir / "admin-api-key"

    def admin_api_key(self) -> str:
        """The local stack's admin API key, made on first use and kept in .run/ (readable by its owner only)."""
        if not self.admin_key_file.exists():
            from classpulse_web.auth import new_key

            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.admin_key_file.touch(mode=0o600)
            self.admin_key_file.write_text(new_key()[1] + "\n")
        return self.admin_key_file.read_text().strip()

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def rendered_config_dir(self) -> Path:
        """Config files filled in from the committed templates in devstack/ at each start."""
        return self.run_dir / "conf"

    @property
    def kafka_libs_dir(self) -> Path:
        return self.cache_dir / "kafka" / "libs"

    @property
    def redis_openssl_dir(self) -> Path:
        return self.cache_dir / "redis-stack" / "lib"

    @property
    def devstack_files(self) -> Path:
        """The committed config files and templates (devstack/kafka, devstack/redis)."""
        return self.repo_root / "devstack"
