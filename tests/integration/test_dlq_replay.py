"""`python -m classpulse_stream.dlq` against the real broker: letters of a dead-letter topic go back to its source
topic with their original key and bytes; letters from another topic, truncated ones and non-letters do not."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer

from classpulse_core.schemas import DeadLetter
from classpulse_stream import dlq

pytestmark = pytest.mark.integration


def _letter(origin: str, key: bytes, value: bytes, reason: str = "undecodable frame: frame is empty") -> bytes:
    return DeadLetter(
        stage="detector", reason=reason, origin_topic=origin, origin_partition=0, origin_offset=7, failed_at_ms=1,
        key=key, value=value,
    ).encode()


def test_replay_sends_each_letters_original_message_to_its_source_topic(topic_factory, kafka_bootstrap, monkeypatch):
    source = topic_factory(2)
    dead = topic_factory(2, name=source + ".dlq")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for value in (
        _letter(source, b"class-a", b"frame-1"),
        _letter(source, b"class-b", b"frame-2"),
        _letter("classpulse.elsewhere", b"class-a", b"not ours"),
        _letter(source, b"class-a", b"cut", reason="processing failed 3 times: x (original value of 9 bytes truncated to its first 3)"),
        b"not a letter",
    ):
        producer.send(dead, value=value)
    producer.flush()
    producer.close()

    monkeypatch.setenv("CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    assert dlq.main(["--topic", dead]) == 0

    consumer = KafkaConsumer(source, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    replayed = sorted((record.key, record.value) for record in consumer)
    consumer.close()
    assert replayed == [(b"class-a", b"frame-1"), (b"class-b", b"frame-2")]


def test_replay_refuses_a_topic_that_is_not_a_dead_letter_topic(topic_factory, kafka_bootstrap, monkeypatch):
    monkeypatch.setenv("CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    with pytest.raises(SystemExit, match="not a dead-letter topic"):
        dlq.main(["--topic", topic_factory(1)])
