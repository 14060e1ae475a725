"""The sources of the deployment as one ingest replica takes part in running them.

Sources live in Redis (source_store.py); a replica runs the ones it holds a lease on. One loop per replica, every
`CLASSPULSE_SOURCE_CLAIM_INTERVAL_S` (jittered, so that replicas do not all ask at once), renews this replica's
leases with each source's progress, writes the final state of the sources that finished here once Kafka answered for
their frames, and claims sources no replica holds (up to `CLASSPULSE_MAX_SOURCES` here): a new one, one whose replica
let it go at shutdown, or one whose replica stopped renewing (killed), `CLASSPULSE_SOURCE_LEASE_TTL_S` after its last
renewal. A webcam (a camera index) is claimed only by the replicas of the machine it was started on
(`CLASSPULSE_CAMERA_HOST`); with none there it is `stalled`. A source continues where its progress says
(runner.Continuation): a recording from its oldest frame Kafka did not acknowledge unless dropped for good
(accounting.TAKEN_AGAIN), a live source with frame numbers after any its last replica may have used.

A graceful shutdown hands sources over within its budget (`CLASSPULSE_SHUTDOWN_BUDGET_S`), whatever Kafka and Redis
do: they stop here, what waits for Kafka is sent while the budget allows, their progress is written and their leases
deleted, and another replica takes them at its next claim (a recording's frames Kafka did not acknowledge are read
again there). A source whose handover Redis has not answered for by the end of the budget is left to lapse: another
replica continues it from its progress last renewed once its lease's TTL has passed.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
from typing import Any

import redis
from prometheus_client import Counter, Gauge

from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.publisher import RUN_SEQUENCE_BLOCK, new_source_id, now_ms, reserve_sequences
from classpulse_ingest.runner import FINAL_STATES, SETTLE_WAIT_S, Continuation, SourceRunner, SourceState, SourceStatus
from classpulse_ingest.sender import FORCED_CLOSE_S
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.source_store import Lease, SourceStore, StoredSource, progress_fields
from classpulse_ingest.video import SourceKind, SourceSpec
from classpulse_store.replication import ReplicasBehind

log = logging.getLogger(__name__)

FINISHED_KEPT = 100  # ended, stopped and failed sources stay listed (with their reason) until this many pile up
CLAIMS_PER_TICK = 8  # when a replica dies, its sources spread over the others rather than all going to the first
# Of a shutdown's budget, what the last steps keep whatever Kafka does: forcing the Kafka producer closed (twice
# FORCED_CLOSE_S at most), then writing the sources' progress as their leases are let go, which a Redis that answers
# does in milliseconds; they get what is left of the budget, this at least.
HANDOVER_WRITES_S = 1.0
HANDOVER_RESERVE_S = 2 * FORCED_CLOSE_S + HANDOVER_WRITES_S

SOURCES_OWNED = Gauge("classpulse_ingest_sources_owned", "Sources this ingest replica holds the lease of")
SOURCE_TAKEOVERS = Counter(
    "classpulse_ingest_source_takeovers_total", "Sources taken over from a replica that stopped renewing their lease"
)
SOURCE_LEASE_LOSSES = Counter(
    "classpulse_ingest_source_lease_losses_total", "Sources this replica stopped because another one holds them now"
)
SOURCE_LEASE_ERRORS = Counter(
    "classpulse_ingest_source_lease_errors_total", "Rounds of lease renewals and claims that failed (Redis unreachable...)"
)


class TooManySources(RuntimeError):
    pass


class SourceManager:
    def __init__(self, settings: IngestSettings, pipeline: Pipeline, store: SourceStore) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.store = store
        self.owner = f"{socket.gethostname()}/{os.getpid()}"
        self.ttl_ms = int(settings.source_lease_ttl_s * 1000)
        self._owned: dict[str, SourceRunner] = {}
        self._stopped_on_request: set[str] = set()
        self._lock = threading.Lock()
        self._handing_over = threading.Event()
        self._closed = threading.Event()
        self._loop = threading.Thread(target=self._run_loop, name="source-leases", daemon=True)

    def start(self) -> SourceManager:
        self._loop.start()
        return self

    # --- the API's side ------------------------------------------------------------------------------------------

    def create(self, spec: SourceSpec, class_id: str, fps: float, source_id: str | None, **options: Any) -> SourceStatus:
        """Record a new source and run it here (if another replica claimed it first, it runs there)."""
        if self._running() >= self.settings.max_sources:
            raise TooManySources(f"{self._running()} sources are running, the most this ingest process takes")
        draft = self.pipeline.runner(spec, class_id, fps, source_id or new_source_id(spec.kind.value), **options)
        status = draft.status().model_copy(update={"state": SourceState.WAITING}).model_dump(mode="json")
        token, granted_at = self.store.new_token(self.owner), time.monotonic()
        # A camera index names a device of this machine: another machine's replica would open its own camera instead.
        host = self.settings.camera_host if spec.kind == SourceKind.WEBCAM else ""
        # After every number a run of `publish` or an upload under the same id took: the aggregator would count only
        # one of two frames numbered alike in the same minute (0 for a new id).
        first = reserve_sequences(self.pipeline.redis, class_id, draft.source_id, RUN_SEQUENCE_BLOCK)
        stored = self.store.create(
            draft.source_id, spec.location, draft.realtime, status, token, self.ttl_ms, self.owner, host, first
        )
        if stored is None:
            raise ValueError(f"source id {draft.source_id!r} is already in use")
        self._run_claimed(stored, Lease(token, self.settings.source_lease_ttl_s, granted_at))
        return self.status(draft.source_id) or SourceStatus.model_validate(status)

    def status(self, source_id: str) -> SourceStatus | None:
        with self._lock:
            runner = self._owned.get(source_id)
        if runner is not None:
            return self._owned_status(runner)
        stored = self.store.get(source_id)
        return None if stored is None else stored_status(stored)

    def all(self) -> list[SourceStatus]:
        with self._lock:
            owned = dict(self._owned)
        return [
            self._owned_status(owned[stored.source_id]) if stored.source_id in owned else stored_status(stored)
            for stored in self.store.all()
        ]

    def stop(self, source_id: str, wait_s: float) -> SourceStatus | None:
        """Stop a source wherever it runs: here at once, on another replica at its next renewal; None if unknown."""
        with self._lock:
            runner = self._owned.get(source_id)
            if runner is not None:
                self._stopped_on_request.add(source_id)
        if runner is not None:
            runner.stop()
            runner.wait(wait_s)
            runner.tally.wait_settled(SETTLE_WAIT_S)
            self._settle(runner)
            return self.status(source_id)
        stored = self.store.get(source_id)
        if stored is None:
            return None
        stopped = {**stored.status, "state": SourceState.STOPPED.value, "updated_at_ms": now_ms(), "reason": None}
        if self.store.request_stop(source_id, now_ms(), stopped) == 1:
            deadline = time.monotonic() + wait_s + 2 * self.settings.source_claim_interval_s
            while time.monotonic() < deadline and (stored := self.store.get(source_id)) and not _finished(stored):
                time.sleep(0.2)
        return self.status(source_id)

    # --- shutdown ------------------------------------------------------------------------------------------------

    def shut_down(self, budget_s: float) -> None:
        """A graceful shutdown within `budget_s`, whatever Kafka does: the sources stop here, the frames waiting for
        Kafka are sent until HANDOVER_RESERVE_S before the end, then every source is handed over (its final state or
        progress written, its lease let go) so that another replica continues it at its next claim, or, where Redis
        has not answered by the end, left to lapse."""
        ends_at = time.monotonic() + budget_s
        handover_at = ends_at - HANDOVER_RESERVE_S
        self.stop_running(max(0.0, handover_at - time.monotonic()))
        self.pipeline.close(max(0.0, handover_at - time.monotonic()))
        self.close(max(0.0, ends_at - time.monotonic()))

    def stop_running(self, timeout_s: float) -> None:
        """First step of a graceful shutdown: claim nothing more, stop the sources here (leases still renewed)."""
        with self._lock:
            self._handing_over.set()
            runners = list(self._owned.values())
        for runner in runners:
            runner.stop()
        deadline = time.monotonic() + timeout_s
        for runner in runners:
            runner.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout_s: float | None = None) -> None:
        """Last step, once the Kafka sender has drained: finished sources get their final state, the others are
        handed over with their progress, for up to `timeout_s` (None: however long Redis takes). The sources Redis
        has not answered for by then are left to lapse, and said so."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            self._handing_over.set()
            self._closed.set()
            runners = list(self._owned.values())
        unanswered = {runner.source_id for runner in runners}
        # On a thread of their own, as no setting of redis-py bounds a series of commands: each try waits up to the
        # socket timeout, a lost connection is retried, a new one may ask the sentinels first. Left running past the
        # budget, they still write what Redis answers for until the process exits. The loop, maybe waiting for Redis
        # too, is not waited for first: a renewal that comes after a handover finds the lease gone and writes
        # nothing, and what it claims now is let go again (_run_claimed).
        writes = threading.Thread(
            target=self._hand_over_all, args=(runners, unanswered), name="source-handover", daemon=True
        )
        writes.start()
        writes.join(timeout_s)
        if self._loop.is_alive():
            self._loop.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = sorted(unanswered)
        if left:
            log.warning(
                "sources not handed over: their leases lapse, then other replicas continue them",
                extra={"source_ids": left, "lease_ttl_s": self.settings.source_lease_ttl_s},
            )

    def _hand_over_all(self, runners: list[SourceRunner], unanswered: set[str]) -> None:
        for runner in runners:
            try:
                if runner.source_id in self._stopped_on_request or runner.state == SourceState.FAILED or (
                    # Read to its end with frames Kafka did not acknowledge, a recording is handed over: it ends on
                    # the replica that reads those again.
                    runner.state == SourceState.ENDED and not runner.tally.has_unpublished_frames()
                ):
                    self._settle(runner)
                else:
                    self._hand_over(runner)
            except redis.RedisError as exc:
                log.warning("source not handed over", extra={"source_id": runner.source_id, "error": repr(exc)})
                continue
            with self._lock:
                unanswered.discard(runner.source_id)

    # --- the loop ------------------------------------------------------------------------------------------------

    def _run_loop(self) -> None:
        interval_s = min(self.settings.source_claim_interval_s, self.settings.source_lease_ttl_s / 3)
        while not self._closed.wait(interval_s * random.uniform(0.8, 1.2)):  # noqa: S311 - jitter, not a secret
            try:
                self.tick()
            except Exception as exc:  # the loop must outlive a bad round: without it every lease here would lapse
                # Leases not renewed are trusted for a while (source_store.LEASE_SAFETY), then frames wait.
                SOURCE_LEASE_ERRORS.inc()
                unexpected = not isinstance(exc, redis.RedisError)
                log.warning("source leases not renewed this round", exc_info=unexpected, extra={"error": repr(exc)})

    def tick(self) -> None:
        self._renew()
        if self._handing_over.is_set():
            return
        # A finished source keeps its lease (renewed above) until Kafka answered for its frames: waiting for that here
        # would hold back every other lease's renewal, and a replica that dies before then leaves it to another one,
        # which takes its unanswered frames again.
        with self._lock:
            finished = [runner for runner in self._owned.values() if runner.state in FINAL_STATES]
        for runner in finished:
            if runner.tally.wait_settled(0):
                self._settle(runner)
        room = min(CLAIMS_PER_TICK, self.settings.max_sources - self._running())
        if room > 0:
            unowned = self.store.unowned(self.settings.camera_host)
            for source_id in random.sample(unowned, min(room, len(unowned))):
                self._claim(source_id)

    def _renew(self) -> None:
        with self._lock:
            runners = list(self._owned.values())
        if not runners:
            return
        sent_at = time.monotonic()
        replies = self.store.renew(
            [(runner.source_id, _lease_of(runner).token, self._progress(runner)) for runner in runners], self.ttl_ms
        )
        for runner, reply in zip(runners, replies, strict=True):
            if reply == 0:
                self._lost(runner)
                continue
            _lease_of(runner).renewed(sent_at)
            if reply == 2:
                with self._lock:
                    self._stopped_on_request.add(runner.source_id)
                runner.stop()

    def _claim(self, source_id: str) -> None:
        token = self.store.new_token(self.owner)
        granted_at = time.monotonic()
        try:
            stored = self.store.claim(source_id, token, self.ttl_ms, self.owner, self.settings.camera_host)
        except ReplicasBehind as exc:
            # Not trusted with it (the primary may be cut off): the lease it took there, under a token nobody holds,
            # lapses after its TTL and the source is claimed again then; the round's other claims go on.
            SOURCE_LEASE_ERRORS.inc()
            log.warning("source not claimed: no replica holds the claim", extra={"source_id": source_id, "error": str(exc)})
            return
        if stored is not None:
            self._run_claimed(stored, Lease(token, self.settings.source_lease_ttl_s, granted_at))

    def _run_claimed(self, stored: StoredSource, lease: Lease) -> None:
        source_id = stored.source_id
        before = SourceStatus.model_validate(stored.status)
        if stored.stop_requested:  # asked to stop while its replica was going away
            stopped = before.model_copy(update={"state": SourceState.STOPPED, "updated_at_ms": now_ms(), "owner": None})
            fields = progress_fields(stopped.model_dump(mode="json"), stored.next_sequence, stored.continue_at_ms)
            self.store.finish(source_id, lease.token, now_ms(), fields)
            return
        spec = SourceSpec(stored.location)
        next_sequence = stored.next_sequence
        if stored.owner:
            SOURCE_TAKEOVERS.inc()
            log.warning("source taken over", extra={"source_id": source_id, "from": stored.owner})
            if stored.continue_at_ms is None and spec.kind not in (SourceKind.FILE, SourceKind.FOLDER):
                # A live source: numbers its replica may have used after its last renewal are skipped, never reused.
                next_sequence += math.ceil(before.fps * self.settings.source_lease_ttl_s) + 1
        runner = self.pipeline.runner(
            spec,
            before.class_id,
            before.fps,
            source_id,
            before.session_id,
            stored.realtime,
            before.camera_kind,
            started_at_ms=before.started_at_ms,
            continuation=Continuation(next_sequence, stored.continue_at_ms, before),
            lease=lease,
        )
        with self._lock:
            handing_over = self._handing_over.is_set()
            if not handing_over:
                self._owned[source_id] = runner
                SOURCES_OWNED.set(len(self._owned))
        if handing_over:
            # Claimed (or created) as this replica goes away: let go at once, for another replica to run.
            self.store.release(source_id, lease.token, [])
            return
        runner.start()

    def _settle(self, runner: SourceRunner) -> None:
        """Write a finished source's final state and let its lease go (once, whoever calls)."""
        if not self._release_here(runner):
            return
        status = self._owned_status(runner)
        if status.state not in FINAL_STATES:  # asked to stop, still blocked in a read: it publishes nothing more
            status = status.model_copy(update={"state": SourceState.STOPPED, "updated_at_ms": now_ms()})
        fields = progress_fields(status.model_dump(mode="json"), *runner.progress())
        if not self.store.finish(runner.source_id, _lease_of(runner).token, now_ms(), fields):
            SOURCE_LEASE_LOSSES.inc()

    def _hand_over(self, runner: SourceRunner) -> None:
        if not self._release_here(runner):
            return
        status = runner.status().model_copy(update={"state": SourceState.WAITING, "reason": "handed over at shutdown"})
        fields = progress_fields(status.model_dump(mode="json"), *runner.progress())
        if self.store.release(runner.source_id, _lease_of(runner).token, fields):
            log.info("source handed over", extra={"source_id": runner.source_id})

    def _lost(self, runner: SourceRunner) -> None:
        _lease_of(runner).lost = True
        runner.stop()
        if self._release_here(runner):
            SOURCE_LEASE_LOSSES.inc()
            log.warning("source lease lost: another replica runs it", extra={"source_id": runner.source_id})

    def _release_here(self, runner: SourceRunner) -> bool:
        with self._lock:
            if self._owned.get(runner.source_id) is not runner:
                return False
            del self._owned[runner.source_id]
            self._stopped_on_request.discard(runner.source_id)
            SOURCES_OWNED.set(len(self._owned))
        runner.forget_metrics()
        return True

    def _running(self) -> int:
        with self._lock:
            return sum(runner.state not in FINAL_STATES for runner in self._owned.values())

    def _owned_status(self, runner: SourceRunner) -> SourceStatus:
        return runner.status().model_copy(update={"owner": self.owner})

    def _progress(self, runner: SourceRunner) -> list[str]:
        return progress_fields(self._owned_status(runner).model_dump(mode="json"), *runner.progress())


def _finished(stored: StoredSource) -> bool:
    return stored.status["state"] in {state.value for state in FINAL_STATES}


def stored_status(stored: StoredSource) -> SourceStatus:
    """A source's status as Redis has it: the owner's last word, or waiting if no replica holds it now (stalled if
    no other replica may take it)."""
    status = SourceStatus.model_validate(stored.status)
    if stored.leased:
        return status.model_copy(update={"owner": stored.owner or None})
    if status.state in FINAL_STATES:
        return status.model_copy(update={"owner": None})
    if stored.host:
        reason = f"its camera is on {stored.host}, where no ingest replica runs it now; it resumes when one does"
        return status.model_copy(update={"owner": None, "state": SourceState.STALLED, "reason": reason})
    return status.model_copy(update={"owner": None, "state": SourceState.WAITING})


def _lease_of(runner: SourceRunner) -> Lease:
    """The lease of a runner the manager owns: it makes each of them with one."""
    if runner.lease is None:
        raise RuntimeError(f"source {runner.source_id} runs without a lease")
    return runner.lease
