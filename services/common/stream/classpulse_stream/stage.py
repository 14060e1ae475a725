"""The consume-process-produce loop every pipeline stage runs, and its error policy in one place.

Delivery semantics: at least once. A batch's output is produced and flushed (acks=all) before the batch's offsets are
committed, so a crash anywhere re-delivers input whose output may already exist; every message carries its frame id
and the aggregator's writes are idempotent on it, so the effect in Redis is exactly once.

Errors:
- a message that cannot be decoded, or that the stage rejects (`Reject`), goes to `<input topic>.dlq` with the reason
  and its origin; the partition keeps flowing. The original bytes go with it, cut to `dead_letter_max_value_bytes`
  (the reason says so): a letter larger than the broker takes would be refused, and kafka-python's idempotent
  producer treats that refusal as fatal, failing every later send of the process;
- output that Kafka did not acknowledge fails the batch like a dependency outage: nothing is committed past it;
- `DependencyUnavailable` (model server or Redis down, Kafka unreachable): the batch is rewound and retried with capped
  exponential backoff, forever, without committing; lag grows and shows in metrics; nothing is lost or dead-lettered;
  the stage reports not ready (with the reason) until a batch succeeds;
- `ContractBroken` (the model server serves another model or signature than the stage's contract, a setting is
  wrong): handled like a dependency outage, since every message would fail alike and dead-lettering them would drain
  the topic; the stage also reports not ready and `classpulse_stage_stalled` 1 (an alert) until it processes again;
- any other exception (a bug, or a poison message the decoder let through): the batch is retried one message at a time;
  when one fails, what was decided before it is produced and committed (a dead letter decided is final) and the batch
  is retried from it on, up to `max_message_failures` times, then it goes to the dead-letter topic alone with the
  reason: a transient fault gets its retries, a poison message does not stall its partition.
  Attempts are counted in an `AttemptLedger` before they are made, so a message that kills the process (out of
  memory, a crash in native code) counts as failed too; with a ledger kept outside the process
  (`classpulse_store.attempts.RedisAttempts`) the count survives restarts and rebalances, and a crash loop ends
  with the message dead-lettered after `max_message_failures` attempts;
- a commit that fails (the group is rebalancing, this member was fenced, the coordinator is away) is logged and
  counted, not fatal: the batch's output is already durable, and whoever owns the partition next starts from the last
  committed offset, so the redelivered messages are absorbed by the idempotent sink.

Metrics count messages, not attempts: a message is counted in, with its outputs or its dead letter, once its output
is acknowledged and its offset committed; every message delivered again after a rewind counts in
`classpulse_messages_redelivered_total`. A stage that retries without end so shows no progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from classpulse_core.backoff import Backoff, Retries
from classpulse_core.dependencies import DependencyUnavailable
from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import DeadLetter, Message, SchemaError
from classpulse_stream import metrics
from classpulse_stream.health import HealthState

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
LAG_POSITION_TIMEOUT_MS = 2_000


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """A consumed record and the message decoded from it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    message: M


@dataclass(frozen=True)
class Emit:
    """A message for the runner to produce."""

    topic: str
    message: Message


@dataclass(frozen=True)
class Reject:
    """A delivery the stage refuses, for the dead-letter topic."""

    delivery: Delivery[Any]  # of the stage's schema; its message is None when it could not be decoded
    reason: str


class ContractBroken(DependencyUnavailable):
    """The stage's configuration, or what a dependency serves, breaks the stage's contract (a model or signature
    that is not there, an output of another shape): no message can succeed until an operator fixes it, so the stage
    stalls (lag grows, readiness fails, an alert fires) rather than dead-letter all its traffic."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(dependency, detail, "breaks the contract")


class AttemptLedger(Protocol):
    """Attempts at processing each message, by counter name (see `StageRunner._counters`)."""

    def add(self, counters: Sequence[str], by: int) -> list[int]:
        """Add `by` to each counter; returns their new values. Raises DependencyUnavailable if the ledger is away."""

    def forget(self, counters: Sequence[str]) -> None:
        """Drop the counters (their messages are committed)."""


class MemoryAttempts:
    """A ledger in the process: counts survive a failed batch, not a restart of the process."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, counters: Sequence[str], by: int) -> list[int]:
        for counter in counters:
            self._counts[counter] = self._counts.get(counter, 0) + by
        return [self._counts[counter] for counter in counters]

    def forget(self, counters: Sequence[str]) -> None:
        for counter in counters:
            self._counts.pop(counter, None)


