"""A message that kills its stage's process: with the attempt counts in Redis (the detector's ledger), the stage,
killed and restarted on it again and again, dead-letters it after three attempts and moves on, losing nothing else.

The stage is a real process consuming a real topic; its handler SIGKILLs the process on the poison message, as an
out-of-memory kill or a crash in a native decoder would, and the test restarts it until its input is committed.
A counter the stage failed to drop at its commit expires by itself, however busy the stage stays."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import DeadLetter, FrameResult
from classpulse_core.settings import KafkaSettings
from classpulse_store.attempts import RedisAttempts
from classpulse_stream.health import HealthState
from classpulse_stream.kafka import make_producer
from classpulse_stream.stage import Emit, StageConfig, StageRunner

POISON = 3
MESSAGES = 6


def _result(sequence: int) -> FrameResult:
    return FrameResult(
        class_id="c", source_id="s", frame_id=f"s:{sequence}", sequence=sequence, captured_at_ms=1, completed_at_ms=1,
        boxes=[],
    )


def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    check = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return check.committed(tp) or 0
    finally:
        check.close()


def run_stage_process(bootstrap: str, redis_url: str, source: str, output: str, group: str) -> None:
    """The stage of one process: until every message of `source` is committed, or until the poison kills it."""
    def handle(deliveries):
        if any(delivery.message.sequence == POISON for delivery in deliveries):
            signal.raise_signal(signal.SIGKILL)
        return [Emit(output, delivery.message) for delivery in deliveries]

    tp = TopicPartition(source, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest")
    consumer.assign([tp])  # assigned, not subscribed: a restarted process need not wait out the dead one's session
    stop = StopSignal()

    def stop_when_committed() -> None:
        while not stop.wait(0.3):
            if _committed(bootstrap, group, tp) >= MESSAGES:
                stop.set()

    threading.Thread(target=stop_when_committed, daemon=True).start()
    attempts = RedisAttempts(redis.Redis.from_url(redis_url), f"attempts-test-{group}")
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap), group)
    config = StageConfig("attempts-test", source, max_backoff_s=0.1)
    StageRunner(config, FrameResult, handle, consumer, producer, stop, HealthState(), attempts=attempts).run()


@pytest.mark.integration
def test_a_message_that_kills_the_stage_is_dead_lettered_across_restarts(infra, kafka_bootstrap, topic_factory, redis_client):
    source, output = topic_factory(partitions=1), topic_factory(partitions=1)
    dead_letters = topic_factory(partitions=1, name=source + ".dlq")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for sequence in range(MESSAGES):
        producer.send(source, key=b"c", value=_result(sequence).encode())
    producer.flush()
    producer.close()
    group = f"attempts-{uuid.uuid4().hex[:8]}"
    redis_url = f"redis://127.0.0.1:{infra.config.redis_port}/0"

    exits = []
    while len(exits) < 8 and (not exits or exits[-1] != 0):
        child = subprocess.run(
            [sys.executable, __file__, kafka_bootstrap, redis_url, source, output, group], timeout=120, capture_output=True
        )
        exits.append(child.returncode)
    # Killed on the batch holding the poison, then on the poison alone three times; then it is dead-lettered.
    assert exits == [-signal.SIGKILL] * 4 + [0], (exits, child.stderr.decode()[-2000:])

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(output, 0), TopicPartition(dead_letters, 0)])
    records = list(consumer)
    consumer.close()
    emitted = {FrameResult.decode(r.value).sequence for r in records if r.topic == output}
    letters = [DeadLetter.decode(r.value) for r in records if r.topic == dead_letters]
    assert emitted == set(range(MESSAGES)) - {POISON}
    assert [(letter.origin_offset, letter.reason) for letter in letters] == [
        (POISON, "processing failed 3 times: the stage stopped while processing it")
    ]
    # Counters go with their commit: nothing is left behind for the next messages.
    assert redis_client.hgetall(f"classpulse:stage-attempts:attempts-test-{group}") == {}


@pytest.mark.integration
def test_a_counter_left_behind_expires_while_the_stage_counts_others(redis_client):
    """Its forget() failed (Redis away at the commit): nothing counts it again, and the stage's later counts do not
    keep it alive."""
    ledger = RedisAttempts(redis_client, f"attempts-ttl-{uuid.uuid4().hex[:8]}", ttl_s=1)
    ledger.add(["in:0:10:batch"], 1)
    for offset in range(11, 14):  # the next batches, counted and dropped at their commits
        time.sleep(0.5)
        ledger.add([f"in:0:{offset}:batch"], 1)
        ledger.forget([f"in:0:{offset}:batch"])
    assert redis_client.hgetall(ledger.key) == {}


@pytest.mark.integration
def test_no_counters_cost_no_command(redis_client):
    """A batch of undecodable messages only has none: Redis refuses HDEL or HEXPIRE without fields."""
    ledger = RedisAttempts(redis_client, f"attempts-none-{uuid.uuid4().hex[:8]}")
    assert ledger.add([], 1) == []
    ledger.forget([])


if __name__ == "__main__":
    run_stage_process(*sys.argv[1:])
