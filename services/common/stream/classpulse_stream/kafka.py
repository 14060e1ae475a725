"""Kafka clients configured the one way every stage uses them."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from classpulse_core.backoff import Backoff, Retries
from classpulse_core.settings import KafkaSettings

log = logging.getLogger(__name__)
Client = TypeVar("Client")
STARTUP_BACKOFF = Backoff(initial_s=1.0, max_s=10.0)


def with_startup_retries(connect: Callable[[], Client], what: str, timeout_s: float = 120.0) -> Client:
    """Connect, retrying while the broker is not up yet (services may start before Kafka), then give up loudly."""
    deadline = time.monotonic() + timeout_s
    retries = Retries(STARTUP_BACKOFF)
    while True:
        try:
            return connect()
        except KafkaError as exc:
            delay = retries.failed()
            if time.monotonic() + delay > deadline:
                raise
            log.warning("kafka not reachable yet; retrying", extra={"client": what, "error": repr(exc), "retry_in_s": delay})
            time.sleep(delay)


def make_producer(settings: KafkaSettings, client_id: str, **overrides: object) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas: a flushed message is durable."""
    options: dict[str, object] = {
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.producer_linger_ms,
        "batch_size": settings.producer_batch_bytes,
        "max_request_size": 16 * 1024 * 1024,
        "request_timeout_ms": 15_000,
        "retries": 5,
        **settings.client_options(),
        **overrides,
    }
    return with_startup_retries(lambda: KafkaProducer(**options), client_id)


def make_consumer(settings: KafkaSettings, group_id: str | None, topics: list[str], **overrides: object) -> KafkaConsumer:
    """A consumer whose offsets are committed by the stage, only after its output is durable (at least once). With no
    group and no topics it joins nothing: its user assigns partitions itself (the dead-letter replay)."""
    options: dict[str, object] = {
        "client_id": group_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 64,
        "fetch_min_bytes": settings.fetch_min_bytes,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        # Bounds the memory a consumer behind by many frames takes (KafkaSettings.fetch_max_bytes).
        "fetch_max_bytes": settings.fetch_max_bytes,
        "max_partition_fetch_bytes": settings.fetch_max_bytes,
        "max_poll_interval_ms": 300_000,
        # A member killed without leaving the group holds its partitions until its session times out: kafka-python's
        # default of 45 s stalled a stage for 45 s after a kill -9 and restart; 10 s does it in 10 (heartbeats come
        # from a background thread, so a long batch does not end the session).
        "session_timeout_ms": 10_000,
        # Notice new topics and added partitions within seconds, not the default five minutes.
        "metadata_max_age_ms": 15_000,
        **settings.client_options(),
        **overrides,
    }
    consumer = with_startup_retries(lambda: KafkaConsumer(**options), group_id or "consumer")
    # Join the group only once the topics' partitions are known: a member that joins before its metadata arrives is
    # assigned nothing and, with kafka-python, may stay idle until the next rebalance.
    for topic in topics:
        with_startup_retries(functools.partial(_require_partitions, consumer, topic), f"{group_id} metadata of {topic}")
    if topics:
        consumer.subscribe(topics)
    return consumer


def _require_partitions(consumer: KafkaConsumer, topic: str) -> set[int]:
    partitions: set[int] | None = consumer.partitions_for_topic(topic)
    if not partitions:
        raise KafkaTopicMissing(f"topic {topic!r} has no partitions (not created yet?)")
    return partitions


class KafkaTopicMissing(KafkaError):
    retriable = True