BATCH, ALONE = "batch", "alone"
"""Counter kinds: attempts of a message as part of a batch, and alone (after its batch failed or never finished)."""

PROCESSING, CONTRACT_CHECK = "processing", "contract check"
"""The runner's two works a dependency outage can fail (see StageRunner._outages)."""


class _MessageFailed(Exception):
    """A message failed, not yet `max_message_failures` times: the batch is retried from it on. `decided`: the
    outcomes of the batch's messages before it."""

    def __init__(self, delivery: Delivery[Any], detail: str) -> None:
        super().__init__(detail)
        self.delivery = delivery
        self.decided: list[Outcome] = []


Outcome = Emit | Reject
BatchHandler = Callable[[list[Delivery[M]]], Sequence[Outcome]]
ContractCheck = Callable[[], None]
"""Raises ContractBroken while what the stage depends on breaks its contract (DependencyUnavailable if unreachable)."""


@dataclass(frozen=True)
class StageConfig:
    name: str
    input_topic: str
    dead_letter_suffix: str = ".dlq"
    poll_timeout_ms: int = 200
    max_backoff_s: float = 30.0
    lag_refresh_s: float = 5.0
    dead_letter_max_value_bytes: int = 512 * 1024
    """Half the broker's default message.max.bytes (1 MiB): room for the letter's own fields, whatever the input."""
    max_message_failures: int = 3
    contract_check_s: float = 30.0
    """How often the contract is checked while it holds; while it is broken, before every retry."""


