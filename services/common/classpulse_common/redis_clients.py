"""Redis clients of the services that use Redis, all made alike (a module of its own, so that the settings import
no client library)."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from classpulse_common.settings import RedisSettings

RECONNECTING = {"retry_on_error": [redis.ConnectionError, redis.TimeoutError], "health_check_interval": 15}
"""After a Redis restart every pooled connection is dead; redis-py retries a command on a fresh connection only for
the errors named here (without them the first command after a restart fails: once, it was a 500 from the API). The
asyncio client raises these same classes."""


def redis_client(settings: RedisSettings, socket_timeout: float = 5.0, **options: object) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=socket_timeout, **RECONNECTING, **options
    )


def async_redis_client(settings: RedisSettings, socket_timeout: float = 5.0, **options: object) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=socket_timeout, **RECONNECTING, **options
    )
