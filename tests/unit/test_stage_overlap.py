"""Overlapped batches (the classifier's): the next batch's handler runs while this one is produced and committed,
without giving up order or at-least-once. A scripted consumer and producer stand in for Kafka, so each claim is
checked step by step; tests/integration/test_stage_runner.py runs the same loop against the real broker."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from kafka import TopicPartition

from classpulse_common.health import HealthState
from classpulse_common.lifecycle import StopSignal
from classpulse_common.schemas import Frame, FrameResult
from classpulse_common.stage import DependencyUnavailable, Emit, StageConfig, StageRunner

pytestmark = pytest.mark.unit

TOPIC, OUTPUT = "classpulse.faces", "classpulse.predictions"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


@dataclass
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


def _records(tp: TopicPartition, offsets: range) -> list[_Record]:
    return [
        _Record(tp.topic, tp.partition, offset, b"class", Frame(
            class_id="class", source_id=f"src{tp.partition}", frame_id=f"{tp.partition}:{offset}", sequence=offset,
            captured_at_ms=1_000 + offset, published_at_ms=2_000, width=4, height=4, jpeg=b"\xff\xd8fake",
        ).encode())
        for offset in offsets
    ]


class _ScriptedConsumer:
    """Hands out the scripted polls in order, then sets the stop signal; records commits and seeks."""

    def __init__(self, polls: list[dict], stop: StopSignal) -> None:
        self.polls, self.stop = list(polls), stop
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: dict[TopicPartition, int] = {}
        self.poll_timeouts: list[int] = []

    def poll(self, timeout_ms: int) -> dict:
        self.poll_timeouts.append(timeout_ms)
        if self.polls:
            return self.polls.pop(0)
        self.stop.set()
        return {}

    def commit(self, offsets) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def assignment(self) -> set:
        return {P0, P1}

    def highwater(self, tp):
        return None

    def close(self, autocommit: bool) -> None:
        assert autocommit is False


class _Sent:
    def failed(self) -> bool:
        return False


class _RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[str] = []  # frame ids, in the order produced
        self.first_batch_sent = threading.Event()

    def send(self, topic: str, key: bytes, value: bytes) -> _Sent:
        self.sent.append(FrameResult.decode(value).frame_id)
        return _Sent()

    def flush(self, timeout: float) -> None:
        if self.sent:
            self.first_batch_sent.set()

    def close(self, timeout: float) -> None:
        pass


class _Handler:
    """Emits one result per frame. From its second call on it waits (bounded) for the first batch's output to be
    flushed: it can only see that if it runs while the runner produces, i.e. if the batches overlap."""

    def __init__(self, producer: _RecordingProducer, fail_call: int = 0) -> None:
        self.producer, self.fail_call = producer, fail_call
        self.calls = 0
        self.saw_first_batch_flushed_while_running: list[bool] = []
        self.threads: set[str] = set()

    def __call__(self, deliveries):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.calls == 2:
            self.saw_first_batch_flushed_while_running.append(self.producer.first_batch_sent.wait(timeout=5))
        if self.calls == self.fail_call:
            raise DependencyUnavailable("model_server", "down for the test")
        return [
            Emit(OUTPUT, FrameResult(**d.message.identity(), completed_at_ms=3_000, boxes=[])) for d in deliveries
        ]


def _run(polls: list[dict], overlap: bool, fail_call: int = 0):
    stop = StopSignal()
    consumer, producer = _ScriptedConsumer(polls, stop), _RecordingProducer()
    handler = _Handler(producer, fail_call)
    config = StageConfig("overlap-test", TOPIC, overlap_batches=overlap, max_backoff_s=0.01)
    StageRunner(config, Frame, handler, consumer, producer, stop, HealthState()).run()
    return consumer, producer, handler


POLLS = [{P0: _records(P0, range(0, 3))}, {P0: _records(P0, range(3, 5)), P1: _records(P1, range(0, 2))},
         {P1: _records(P1, range(2, 4))}]


def test_overlapped_batches_run_the_next_handler_while_the_last_is_produced():
    consumer, producer, handler = _run(POLLS, overlap=True)
    assert handler.saw_first_batch_flushed_while_running == [True]
    assert handler.threads == {"overlap-test-handler_0"}
    # Output in input order; each commit names exactly the finished batch's next offsets, in order, all batches.
    assert producer.sent == ["0:0", "0:1", "0:2", "0:3", "0:4", "1:0", "1:1", "1:2", "1:3"]
    assert consumer.commits == [{P0: 3}, {P0: 5, P1: 2}, {P1: 4}]
    # While a batch was under way the runner did not wait for input (poll 0), only when idle.
    assert consumer.poll_timeouts[:4] == [200, 0, 0, 0]


def test_without_overlap_the_handler_runs_inline_and_commits_each_batch_before_the_next_poll():
    consumer, producer, handler = _run(POLLS, overlap=False)
    assert handler.saw_first_batch_flushed_while_running == [True]  # batch 1 was done before batch 2 started
    assert handler.threads == {threading.current_thread().name}
    assert consumer.commits == [{P0: 3}, {P0: 5, P1: 2}, {P1: 4}]
    assert set(consumer.poll_timeouts) == {200}


def test_a_failed_batch_rewinds_it_and_the_batch_polled_after_it():
    # The second handler call fails while the third batch is already polled (and its handler queued): nothing past
    # the first batch may be committed, and both batches' partitions go back to their first uncommitted offsets.
    consumer, producer, handler = _run(POLLS, overlap=True, fail_call=2)
    assert consumer.commits == [{P0: 3}]
    assert consumer.seeks == {P0: 3, P1: 0}
    assert producer.sent == ["0:0", "0:1", "0:2"]


def test_stopping_finishes_the_batch_under_way():
    stop_after_one = [{P0: _records(P0, range(0, 3))}]
    consumer, producer, _ = _run(stop_after_one, overlap=True)
    assert consumer.commits == [{P0: 3}]
    assert producer.sent == ["0:0", "0:1", "0:2"]
