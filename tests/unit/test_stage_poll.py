"""A stage outlives Kafka going away mid-poll: kafka-python's poll can raise a connection error then (the
broker-restart drill once lost the aggregator to it). Nothing was consumed, so the stage waits and polls again."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConnectionError

from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import FrameResult
from classpulse_stream import metrics
from classpulse_stream.health import HealthState
from classpulse_stream.stage import StageConfig, StageRunner

pytestmark = pytest.mark.unit


class _BrokerAwayThenStop:
    """A consumer whose first two polls fail as kafka-python's do while the broker restarts; the third stops the
    stage (it is the only way out of run())."""

    def __init__(self, stop: StopSignal) -> None:
        self.stop = stop
        self.polls = 0
        self.closed = False

    def poll(self, timeout_ms: int) -> dict:
        self.polls += 1
        if self.polls <= 2:
            raise KafkaConnectionError("111 ECONNREFUSED")
        self.stop.set()
        return {}

    def assignment(self) -> set:
        return set()

    def close(self, autocommit: bool) -> None:
        self.closed = True


class _Producer:
    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def test_a_connection_error_in_poll_is_waited_out_not_fatal():
    stop = StopSignal()
    consumer = _BrokerAwayThenStop(stop)
    health = HealthState()
    retries = metrics.DEPENDENCY_RETRIES.labels("poll-test", "kafka")
    before = retries._value.get()
    runner = StageRunner(
        StageConfig("poll-test", "classpulse.predictions", max_backoff_s=0.01), FrameResult, lambda batch: [],
        consumer, _Producer(), stop, health,
    )
    runner.run()  # returns once stopped: the two failed polls did not end it
    assert consumer.polls == 3 and consumer.closed
    assert retries._value.get() - before == 2
    assert health.ready()[0] is True  # ready again once a poll succeeded
