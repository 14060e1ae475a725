"""Redis clients of the services that use Redis, all made alike (a module of its own, so that the settings import
no client library).

With `CLASSPULSE_REDIS_SENTINELS` set, a client asks the sentinels for the current primary on every new connection:
after a failover, the commands that failed on the old primary (connection lost, or READONLY from a demoted one) are
retried on a fresh connection, which finds the new primary. The URL still gives the scheme (rediss:// for TLS, to the
sentinels too), the credentials and the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.connection import parse_url
from redis.typing import EncodableT, FieldT

from classpulse_core.settings import RedisSettings

RECONNECTING: dict[str, Any] = {"retry_on_error": [redis.ConnectionError, redis.TimeoutError], "health_check_interval": 15}
"""After a Redis restart or failover every pooled connection is dead; redis-py retries a command on a fresh connection
only for the errors named here (without them the first command after a restart fails: once, it was a 500 from the
API). A sentinel-managed connection to a demoted primary turns its READONLY answer into a ConnectionError, so it is
retried too, on the new primary. The asyncio client raises these same classes."""


def _sentinel_options(settings: RedisSettings, socket_timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the primary's connection options, the sentinels' own) from the URL, without its host and port."""
    options = parse_url(settings.redis_url.get_secret_value())
    tls = options.pop("connection_class", None) is redis.SSLConnection
    for unused in ("host", "port"):
        options.pop(unused, None)
    sentinel_password = settings.redis_sentinel_password
    sentinel_options: dict[str, Any] = {"socket_timeout": socket_timeout, "ssl": tls}
    if sentinel_password is not None:
        sentinel_options["password"] = sentinel_password.get_secret_value()
    return {**options, "ssl": tls}, sentinel_options


def redis_client(settings: RedisSettings, socket_timeout: float = 5.0, **options: Any) -> redis.Redis:
    if settings.redis_sentinels:
        primary, sentinel_options = _sentinel_options(settings, socket_timeout)
        sentinels = redis.sentinel.Sentinel(settings.sentinel_addresses(), sentinel_kwargs=sentinel_options)
        client: redis.Redis = sentinels.master_for(
            settings.redis_master_name, socket_timeout=socket_timeout, **primary, **RECONNECTING, **options
        )
        return client
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=socket_timeout, **RECONNECTING, **options
    )


def async_redis_client(settings: RedisSettings, socket_timeout: float = 5.0, **options: Any) -> aioredis.Redis:
    if settings.redis_sentinels:
        primary, sentinel_options = _sentinel_options(settings, socket_timeout)
        sentinels = aiosentinel.Sentinel(settings.sentinel_addresses(), sentinel_kwargs=sentinel_options)
        async_client: aioredis.Redis = sentinels.master_for(
            settings.redis_master_name, socket_timeout=socket_timeout, **primary, **RECONNECTING, **options
        )
        return async_client
    return aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=socket_timeout, **RECONNECTING, **options
    )


def redis_fields(values: Mapping[str, EncodableT]) -> dict[FieldT, EncodableT]:
    """`values` as redis-py's hash and stream commands type their fields: a dict[str, str] is not one to the type
    checker (a dict's key type is invariant), a copy made here is."""
    return {name: value for name, value in values.items()}
