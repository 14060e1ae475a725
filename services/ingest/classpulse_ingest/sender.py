"""Moving frames from the bounded buffer to Kafka without ever blocking capture or growing memory.

kafka-python's producer keeps every record it accepts in memory until the broker acknowledges it or the delivery
timeout expires, with no bound of its own. So the sender keeps at most `in_flight_max_bytes` sent but not yet
acknowledged; while that window is full it stops taking frames from the buffer, which then drops its oldest. A send
that cannot even start (no metadata: Kafka unreachable) gives up after the producer's `max_block_ms`.
Memory for frames is thus bounded by the buffer's bytes plus the in-flight window, whatever Kafka does.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import Gauge

from classpulse_core.settings import KafkaSettings
from classpulse_ingest.accounting import DropReason
from classpulse_ingest.buffer import FrameBuffer, OutgoingFrame
from classpulse_stream.kafka import make_producer

log = logging.getLogger(__name__)

FORCED_CLOSE_S = 1.0  # past the drain time: kafka-python's close flushes, then joins its I/O thread, each for up to
# this (milliseconds once forced: the thread fails the frames in flight and ends)

IN_FLIGHT_BYTES = Gauge("classpulse_ingest_in_flight_bytes", "Bytes of frames sent to Kafka and not yet acknowledged")


def make_frame_producer(kafka: KafkaSettings, client_id: str, block_ms: int, delivery_timeout_ms: int) -> KafkaProducer:
    """The pipeline's producer, bounded in time: no call blocks longer than `block_ms`, no frame waits for an
    acknowledgement longer than `delivery_timeout_ms`.

    Not idempotent: kafka-python's idempotent producer stops expiring batches while it has no producer id, and
    after a broker stall it may wait for one indefinitely, holding every frame. A frame sent twice by a retry is
    harmless: frames are identified by (source, sequence) and the aggregator counts each one once.
    """
    return make_producer(
        kafka,
        client_id,
        enable_idempotence=False,
        max_block_ms=block_ms,
        delivery_timeout_ms=delivery_timeout_ms,
        request_timeout_ms=min(15_000, delivery_timeout_ms // 2),
    )


class KafkaSender:
    def __init__(self, producer: KafkaProducer, topic: str, buffer: FrameBuffer, in_flight_max_bytes: int) -> None:
        self.producer = producer
        self.topic = topic
        self.buffer = buffer
        self.in_flight_max_bytes = in_flight_max_bytes
        self._in_flight_bytes = 0
        self._window = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-sender", daemon=True)
        self._last_warned = 0.0
        self._unwarned = 0

    def start(self) -> KafkaSender:
        self._thread.start()
        return self

    @property
    def in_flight_bytes(self) -> int:
        with self._window:
            return self._in_flight_bytes

    def _run(self) -> None:
        while not self._stopping.is_set():
            frame = self.buffer.get(timeout_s=0.2)
            if frame is None:
                continue
            if not frame.tally.may_send():
                frame.tally.dropped(DropReason.LEASE_LOST, frame.frame_id)
                continue
            if self._wait_for_window(frame.size):
                self._send(frame)
            else:
                frame.tally.dropped(DropReason.SHUTDOWN, frame.frame_id)

    def _wait_for_window(self, size: int) -> bool:
        """Wait until `size` more bytes fit in flight (an empty window always takes one frame); False if stopping."""
        with self._window:
            while self._in_flight_bytes and self._in_flight_bytes + size > self.in_flight_max_bytes:
                if self._stopping.is_set():
                    return False
                self._window.wait(0.2)
            self._in_flight_bytes += size
            IN_FLIGHT_BYTES.set(self._in_flight_bytes)
            return True

    def _send(self, frame: OutgoingFrame) -> None:
        try:
            future = self.producer.send(self.topic, key=frame.key, value=frame.value)
        except KafkaTimeoutError as exc:
            self._settle(frame, DropReason.KAFKA_UNAVAILABLE)
            self._warn("kafka unavailable: frame dropped", frame, exc)
            return
        except KafkaError as exc:
            self._settle(frame, DropReason.DELIVERY_FAILED)
            self._warn("frame refused by the producer", frame, exc)
            return
        future.add_callback(lambda _metadata: self._settle(frame, None))
        future.add_errback(lambda exc: self._delivery_failed(frame, exc))

    def _delivery_failed(self, frame: OutgoingFrame, exc: Exception) -> None:
        self._settle(frame, DropReason.DELIVERY_FAILED)
        self._warn("frame not acknowledged by kafka", frame, exc)

    def _warn(self, message: str, frame: OutgoingFrame, exc: Exception) -> None:
        """At most one warning every 10 s: during an outage every frame fails, and the counters have the numbers."""
        now = time.monotonic()
        if now - self._last_warned < 10.0:
            self._unwarned += 1
            return
        log.warning(message, extra={"frame_id": frame.frame_id, "error": repr(exc), "similar_since_last_warning": self._unwarned})
        self._last_warned, self._unwarned = now, 0

    def _settle(self, frame: OutgoingFrame, dropped: DropReason | None) -> None:
        with self._window:
            self._in_flight_bytes -= frame.size
            IN_FLIGHT_BYTES.set(self._in_flight_bytes)
            self._window.notify_all()
        if dropped is None:
            frame.tally.published(frame.frame_id)
        elif self._stopping.is_set():
            # Once the drain time ran out a frame fails because this process stops (a forced close fails every one
            # in flight): the replica that continues its recording takes it again.
            frame.tally.dropped(DropReason.SHUTDOWN, frame.frame_id)
        else:
            frame.tally.dropped(dropped, frame.frame_id)

    def close(self, drain_timeout_s: float) -> None:
        """Send what is waiting for up to `drain_timeout_s`, then stop, at most FORCED_CLOSE_S later whatever Kafka
        does; frames not acknowledged by then are dropped (counted)."""
        if self._stopping.is_set():
            return
        deadline = time.monotonic() + drain_timeout_s
        while self.buffer.depth[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stopping.set()
        # Not waited for past the deadline: a frame the thread still holds then (a send blocked on metadata for up to
        # max_block_ms) is counted when that send gives up, or fails on the closed producer.
        self._thread.join(timeout=_left(deadline))
        for frame in self.buffer.drain():
            frame.tally.dropped(DropReason.SHUTDOWN, frame.frame_id)
        try:
            self.producer.close(timeout=_left(deadline))
        except KafkaTimeoutError:
            # kafka-python's close() first flushes, and raises when that times out, before it reaches its own forced
            # close. Force it: the unacknowledged frames' futures fail (their errbacks count them), the I/O thread ends.
            log.warning("kafka did not acknowledge every frame before shutdown", extra={"in_flight_bytes": self.in_flight_bytes})
            self.producer._sender.force_close()
            self.producer.close(timeout=FORCED_CLOSE_S)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
