"""The runner's error policy against an in-memory Kafka: a message that keeps failing is dead-lettered after its
retries (never redelivered forever, never dead-lettered on one transient fault), a contract error stalls the stage
without dead-lettering anything, a dependency outage makes it not ready, its counters count messages once however
often they were attempted, lag gauges leave with their partitions, and dead-letter reasons make few labels."""

from __future__ import annotations

from collections import namedtuple

import msgpack
import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError
from prometheus_client import generate_latest

from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import DeadLetter, Frame, FrameResult, SchemaError
from classpulse_stream import metrics
from classpulse_stream.health import HealthState
from classpulse_stream.stage import ContractBroken, Emit, MemoryAttempts, StageConfig, StageRunner, reason_label

pytestmark = pytest.mark.unit

TOPIC = "in"
Record = namedtuple("Record", "topic partition offset key value")


def _result(sequence: int) -> FrameResult:
    return FrameResult(
        class_id="c", source_id="s", frame_id=f"s:{sequence}", sequence=sequence, captured_at_ms=1, completed_at_ms=1,
        boxes=[],
    )


class _Kafka:
    """One partition of `messages`; stops the stage once everything is committed or after `max_polls` polls."""

    def __init__(self, messages: list[FrameResult], stop: StopSignal, max_polls: int = 50) -> None:
        self.tp = TopicPartition(TOPIC, 0)
        self.log = [Record(TOPIC, 0, offset, b"c", m.encode()) for offset, m in enumerate(messages)]
        self.next_offset = self.committed = self.polls = 0
        self.stop, self.max_polls = stop, max_polls
        self.sent: list[tuple[str, bytes]] = []

    def poll(self, timeout_ms: int) -> dict:
        self.polls += 1
        if (self.log and self.committed == len(self.log)) or self.polls >= self.max_polls:
            self.stop.set()
        batch, self.next_offset = self.log[self.next_offset :], len(self.log)
        return {self.tp: batch} if batch else {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.next_offset = offset

    def commit(self, offsets: dict) -> None:
        self.committed = offsets[self.tp].offset

    def assignment(self) -> set:
        return {self.tp}

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.log)

    def position(self, tp: TopicPartition, timeout_ms: int) -> int:
        return self.next_offset

    def close(self, **how_long_or_whether_to_commit: object) -> None:
        pass

    def send(self, topic: str, key: bytes, value: bytes) -> _Kafka:
        self.sent.append((topic, value))
        return self

    def failed(self) -> bool:
        return False

    def flush(self, timeout: float) -> None:
        pass


def _run(name: str, handle, messages: list[FrameResult], max_polls: int = 50) -> tuple[_Kafka, HealthState]:
    stop, health = StopSignal(), HealthState()
    kafka = _Kafka(messages, stop, max_polls)
    config = StageConfig(name, TOPIC, max_backoff_s=0.001, lag_refresh_s=0)
    StageRunner(config, FrameResult, handle, kafka, kafka, stop, health).run()
    return kafka, health


def _dead_letters(kafka: _Kafka) -> list[DeadLetter]:
    return [DeadLetter.decode(value) for topic, value in kafka.sent if topic == TOPIC + ".dlq"]


def _emitting_unless(fails: dict[int, int]):
    """A handler that echoes its messages, and raises for message `sequence` its first fails[sequence] times."""
    tries: dict[int, int] = {}

    def handle(deliveries):
        for delivery in deliveries:
            sequence = delivery.message.sequence
            tries[sequence] = tries.get(sequence, 0) + 1
            if tries[sequence] <= fails.get(sequence, 0):
                raise RuntimeError(f"boom {sequence}")
        return [Emit("out", delivery.message) for delivery in deliveries]

    return handle


def test_a_message_that_keeps_failing_is_dead_lettered_after_its_retries():
    kafka, _ = _run("failing", _emitting_unless({1: 1000}), [_result(0), _result(1), _result(2)])
    [letter] = _dead_letters(kafka)
    assert (letter.origin_offset, letter.reason) == (1, "processing failed 3 times: RuntimeError('boom 1')")
    assert kafka.committed == 3
    assert {FrameResult.decode(value).sequence for topic, value in kafka.sent if topic == "out"} == {0, 2}


