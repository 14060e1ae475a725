"""A stage's consumer fetches ahead at most `fetch_max_bytes` at a time, however far behind it is: what it fetched
is held in the process (the response, then each record's bytes) until its batches are processed, so a consumer that
took 32 MiB of frames at once after a stall kept its memory that much higher for good (the soak's detector,
docs/reliability-report.md). A message larger than the bound still comes, alone."""

from __future__ import annotations

import os
import uuid

import pytest
from kafka import KafkaProducer

from classpulse_core.settings import KafkaSettings
from classpulse_stream.kafka import make_consumer

pytestmark = pytest.mark.integration

FRAME_BYTES = 40 * 1024
"""About a 640x480 class camera's JPEG."""


def _fetch_size_max(consumer) -> float:
    return consumer.metrics()["consumer-fetch-manager-metrics"]["fetch-size-max"]


def _consume(settings: KafkaSettings, topic: str, count: int) -> tuple[int, float]:
    consumer = make_consumer(settings, f"test-fetch-{uuid.uuid4().hex[:8]}", [topic])
    try:
        received = 0
        for _ in range(600):
            for records in consumer.poll(timeout_ms=200, max_records=16).values():
                received += len(records)
            if received >= count:
                break
        return received, _fetch_size_max(consumer)
    finally:
        consumer.close()


def test_a_consumer_behind_by_24_mib_fetches_at_most_its_bound_at_a_time(topic_factory, kafka_bootstrap):
    topic = topic_factory(4)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    backlog = 600  # 24 MiB: a 20-s stall of a detector at 30 frames/s
    for n in range(backlog):
        producer.send(topic, key=f"class-{n % 8}".encode(), value=os.urandom(FRAME_BYTES))
    producer.flush()
    producer.close()

    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    received, largest_fetch = _consume(settings, topic, backlog)
    assert received == backlog
    # 1 MiB by default; a record batch is never split, so the bound may be passed by one producer batch at most.
    assert largest_fetch <= settings.fetch_max_bytes + settings.producer_batch_bytes <= 2 * 1024 * 1024


def test_a_message_larger_than_the_bound_still_comes(topic_factory, kafka_bootstrap):
    topic = topic_factory(1)
    # A small bound, so that a message over it fits the devstack broker's (default) message size limit.
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, fetch_max_bytes=256 * 1024)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, value=os.urandom(512 * 1024)).get(timeout=30)
    producer.send(topic, value=b"small").get(timeout=30)
    producer.close()
    received, largest_fetch = _consume(settings, topic, 2)
    assert received == 2 and largest_fetch > settings.fetch_max_bytes
