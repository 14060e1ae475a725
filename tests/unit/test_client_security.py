"""Kafka and Redis credentials and TLS reach every client: every Kafka client of the services is made by
classpulse_stream.kafka from KafkaSettings.client_options(), every Redis client from the settings' redis_url (so a
rediss:// URL with a password means TLS and AUTH everywhere), and secrets never appear in a settings dump."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis

from classpulse_core.settings import KafkaSettings, RedisSettings

pytestmark = pytest.mark.unit

SERVICES = Path(__file__).resolve().parents[2] / "services"
KAFKA_FACTORY = SERVICES / "common" / "stream" / "classpulse_stream" / "kafka.py"
KAFKA_CLIENTS = {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient"}


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def test_kafka_clients_are_made_only_by_the_factory_that_applies_the_security_settings():
    made_elsewhere = [
        f"{path.relative_to(SERVICES)}:{call.lineno}"
        for path in SERVICES.rglob("*.py")
        if path != KAFKA_FACTORY
        for call in _calls(path)
        if _name(call) in KAFKA_CLIENTS
    ]
    assert made_elsewhere == []
    factory_calls = [call for call in _calls(KAFKA_FACTORY) if _name(call) in KAFKA_CLIENTS]
    assert factory_calls, "the factory makes no client?"
    source = KAFKA_FACTORY.read_text()
    assert source.count("**settings.client_options()") == len({"make_producer", "make_consumer"})


def test_every_redis_client_comes_from_the_settings_url():
    clients = [
        (path, call)
        for path in SERVICES.rglob("*.py")
        for call in _calls(path)
        if _name(call) in ("from_url", "Redis", "StrictRedis")
    ]
    assert clients, "no Redis client found at all?"
    for path, call in clients:
        assert call.args and "redis_url" in ast.unparse(call.args[0]), f"{path.relative_to(SERVICES)}:{call.lineno}"
    # Clients through sentinels are made in the factory alone, from the same settings (the URL's TLS and password).
    through_sentinels = {
        path.relative_to(SERVICES).as_posix()
        for path in SERVICES.rglob("*.py")
        for call in _calls(path)
        if _name(call) in ("Sentinel", "master_for", "slave_for")
    }
    assert through_sentinels == {"common/store/classpulse_store/redis_clients.py"}


def test_sasl_and_tls_settings_become_client_options():
    settings = KafkaSettings(
        bootstrap_servers="kafka-0:9093,kafka-1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="classpulse",
        sasl_password="kafka-secret",
        ssl_cafile="/etc/kafka/ca.pem",
        ssl_certfile="/etc/kafka/client.pem",
        ssl_keyfile="/etc/kafka/client.key",
    )
    assert settings.client_options() == {
        "bootstrap_servers": ["kafka-0:9093", "kafka-1:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "classpulse",
        "sasl_plain_password": "kafka-secret",
        "ssl_cafile": "/etc/kafka/ca.pem",
        "ssl_certfile": "/etc/kafka/client.pem",
        "ssl_keyfile": "/etc/kafka/client.key",
    }


def test_a_rediss_url_means_tls_and_auth():
    settings = RedisSettings(redis_url="rediss://classpulse:redis-secret@redis.internal:6380/0")
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert (kwargs["username"], kwargs["password"], kwargs["port"]) == ("classpulse", "redis-secret", 6380)


def test_a_settings_dump_shows_no_secret():
    settings = RedisSettings(
        redis_url="redis://:redis-secret@127.0.0.1:6379/0",
        kafka=KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="kafka-secret"),
    )
    dumped = str(settings.model_dump(mode="json"))
    assert "redis-secret" not in dumped and "kafka-secret" not in dumped
    assert "**********" in dumped


def test_with_sentinels_every_client_asks_them_for_the_primary_and_keeps_the_urls_tls_and_credentials():
    from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

    from classpulse_store.redis_clients import async_redis_client, redis_client

    sentinels = {"redis_sentinels": "sentinel-0:26379, sentinel-1:26379", "redis_sentinel_password": "sentinel-secret"}
    settings = RedisSettings(redis_url="rediss://classpulse:redis-secret@unused:6380/2", redis_master_name="cp", **sentinels)
    assert settings.sentinel_addresses() == [("sentinel-0", 26379), ("sentinel-1", 26379)]
    client = redis_client(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "cp"
    assert pool.connection_class is SentinelManagedSSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("classpulse", "redis-secret", 2)
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel["host"], sentinel["password"]) == ("sentinel-0", "sentinel-secret")
    assert async_redis_client(settings).connection_pool.service_name == "cp"
    assert "sentinel-secret" not in str(settings.model_dump(mode="json"))


def test_a_sentinel_address_without_a_port_is_refused():
    with pytest.raises(ValueError, match="host:port"):
        RedisSettings(redis_sentinels="sentinel-0").sentinel_addresses()