def test_each_message_of_a_batch_out_of_retries_is_dead_lettered_with_its_own_failure():
    """A dead letter decided before a later message fails is final: retried with the batch, its message would be
    attempted past its limit and dead-lettered as if the stage had died in it, its own failure lost."""
    tries: list[int] = []
    failing = _emitting_unless({0: 1000, 1: 1000, 2: 1000})

    def handle(deliveries):
        tries.extend(delivery.message.sequence for delivery in deliveries)
        return failing(deliveries)

    kafka, _ = _run("failing-several", handle, [_result(sequence) for sequence in range(4)])
    assert [(letter.origin_offset, letter.reason) for letter in _dead_letters(kafka)] == [
        (sequence, f"processing failed 3 times: RuntimeError('boom {sequence}')") for sequence in range(3)
    ]
    assert kafka.committed == 4
    assert [tries.count(sequence) for sequence in range(4)] == [4, 4, 4, 2]  # the batch once, then alone


def _count(counter, *labels: str) -> float:
    return counter.labels(*labels)._value.get()


def test_a_dependency_outage_makes_the_stage_not_ready_and_its_retries_count_as_redeliveries():
    """Counted per attempt, a stage retrying without end would look busy: PipelineStalled and ConsumerLagHigh, which
    divide by the stage's rate, would stay quiet."""
    readiness, outage = [], [DependencyUnavailable("redis", "connection refused")] * 3
    health = HealthState()

    def aggregate(deliveries):
        readiness.append(health.ready())
        if outage:
            raise outage.pop()
        return [Emit("out", delivery.message) for delivery in deliveries]

    stop = StopSignal()
    kafka = _Kafka([_result(0), _result(1), _result(2)], stop)
    StageRunner(StageConfig("outage", TOPIC, max_backoff_s=0.001), FrameResult, aggregate, kafka, kafka, stop, health).run()
    assert readiness == [(True, "ready")] + [(False, "redis unavailable: connection refused")] * 3
    assert health.ready() == (True, "ready")
    assert (_count(metrics.MESSAGES_IN, "outage", TOPIC), _count(metrics.MESSAGES_REDELIVERED, "outage", TOPIC)) == (3, 9)
    assert _count(metrics.MESSAGES_OUT, "outage", "out") == 3


def test_an_outage_ends_for_a_member_whose_failed_batch_a_rebalance_gave_away():
    """Else the member would stay not ready until it processed a batch, however long its new partitions stay idle."""
    stop, health = StopSignal(), HealthState()
    kafka = _Kafka([_result(0)], stop)
    readiness = []

    def idle_poll(timeout_ms: int) -> dict:
        readiness.append(health.ready())
        if len(readiness) == 2:
            stop.set()
        return {}

    def failing(deliveries):
        kafka.assignment, kafka.poll = set, idle_poll  # the rebalance, while the batch waits on Redis
        raise DependencyUnavailable("redis", "connection refused")

    StageRunner(StageConfig("given-away", TOPIC, max_backoff_s=0.001), FrameResult, failing, kafka, kafka, stop, health).run()
    assert readiness == [(False, "redis unavailable: connection refused"), (True, "ready")]


def test_output_and_dead_letters_count_once_kafka_acknowledged_them():
    stop = StopSignal()
    kafka = _Kafka([_result(0)], stop)
    kafka.log.append(Record(TOPIC, 0, 1, b"c", b"\xc1 not msgpack"))
    refused = [True] * 2  # the first batch's result and dead letter
    kafka.failed = lambda: bool(refused) and refused.pop()
    kafka.exception = RuntimeError("broker away")
    echo = _emitting_unless({})
    StageRunner(StageConfig("acknowledged", TOPIC, max_backoff_s=0.001), FrameResult, echo, kafka, kafka, stop, HealthState()).run()
    assert kafka.committed == 2
    assert _count(metrics.MESSAGES_OUT, "acknowledged", "out") == 1
    assert _count(metrics.DEAD_LETTERS, "acknowledged", "not msgpack") == 1
    assert _count(metrics.MESSAGES_IN, "acknowledged", TOPIC) == 2


