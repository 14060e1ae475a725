"""Redis's Prometheus exporter (oliver006/redis_exporter, from Debian's prometheus-redis-exporter), run beside the
stack's Redis as its sidecar container runs beside each Redis pod in Kubernetes (deploy/k8s/base/redis/redis.yaml)
and its own service in compose: it answers each scrape with the primary's INFO and CONFIG as redis_* series (memory
against maxmemory, evictions, replication), which deploy/prometheus/rules/redis.yml alerts on.
"""

from __future__ import annotations

from classpulse_devstack.config import DevstackConfig

METRICS_FLAGS = ("--redis-only-metrics", "--include-config-metrics")
"""What every exporter of the project exports, here, in compose and in Kubernetes alike: Redis's series without the
exporter's own Go runtime's, and CONFIG GET's values (redis_config_value{key=...}, secrets redacted), which the alert
rules compare the connected replicas and their lag with (min-replicas-to-write, min-replicas-max-lag)."""


def server_command(config: DevstackConfig) -> list[str]:
    return [
        "prometheus-redis-exporter",
        f"--redis.addr=redis://127.0.0.1:{config.redis_port}",
        f"--web.listen-address=127.0.0.1:{config.redis_exporter_port}",
        *METRICS_FLAGS,
    ]
