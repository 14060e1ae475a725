"""The stage loop against the real broker: outputs produced, bad messages dead-lettered with their origin, a
dependency outage retried without loss, offsets committed only for what was done."""

import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition

from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import DeadLetter, Frame, FrameResult
from classpulse_core.settings import KafkaSettings
from classpulse_stream.health import HealthState
from classpulse_stream.kafka import make_consumer, make_producer
from classpulse_stream.stage import Emit, Reject, StageConfig, StageRunner

pytestmark = pytest.mark.integration


def frame(sequence: int, class_id: str = "runner-test") -> Frame:
    return Frame(
        class_id=class_id, source_id="src", frame_id=f"src:{sequence}", sequence=sequence, captured_at_ms=1_000 + sequence,
        published_at_ms=2_000, width=4, height=4, jpeg=b"\xff\xd8fake",
    )


def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=1000)
    records, deadline = [], time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records += batch
    consumer.close()
    return records


class Echo:
    """Passes frames through as empty results; rejects odd-numbered `reject` frames; raises on a poison frame;
    reports the dependency down for its first `outages` calls."""

    def __init__(self, output_topic: str, outages: int = 0) -> None:
        self.output_topic = output_topic
        self.outages = outages
        self.calls = 0

    def __call__(self, deliveries):
        self.calls += 1
        if self.calls <= self.outages:
            raise DependencyUnavailable("model_server", "down for the test")
        outcomes = []
        for delivery in deliveries:
            message = delivery.message
            if message.sequence == 13:
                raise RuntimeError("poison frame")
            if message.sequence == 7:
                outcomes.append(Reject(delivery, "impossible values: sequence 7 is refused"))
                continue
            outcomes.append(Emit(self.output_topic, FrameResult(**message.identity(), completed_at_ms=3_000, boxes=[])))
        return outcomes


def run_until(runner: StageRunner, stop: StopSignal, done, timeout_s: float = 60) -> None:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the runner did not stop on the stop signal"


@pytest.mark.parametrize("outages", [0, 2])
def test_runner_produces_dead_letters_and_commits(kafka_bootstrap, topic_factory, outages):
    source, output = topic_factory(partitions=3), topic_factory(partitions=1)
    dead_letters = topic_factory(partitions=1, name=source + ".dlq")
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    producer = make_producer(settings, "test-feeder")
    payloads = [frame(i).encode() for i in range(20)] + [b"\x00garbage", frame(99).encode()[:-3]]
    for payload in payloads:
        producer.send(source, key=b"runner-test", value=payload)
    producer.flush()
    producer.close()

    group = f"test-{uuid.uuid4().hex[:8]}"
    stop = StopSignal()
    handler = Echo(output, outages=outages)
    consumer = make_consumer(settings, group, [source], max_poll_records=8)
    runner = StageRunner(StageConfig("test", source), Frame, handler, consumer, make_producer(settings, "test-stage"), stop, HealthState())
    outputs: list = []
    letters: list = []

    def finished() -> bool:
        outputs[:] = read_all(kafka_bootstrap, output, 18, timeout_s=2)
        letters[:] = read_all(kafka_bootstrap, dead_letters, 4, timeout_s=2)
        return len(outputs) >= 18 and len(letters) >= 4

    run_until(runner, stop, finished)

    results = sorted(FrameResult.decode(r.value).sequence for r in outputs)
    assert results == [i for i in range(20) if i not in (7, 13)]
    reasons = {DeadLetter.decode(r.value).reason.split(":")[0] for r in letters}
    assert len(letters) == 4
    # A message that makes the stage fail is retried with its batch and dead-lettered on its third failure.
    assert reasons == {"impossible values", "processing failed 3 times", "not a msgpack message"}
    for record in letters:
        letter = DeadLetter.decode(record.value)
        assert letter.origin_topic == source and letter.stage == "test"
        assert letter.value in payloads  # the original bytes, for replay
    if outages:
        assert handler.calls > outages  # retried after the outage, nothing lost

    # Every consumed offset is committed: a restart would not reprocess anything.
    check = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    partitions = [TopicPartition(source, p) for p in range(3)]
    ends = check.end_offsets(partitions)
    assert {tp: check.committed(tp) or 0 for tp in partitions} == ends
    check.close()