def test_a_batch_whose_commit_failed_counts_where_it_will_not_be_delivered_again():
    """The coordinator away a moment: the commit fails, the partition stays this member's and its position is past the
    batch, which nobody delivers again: counted here, or never."""
    stop = StopSignal()
    kafka = _Kafka([_result(0)], stop, max_polls=4)
    failures = [KafkaConnectionError("coordinator away")]

    def commit_after_a_failure(offsets: dict) -> None:
        if failures:
            raise failures.pop()
        kafka.committed = offsets[kafka.tp].offset

    kafka.commit = commit_after_a_failure
    echo = _emitting_unless({})
    StageRunner(StageConfig("commit-failed", TOPIC, max_backoff_s=0.001), FrameResult, echo, kafka, kafka, stop, HealthState()).run()
    assert kafka.committed == 0 and not failures  # its commit failed, and nothing delivered it again
    assert _count(metrics.MESSAGES_IN, "commit-failed", TOPIC) == 1
    assert _count(metrics.MESSAGES_OUT, "commit-failed", "out") == 1


def test_a_message_that_fails_twice_then_succeeds_is_not_dead_lettered():
    kafka, _ = _run("flaky", _emitting_unless({1: 2}), [_result(0), _result(1)])
    assert _dead_letters(kafka) == [] and kafka.committed == 2


def test_a_broken_contract_stalls_the_stage_and_dead_letters_nothing():
    def broken(deliveries):
        raise ContractBroken("model_server", "signature 'emotion_single_pass' not found")

    kafka, health = _run("stalled", broken, [_result(0)], max_polls=5)
    assert _dead_letters(kafka) == [] and kafka.committed == 0
    assert health.ready() == (False, "model_server breaks the contract: signature 'emotion_single_pass' not found")
    assert metrics.STAGE_STALLED.labels("stalled")._value.get() == 1
    assert metrics.CONSUMER_LAG.labels("stalled", TOPIC, "0")._value.get() == 1


def test_a_stalled_stage_resumes_once_the_contract_holds_again():
    calls = []

    def fixed_on_third_try(deliveries):
        calls.append(1)
        if len(calls) < 3:
            raise ContractBroken("model_server", "output 'probabilities' has shape [1, 8]")
        return []

    kafka, health = _run("resumed", fixed_on_third_try, [_result(0)])
    assert kafka.committed == 1 and _dead_letters(kafka) == []
    assert health.ready() == (True, "ready")
    assert metrics.STAGE_STALLED.labels("resumed")._value.get() == 0


def test_lag_gauges_of_revoked_partitions_are_removed():
    stop = StopSignal()
    kafka = _Kafka([_result(0)], stop)
    other = TopicPartition(TOPIC, 1)
    kafka.assignment = lambda: {kafka.tp, other}
    runner = StageRunner(StageConfig("rebalanced", TOPIC, lag_refresh_s=0), FrameResult, list, kafka, kafka, stop, HealthState())
    runner._refresh_lag()
    kafka.assignment = lambda: {kafka.tp}  # partition 1 revoked by a rebalance
    runner._refresh_lag()
    lagging = {s.labels["partition"] for m in metrics.CONSUMER_LAG.collect() for s in m.samples if s.labels["stage"] == "rebalanced"}
    assert lagging == {"0"}


def test_a_stage_exports_its_series_from_zero_before_its_first_batch():
    """A series that first appears holding a whole batch shows no rate in Prometheus (a service just restarted)."""
    stop = StopSignal()
    kafka = _Kafka([_result(0)], stop)
    StageRunner(StageConfig("just-started", TOPIC), FrameResult, list, kafka, kafka, stop, HealthState())
    exported = generate_latest().decode()
    for series in (
        f'classpulse_messages_in_total{{stage="just-started",topic="{TOPIC}"}} 0.0',
        'classpulse_batch_size_count{stage="just-started"} 0.0',
        'classpulse_batch_processing_seconds_count{stage="just-started"} 0.0',
        'classpulse_latency_seconds_count{stage="just-started"} 0.0',
    ):
        assert series in exported