class StageRunner(Generic[M]):
    def __init__(
        self,
        config: StageConfig,
        schema: type[M],
        handle_batch: BatchHandler[M],
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        stop: StopSignal,
        health: HealthState,
        check_contract: ContractCheck | None = None,
        attempts: AttemptLedger | None = None,
    ) -> None:
        self.config = config
        self.schema = schema
        self.handle_batch = handle_batch
        self.consumer = consumer
        self.producer = producer
        self.stop = stop
        self.health = health
        self.check_contract = check_contract
        self._contract_checked_at = -float("inf")
        self._dead_letter_topic = config.input_topic + config.dead_letter_suffix
        self._retries = Retries(Backoff(initial_s=0.5, max_s=config.max_backoff_s))
        self._lag_refreshed_at = 0.0
        self._lag_partitions: set[TopicPartition] = set()
        self.attempts = attempts or MemoryAttempts()
        """Attempts so far of each message not committed yet; counted before each attempt, forgotten at commit."""
        self._stalled: str | None = None
        self._outages: dict[str, str] = {}
        """The dependency outage each of the runner's works (PROCESSING, CONTRACT_CHECK) last failed on, until that
        work succeeds again: the stage is not ready meanwhile."""
        self._retrying: set[TopicPartition] = set()
        """The partitions of the batch that last failed on an outage, retried until it succeeds."""
        # Every series of the stage exported from 0 before its first batch: Prometheus's rate() starts at a series'
        # first sample, so a series that first appears holding a whole batch (a service just started or restarted)
        # would show no traffic and its histograms' quantiles NaN.
        for counter in (metrics.MESSAGES_IN, metrics.MESSAGES_REDELIVERED):
            counter.labels(config.name, config.input_topic)
        for histogram in (metrics.BATCH_SIZE, metrics.BATCH_SECONDS, metrics.LATENCY_SECONDS):
            histogram.labels(config.name)

    def run(self) -> None:
        """Process batches until stopped; then commit what is done, flush, and close the clients."""
        log.info("stage started", extra={"stage": self.config.name, "topic": self.config.input_topic})
        try:
            while not self.stop.is_set:
                self.health.beat()
                records = self._poll()
                if records is None:
                    continue
                self._drop_outage_given_away()
                try:
                    self._check_contract()
                except DependencyUnavailable as exc:
                    self._rewind(records, exc, CONTRACT_CHECK)
                    self._refresh_lag()
                    continue
                self._report_readiness()
                if records:
                    self._process(records)
                self._refresh_lag()
        finally:
            log.info("stage stopping", extra={"stage": self.config.name})
            self.producer.flush(timeout=10)
            self.producer.close(timeout=10)
            self.consumer.close(autocommit=False)

    def _poll(self) -> list[Any] | None:
        """The next records, partition by partition, or None while Kafka is away. kafka-python's poll can raise a
        connection error when the broker goes away mid-call (seen in the broker-restart drill: the aggregator died of
        it); nothing was consumed then, so waiting and polling again loses nothing."""
        try:
            records: dict[TopicPartition, list[Any]] = self.consumer.poll(timeout_ms=self.config.poll_timeout_ms)
            return [record for batch in records.values() for record in batch]
        except KafkaError as exc:
            retry_in_s = self._retries.failed()
            metrics.DEPENDENCY_RETRIES.labels(self.config.name, "kafka").inc()
            log.warning(
                "Kafka unavailable; polling again",
                extra={"stage": self.config.name, "error": repr(exc), "retry_in_s": retry_in_s},
            )
            self.stop.wait(retry_in_s)
            return None

    def _process(self, records: list[Any]) -> None:
        started = time.perf_counter()
        metrics.BATCH_SIZE.labels(self.config.name).observe(len(records))
        deliveries, undecodable = self._decode(records)
        try:
            outcomes = [*undecodable, *self._handle(deliveries)]
            self._produce(outcomes)
        except DependencyUnavailable as exc:
            self._uncount_batch_attempt(deliveries)
            self._rewind(records, exc)
            return
        except _MessageFailed as exc:
            self._rewind(self._keep_decided(records, deliveries, undecodable, exc), exc)
            return
        self._complete(records, deliveries, outcomes)
        self._retries.reset()
        self._resume(PROCESSING)
        metrics.BATCH_SECONDS.labels(self.config.name).observe(time.perf_counter() - started)

    def _check_contract(self) -> None:
        """Run the stage's contract check when due: at start, every `contract_check_s`, and while stalled."""
        now = time.monotonic()
        if self.check_contract is None or (self._stalled is None and now - self._contract_checked_at < self.config.contract_check_s):
            return
        self.check_contract()
        self._contract_checked_at = now
        self._resume(CONTRACT_CHECK)

    def _resume(self, succeeded: str) -> None:
        """`succeeded`: the work (PROCESSING, CONTRACT_CHECK) that did; an outage it failed on before is over."""
        self._outages.pop(succeeded, None)
        if self._stalled is not None:
            log.info("stage processing again", extra={"stage": self.config.name, "stalled_by": self._stalled})
            self._stalled = None
            metrics.STAGE_STALLED.labels(self.config.name).set(0)
        self._report_readiness()

    def _drop_outage_given_away(self) -> None:
        """A batch that failed on an outage is retried until it succeeds, which ends the outage; unless a rebalance
        gave its partitions to another member: nothing here waits on it then, and new ones may stay idle for hours."""
        if PROCESSING in self._outages and not self._retrying & self.consumer.assignment():
            del self._outages[PROCESSING]

    def _report_readiness(self) -> None:
        """Ready unless stalled by a broken contract or waiting on a dependency: either way it processes nothing."""
        unready_by = self._stalled or next(iter(self._outages.values()), None)
        self.health.set_ready(unready_by is None, unready_by or "")

    def _complete(self, records: Sequence[Any], deliveries: Sequence[Delivery[M]], outcomes: Sequence[Outcome]) -> None:
        """Commit `records`, whose `outcomes` Kafka acknowledged, and count them: once a message, however many
        times it was attempted (redeliveries are classpulse_messages_redelivered_total's)."""
        offsets = _next_offsets(records)
        committed = self._commit(offsets)
        self._forget_attempts(deliveries)  # either way: they succeeded, a redelivery after a failed commit is no retry
        if not committed and not offsets.keys() <= self.consumer.assignment():
            return  # redelivered to whoever owns the partitions now, and counted when that one commits them
        # Committed, or not but still this member's partitions (the coordinator away a moment): its position is past
        # them, nothing delivers them again, here they count.
        metrics.MESSAGES_IN.labels(self.config.name, self.config.input_topic).inc(len(records))
        for outcome in outcomes:
            if isinstance(outcome, Emit):
                metrics.MESSAGES_OUT.labels(self.config.name, outcome.topic).inc()
            else:
                self._count_dead_letter(outcome)

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Whether Kafka took the commit."""
        try:
            self.consumer.commit(offsets)
        except KafkaError as exc:
            # Raising would end the process over a progress marker: the output is flushed already, and the next
            # owner of these partitions (this member after the rebalance, or another) re-reads from the last commit.
            metrics.ERRORS.labels(self.config.name, "commit_failed").inc()
            log.warning(
                "offsets not committed; the batch may be redelivered",
                extra={"stage": self.config.name, "error": repr(exc)},
            )
            return False
        return True

    def _decode(self, records: list[Any]) -> tuple[list[Delivery[M]], list[Reject]]:
        deliveries: list[Delivery[M]] = []
        rejects: list[Reject] = []
        for record in records:
            try:
                message = self.schema.decode(record.value)
            except SchemaError as exc:
                undecoded = Delivery[Any](record.topic, record.partition, record.offset, record.key, record.value, None)
                rejects.append(Reject(undecoded, str(exc)))
                continue
            deliveries.append(Delivery(record.topic, record.partition, record.offset, record.key, record.value, message))
        return deliveries, rejects

    @staticmethod
    def _counters(deliveries: Sequence[Delivery[M]], kind: str) -> list[str]:
        return [f"{d.topic}:{d.partition}:{d.offset}:{kind}" for d in deliveries]

    def _handle(self, deliveries: list[Delivery[M]]) -> list[Outcome]:
        """The batch's outcomes. Tried as one batch only if none of its messages was attempted before: a batch
        that failed, or never finished (the process died in it), is retried one message at a time."""
        if not deliveries:
            return []
        if max(self.attempts.add(self._counters(deliveries, BATCH), 1)) == 1:
            try:
                return list(self.handle_batch(deliveries))
            except DependencyUnavailable:
                raise
            except Exception:
                log.exception("batch failed; retrying its messages one by one", extra={"stage": self.config.name})
                metrics.ERRORS.labels(self.config.name, "batch_failed").inc()
        outcomes: list[Outcome] = []
        for delivery in deliveries:
            try:
                outcomes += self._handle_alone(delivery)
            except _MessageFailed as failed:
                failed.decided = outcomes
                raise
        return outcomes

    def _handle_alone(self, delivery: Delivery[M]) -> list[Outcome]:
        """One message's outcomes; its dead letter once it failed `max_message_failures` times, _MessageFailed
        before that. An attempt that never finished (the process died in it) counts as a failure."""
        counter = self._counters([delivery], ALONE)
        [attempt] = self.attempts.add(counter, 1)
        limit = self.config.max_message_failures
        if attempt > limit:
            return [Reject(delivery, f"processing failed {attempt - 1} times: the stage stopped while processing it")]
        try:
            outcomes = list(self.handle_batch([delivery]))
        except DependencyUnavailable:
            self.attempts.add(counter, -1)
            raise
        except Exception as exc:
            at = (delivery.topic, delivery.partition, delivery.offset)
            if attempt >= limit:
                return [Reject(delivery, f"processing failed {attempt} times: {exc!r}")]
            metrics.ERRORS.labels(self.config.name, "message_failed").inc()
            raise _MessageFailed(delivery, f"message at {at} failed ({attempt} of {limit}): {exc!r}") from exc
        self.attempts.forget(counter)  # it succeeds alone: not the message its batch failed on
        return outcomes

    def _keep_decided(
        self, records: list[Any], deliveries: list[Delivery[M]], undecodable: list[Reject], failed: _MessageFailed
    ) -> list[Any]:
        """Produce and commit what was decided before the failed message; returns the records to retry. Retried
        with the rest, a message dead-lettered there would be attempted again past its limit, and its dead letter
        would give a crash as the reason instead of its own failure."""
        at = _position(failed.delivery)
        cut = next(index for index, record in enumerate(records) if _position(record) == at)
        if cut == 0:
            return records
        decided = {_position(record) for record in records[:cut]}
        outcomes = [*(reject for reject in undecodable if _position(reject.delivery) in decided), *failed.decided]
        try:
            self._produce(outcomes)
        except DependencyUnavailable as exc:
            log.warning(
                "decided outcomes not produced; the whole batch is retried",
                extra={"stage": self.config.name, "error": str(exc)},
            )
            return records
        self._complete(records[:cut], [delivery for delivery in deliveries if _position(delivery) in decided], outcomes)
        return records[cut:]

    def _uncount_batch_attempt(self, deliveries: list[Delivery[M]]) -> None:
        """A dependency failed the batch, not its messages: the attempt does not count (else the retry after an
        outage would go one message at a time). With the ledger itself away, it stays counted: one slower retry."""
        try:
            self.attempts.add(self._counters(deliveries, BATCH), -1)
        except DependencyUnavailable as exc:
            log.warning("batch attempt not uncounted", extra={"stage": self.config.name, "error": str(exc)})

    def _forget_attempts(self, deliveries: Sequence[Delivery[M]]) -> None:
        """Drop the committed messages' counters; a ledger that is away keeps them (they expire there)."""
        try:
            self.attempts.forget(self._counters(deliveries, BATCH) + self._counters(deliveries, ALONE))
        except DependencyUnavailable as exc:
            log.warning("attempt counters not dropped", extra={"stage": self.config.name, "error": str(exc)})

    def _produce(self, outcomes: list[Outcome]) -> None:
        """Send every outcome and wait until Kafka acknowledged all of them; any that failed fails the batch."""
        try:
            sends = []
            for outcome in outcomes:
                if isinstance(outcome, Emit):
                    sends.append(self.producer.send(outcome.topic, key=outcome.message.key, value=outcome.message.encode()))
                else:
                    sends.append(self._dead_letter(outcome))
            self.producer.flush(timeout=30)
        except KafkaError as exc:
            raise DependencyUnavailable("kafka", repr(exc)) from exc
        # flush() returns once every send is done, failed ones included: committing then would lose their output.
        failures = [send.exception for send in sends if send.failed()]
        if failures:
            raise DependencyUnavailable("kafka", f"{len(failures)} of {len(sends)} sends failed, first: {failures[0]!r}")

    def _dead_letter(self, reject: Reject) -> FutureRecordMetadata:
        delivery = reject.delivery
        reason, value = reject.reason[:2000], delivery.value
        limit = self.config.dead_letter_max_value_bytes
        if value is not None and len(value) > limit:
            reason += f" (original value of {len(value)} bytes truncated to its first {limit})"
            value = value[:limit]
        letter = DeadLetter(
            stage=self.config.name,
            reason=reason,
            origin_topic=delivery.topic,
            origin_partition=delivery.partition,
            origin_offset=delivery.offset,
            failed_at_ms=int(time.time() * 1000),
            key=delivery.key,
            value=value,
        )
        return self.producer.send(self._dead_letter_topic, key=delivery.key, value=letter.encode())

    def _count_dead_letter(self, reject: Reject) -> None:
        delivery = reject.delivery
        metrics.DEAD_LETTERS.labels(self.config.name, reason_label(reject.reason)).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "stage": self.config.name,
                "reason": reject.reason[:300],
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
            },
        )

    def _rewind(
        self, records: list[Any], exc: DependencyUnavailable | _MessageFailed, failed: str = PROCESSING
    ) -> None:
        """Seek back to `records` (each partition's records not done, in order) so the next poll delivers them
        again; back off meanwhile. `failed`: the work that did (PROCESSING, CONTRACT_CHECK).

        A partition taken away by a rebalance meanwhile is left alone: its new owner starts from the last commit,
        which is before these records."""
        assigned = self.consumer.assignment()
        for tp, offset in _first_offsets(records).items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        redelivered = sum(TopicPartition(record.topic, record.partition) in assigned for record in records)
        metrics.MESSAGES_REDELIVERED.labels(self.config.name, self.config.input_topic).inc(redelivered)
        retry_in_s = self._retries.failed()
        if isinstance(exc, ContractBroken):
            self._stalled = str(exc)[:500]
            self._report_readiness()
            metrics.STAGE_STALLED.labels(self.config.name).set(1)
            log.error(
                "stage stalled by a contract or configuration error; fix it and the stage resumes",
                extra={"stage": self.config.name, "error": str(exc), "retry_in_s": retry_in_s},
            )
        elif isinstance(exc, DependencyUnavailable):
            self._outages[failed] = str(exc)[:500]
            if failed == PROCESSING:
                self._retrying = set(_first_offsets(records))
            self._report_readiness()
            metrics.DEPENDENCY_RETRIES.labels(self.config.name, exc.dependency).inc()
            log.warning(
                "dependency unavailable; batch will be retried",
                extra={"stage": self.config.name, "error": str(exc), "retry_in_s": retry_in_s},
            )
        else:
            log.warning("message failed; the batch is retried from it on", extra={"stage": self.config.name, "error": str(exc)})
        self.stop.wait(retry_in_s)

    def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_refreshed_at < self.config.lag_refresh_s:
            return
        self._lag_refreshed_at = now
        assigned = self.consumer.assignment()
        # A partition revoked by a rebalance is another member's now: a gauge left behind would report its last lag
        # from two members, or forever if it moved for good.
        for tp in self._lag_partitions - assigned:
            metrics.CONSUMER_LAG.remove(self.config.name, tp.topic, str(tp.partition))
        self._lag_partitions &= assigned
        for tp in assigned:
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                # Bounded: with Kafka away, position() would otherwise wait for the coordinator indefinitely.
                position = self.consumer.position(tp, timeout_ms=LAG_POSITION_TIMEOUT_MS)
            except KafkaError:
                continue
            if position is not None:
                metrics.CONSUMER_LAG.labels(self.config.name, tp.topic, str(tp.partition)).set(max(0, highwater - position))
                self._lag_partitions.add(tp)