def test_dead_letter_reasons_make_a_bounded_set_of_labels():
    reasons = []
    for schema in ("evil-1", "evil-2"):
        with pytest.raises(SchemaError) as refused:
            Frame.decode(msgpack.packb({"schema": schema, "v": 1}))
        reasons.append(str(refused.value))
    assert {reason_label(reason) for reason in reasons} == {"unknown schema"}
    assert reason_label("wrong size: header says 1x1, image is 2x2") == "wrong size"
    assert reason_label("anything a sender wrote") == "other"


@pytest.mark.parametrize(
    "verdict",
    [ContractBroken("model_server", "no signature 'emotion_single_pass'"), DependencyUnavailable("model_server", "refused")],
    ids=["broken", "unreachable"],
)
def test_the_contract_is_checked_at_start_and_readiness_follows_it_without_traffic(verdict):
    verdicts = [verdict, None]
    readiness = []

    def check():
        verdict = verdicts.pop(0) if verdicts else None
        if verdict:
            raise verdict

    stop, health = StopSignal(), HealthState()
    kafka = _Kafka([], stop, max_polls=4)
    original_poll = kafka.poll
    kafka.poll = lambda timeout_ms: (readiness.append(health.ready()[0]), original_poll(timeout_ms))[1]
    config = StageConfig("checked", TOPIC, max_backoff_s=0.001)
    StageRunner(config, FrameResult, list, kafka, kafka, stop, health, check_contract=check).run()
    assert readiness[:3] == [False, False, True]  # starting; held by the first check; the second one passed
    assert metrics.STAGE_STALLED.labels("checked")._value.get() == 0


class _Crash(BaseException):
    """What a process death looks like to the runner: nothing after it runs (no except Exception catches it)."""


def test_a_message_that_crashes_the_stage_is_dead_lettered_after_three_restarts():
    attempts = MemoryAttempts()  # shared by every "process": a ledger that outlives them, as RedisAttempts does
    messages = [_result(0), _result(1), _result(2)]
    committed_log = _Kafka(messages, StopSignal())

    def crashing_on_1(deliveries):
        if any(delivery.message.sequence == 1 for delivery in deliveries):
            raise _Crash
        return [Emit("out", delivery.message) for delivery in deliveries]

    restarts = 0
    while committed_log.committed < len(messages) and restarts < 10:
        stop = StopSignal()
        committed_log.stop, committed_log.polls, committed_log.next_offset = stop, 0, committed_log.committed
        runner = StageRunner(StageConfig("crashing", TOPIC, max_backoff_s=0.001), FrameResult, crashing_on_1,
                             committed_log, committed_log, stop, HealthState(), attempts=attempts)
        try:
            runner.run()
        except _Crash:
            restarts += 1
    [letter] = _dead_letters(committed_log)
    assert (letter.origin_offset, restarts) == (1, 4)  # the batch once, then message 1 alone three times
    assert letter.reason == "processing failed 3 times: the stage stopped while processing it"
    assert {FrameResult.decode(value).sequence for topic, value in committed_log.sent if topic == "out"} == {0, 2}




def test_after_kafka_refused_a_batchs_output_the_batch_is_retried_whole():
    sizes = []

    def echo(deliveries):
        sizes.append(len(deliveries))
        return [Emit("out", delivery.message) for delivery in deliveries]

    stop = StopSignal()
    kafka = _Kafka([_result(0), _result(1), _result(2)], stop)
    refused = [True] * 3  # the first batch's three sends fail
    kafka.failed = lambda: bool(refused) and refused.pop()
    kafka.exception = RuntimeError("broker away")
    StageRunner(StageConfig("refused", TOPIC, max_backoff_s=0.001), FrameResult, echo, kafka, kafka, stop, HealthState()).run()
    assert sizes == [3, 3] and kafka.committed == 3 and _dead_letters(kafka) == []