def _position(record: Any) -> tuple[str, int, int]:
    """Where a consumed record, or the delivery made of it, is: (topic, partition, offset)."""
    return record.topic, record.partition, record.offset


def _first_offsets(records: Sequence[Any]) -> dict[TopicPartition, int]:
    """Each partition's first offset among `records` (consumed records, in the order of each partition)."""
    return {TopicPartition(record.topic, record.partition): record.offset for record in reversed(records)}


def _next_offsets(records: Sequence[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The commit of `records`: each partition's offset after its last one among them."""
    return {
        TopicPartition(record.topic, record.partition): OffsetAndMetadata(record.offset + 1, "", -1) for record in records
    }


DEAD_LETTER_REASONS = (
    ("not a msgpack message", "not msgpack"),
    ("expected a map", "not a map"),
    ("expected ", "unknown schema"),
    ("invalid ", "invalid fields"),
    ("unknown class", "unknown class"),
    ("undecodable frame", "undecodable frame"),
    ("wrong size", "wrong size"),
    ("processing failed", "processing failed"),
    ("capture_time_future", "capture_time_future"),
    ("capture_time_too_old", "capture_time_too_old"),
    ("older than retention", "older than retention"),
)
"""(how a reason starts, its label value): the reason itself may carry what a sender chose (a schema name), and
every distinct label value is a time series kept forever."""


def reason_label(reason: str) -> str:
    """The bounded `reason` label of classpulse_dead_letters_total for a dead letter's reason."""
    return next((label for prefix, label in DEAD_LETTER_REASONS if reason.startswith(prefix)), "other")
