"""One source running on its own thread: read, sample, apply the class quota, publish; reconnect when it drops.

States: starting -> live -> ended (a recording or folder finished) | stopped (asked to) | failed (with a reason);
a camera or stream that stops delivering goes live -> reconnecting -> live, with exponential backoff and jitter,
and fails after `reconnect_attempts` failed tries in a row. A file or folder that cannot be read fails at once.
A source of the service waits (`waiting`) while no replica runs it (manager.py), or reads `stalled` if only a replica
of one machine may run it (a webcam) and none there does.

A runner holding a lease (source_store.py) hands a frame to Kafka only while the lease is held, and a runner that
continues a source from another process (`Continuation`) goes on with its frame numbers, its timeline and, for a
recording, from the frame after the last one Kafka acknowledged: the frames it sends again carry the same ids and
capture times, which the aggregator counts once.

Rate control differs by kind: a live source over its class's quota skips frames (there is no going back for them);
a recording (file, HTTP file, folder) waits for the quota and for room in the buffer, since waiting loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import Counter, Enum
from pydantic import BaseModel, Field

from classpulse_core.backoff import Backoff
from classpulse_core.capture import capture_time_problem
from classpulse_core.schemas import CameraKind
from classpulse_ingest.accounting import DropReason, ProgressTally
from classpulse_ingest.diagnose import SourceError
from classpulse_ingest.egress import StreamEgressProxy
from classpulse_ingest.publisher import FrameIdentity, FramePublisher, now_ms
from classpulse_ingest.ratelimit import Quotas
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.source_store import Lease
from classpulse_ingest.video import CaptureReader, FolderReader, RawFrame, SourceSpec, open_reader, wall_ms
from classpulse_stream import metrics

log = logging.getLogger(__name__)


class SourceState(StrEnum):
    STARTING = "starting"
    WAITING = "waiting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    STOPPED = "stopped"
    FAILED = "failed"
    STALLED = "stalled"  # a webcam whose machine has no replica running it (manager.py): only there can it run


FINAL_STATES = frozenset({SourceState.ENDED, SourceState.STOPPED, SourceState.FAILED})
SETTLE_WAIT_S = 5.0  # how long a finished source waits for Kafka to acknowledge its last frames before saying so

SOURCE_STATE = Enum(
    "classpulse_ingest_source_state",
    "The state of each source",
    ["class_id", "source_id", "kind"],
    states=[state.value for state in SourceState],
)
SOURCE_RECONNECTS = Counter("classpulse_ingest_source_reconnects_total", "Reconnection attempts of sources", ["kind"])
SOURCE_FAILURES = Counter("classpulse_ingest_source_failures_total", "Sources failed, by cause", ["kind", "cause"])


class SourceStatus(BaseModel):
    source_id: str
    class_id: str
    session_id: str | None
    kind: str
    camera_kind: CameraKind = Field(description="what the camera shows: personal (one student), room or gallery")
    location: str = Field(description="the file, camera index or URL (without any password)")
    fps: float
    state: SourceState
    reason: str | None = Field(None, description="why it is reconnecting, stalled or failed")
    started_at_ms: int
    updated_at_ms: int
    last_frame_at_ms: int | None
    first_captured_at_ms: int | None = Field(
        None, description="earliest capture time of the frames handed to Kafka: with the latest, the range to query"
    )
    last_captured_at_ms: int | None = Field(None, description="latest capture time of the frames handed to Kafka")
    frames_published: int = Field(description="frames acknowledged by Kafka")
    frames_dropped: dict[str, int] = Field(description="frames dropped, by reason")
    images_skipped: int = Field(0, description="unreadable or oversized images of a folder")
    reconnects: int
    owner: str | None = Field(None, description="the ingest replica running it (host name and process id); none while it waits")


@dataclass(frozen=True)
class Continuation:
    """Where a source run before by another process goes on: its next frame number, where a recording continues on
    its own timeline, and its counts so far."""

    next_sequence: int = 0
    continue_at_ms: float | None = None
    before: SourceStatus | None = None


class SourceRunner:
    def __init__(
        self,
        spec: SourceSpec,
        class_id: str,
        source_id: str,
        fps: float,
        settings: IngestSettings,
        publisher: FramePublisher,
        quotas: Quotas,
        egress: StreamEgressProxy,
        session_id: str | None = None,
        realtime: bool = True,
        camera_kind: CameraKind = "room",
        started_at_ms: int | None = None,
        continuation: Continuation | None = None,
        lease: Lease | None = None,
    ) -> None:
        continuation = continuation or Continuation()
        self.spec = spec
        self.camera_kind = camera_kind
        self.kind = spec.kind
        self.class_id = class_id
        self.source_id = source_id
        self.session_id = session_id
        self.fps = fps
        self.settings = settings
        self.publisher = publisher
        self.quotas = quotas
        self.egress = egress
        self.realtime = realtime
        self.lease = lease
        self.tally = ProgressTally(self.kind.value, continuation.next_sequence, continuation.continue_at_ms, lease)
        self.stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source-{source_id}", daemon=True)
        self._sequence = continuation.next_sequence
        self._continue_at_ms = continuation.continue_at_ms
        self._recording: bool | None = None
        before = continuation.before
        self._before = before
        self._reconnects = before.reconnects if before else 0
        self._images_skipped = 0
        self._started_at_ms = started_at_ms or now_ms()
        self._last_frame_at_ms: int | None = before.last_frame_at_ms if before else None
        self._first_captured_at_ms: int | None = before.first_captured_at_ms if before else None
        self._last_captured_at_ms: int | None = before.last_captured_at_ms if before else None
        self._state = SourceState.STARTING
        self._reason: str | None = None
        self._updated_at_ms = self._started_at_ms
        self._finished = threading.Event()

    # --- control ---------------------------------------------------------------------------------------------

    def start(self) -> SourceRunner:
        # Metrics only from here: a runner refused before it starts (a duplicate id) must not touch the series.
        SOURCE_STATE.labels(self.class_id, self.source_id, self.kind.value).state(SourceState.STARTING.value)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_requested.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the source reached a final state."""
        return self._finished.wait(timeout_s)

    def forget_metrics(self) -> None:
        """Drop this source's state series (sources come and go; their labels must not pile up)."""
        SOURCE_STATE.remove(self.class_id, self.source_id, self.kind.value)

    @property
    def state(self) -> SourceState:
        return self._state

    def status(self) -> SourceStatus:
        return SourceStatus(
            source_id=self.source_id,
            class_id=self.class_id,
            session_id=self.session_id,
            kind=self.kind.value,
            camera_kind=self.camera_kind,
            location=self.spec.display,
            fps=self.fps,
            state=self._state,
            reason=self._reason,
            started_at_ms=self._started_at_ms,
            updated_at_ms=self._updated_at_ms,
            last_frame_at_ms=self._last_frame_at_ms,
            first_captured_at_ms=self._first_captured_at_ms,
            last_captured_at_ms=self._last_captured_at_ms,
            frames_published=self.tally.published_count + (self._before.frames_published if self._before else 0),
            frames_dropped=_added(self._before.frames_dropped if self._before else {}, self.tally.dropped_counts()),
            images_skipped=self._images_skipped + (self._before.images_skipped if self._before else 0),
            reconnects=self._reconnects,
        )

    def progress(self) -> tuple[int, float | None]:
        """Where another process would continue this source: a recording at its oldest frame Kafka has not
        acknowledged (ProgressTally; what was sent again is the same frame); a live source after every number handed
        out, since its frames cannot be taken again and a number must never name two frames."""
        if self._recording is False:
            return self._sequence, None
        return self.tally.continuation()

    def _set_state(self, state: SourceState, reason: str | None = None) -> None:
        if state in FINAL_STATES:
            # A final state is read as the source's final count (frames published, dropped): it waits until Kafka
            # has answered for the frames still in flight, or the source would read "ended" with frames unaccounted.
            self.tally.wait_settled(SETTLE_WAIT_S)
        if state == self._state and reason == self._reason:
            return
        self._state, self._reason, self._updated_at_ms = state, reason, now_ms()
        SOURCE_STATE.labels(self.class_id, self.source_id, self.kind.value).state(state.value)
        level = logging.WARNING if state in (SourceState.FAILED, SourceState.RECONNECTING) else logging.INFO
        log.log(level, "source %s", state.value, extra={"source_id": self.source_id, "class_id": self.class_id, "reason": reason})

    # --- the loop --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._read_until_done()
        except Exception as exc:  # a bug must not leave the source "live" forever with nobody reading it
            log.exception("source crashed", extra={"source_id": self.source_id})
            self._fail("internal", f"internal error: {type(exc).__name__}")
        finally:
            self._finished.set()

    def _read_until_done(self) -> None:
        # The timeline starts when the source was created, wherever it runs: a recording continued by another
        # process keeps its pace and capture times.
        started_wall_ms = float(self._started_at_ms)
        started_monotonic = time.monotonic() - (wall_ms() - started_wall_ms) / 1000
        timeline_start_ms: float | None = None
        resume_at_ms = 0.0
        failures_in_a_row = 0
        while not self.stop_requested.is_set():
            reader: CaptureReader | FolderReader | None = None
            try:
                reader = open_reader(self.spec, self.settings, resume_at_ms, self._continue_at_ms, self.egress)
                self._continue_at_ms = None  # once opened there; a reconnection resumes where this reader stops
                self._recording = reader.recording
                if timeline_start_ms is None:
                    timeline_start_ms = self._timeline_start(reader, started_wall_ms)
                for raw in reader.frames(self.fps, timeline_start_ms):
                    failures_in_a_row = 0
                    self._set_state(SourceState.LIVE)
                    if reader.recording and self.realtime:
                        self.stop_requested.wait(max(0.0, started_monotonic + raw.position_ms / 1000 - time.monotonic()))
                    if self.stop_requested.is_set():
                        break
                    self._take(raw, reader.recording)
                    self._images_skipped = reader.skipped
                error = None if reader.reached_end or self.stop_requested.is_set() else SourceError(
                    "dropped", "the source stopped delivering frames"
                )
            except SourceError as exc:
                error = exc
            finally:
                if reader is not None:
                    self._images_skipped = reader.skipped
                    resume_at_ms = reader.last_position_ms
                    reader.release()
            if self.stop_requested.is_set():
                self._set_state(SourceState.STOPPED)
                return
            if error is None:
                self._set_state(SourceState.ENDED)
                return
            if not self.spec.can_drop:
                self._fail(error.cause, str(error))
                return
            failures_in_a_row += 1
            if failures_in_a_row > self.settings.reconnect_attempts:
                self._fail(error.cause, f"gave up after {failures_in_a_row - 1} reconnection attempts: {error}")
                return
            self._reconnect_after(failures_in_a_row, str(error))
        self._set_state(SourceState.STOPPED)  # asked to stop before it began

    def _timeline_start(self, reader: CaptureReader | FolderReader, started_wall_ms: float) -> float:
        """Where a recording's timeline starts on the wall clock: when reading began, for one read at its own pace;
        for one read faster than real time, its length before that, so that it ends then: stamps ahead of the clock
        would be refused as capture times in the future (a lesson of known length looked back at). A recording of
        unknown length read fast keeps the reading start, and frames past the accepted clock skew are refused."""
        if not reader.recording or self.realtime or not reader.duration_ms:
            return started_wall_ms
        return started_wall_ms - reader.duration_ms

    def _reconnect_after(self, attempt: int, reason: str) -> None:
        # Jitter: cameras that dropped together must not all come back at the same instant.
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s, jitter=0.2)
        delay = backoff.delay_s(attempt)
        self._set_state(SourceState.RECONNECTING, f"{reason}; attempt {attempt} in {delay:.1f} s")
        self._reconnects += 1
        SOURCE_RECONNECTS.labels(self.kind.value).inc()
        self.stop_requested.wait(delay)

    def _fail(self, cause: str, reason: str) -> None:
        SOURCE_FAILURES.labels(self.kind.value, cause).inc()
        self._set_state(SourceState.FAILED, reason)

    def _take(self, raw: RawFrame, recording: bool) -> None:
        """Publish one sampled frame within the class quota: a recording waits for it, a live source skips."""
        decision = self.quotas.take_class(self.class_id)
        while not decision.allowed and recording and not self.stop_requested.is_set():
            self.stop_requested.wait(decision.retry_after_s)
            decision = self.quotas.take_class(self.class_id)
        if not decision.allowed:
            if not self.stop_requested.is_set():
                self.tally.dropped(DropReason.CLASS_QUOTA)
            return
        problem = capture_time_problem(
            raw.captured_at_ms, now_ms(), self.settings.raw_retention_ms, self.settings.max_capture_ahead_ms
        )
        if problem:
            # A folder image whose file time is ahead of the clock (or ancient) would poison or miss the series.
            metrics.CAPTURE_TIMES_REFUSED.labels("ingest", problem[0].value).inc()
            self.tally.dropped(DropReason.CAPTURE_TIME)
            log.warning("frame dropped: %s", problem[1], extra={"class_id": self.class_id, "source_id": self.source_id})
            return
        if not self._lease_held():
            return
        identity = FrameIdentity(
            self.class_id, self.source_id, self._sequence, raw.captured_at_ms, self.session_id, self.camera_kind
        )
        self.tally.handed(self._sequence, raw.continue_at_ms)
        self.publisher.publish(raw.image, identity, self.tally, self.settings.recording_wait_s if recording else 0.0)
        self._sequence += 1
        self._last_frame_at_ms = now_ms()
        # Earliest and latest, not first and last: a folder's images are stamped by modification time, in name order.
        self._first_captured_at_ms = min(raw.captured_at_ms, self._first_captured_at_ms or raw.captured_at_ms)
        self._last_captured_at_ms = max(raw.captured_at_ms, self._last_captured_at_ms or raw.captured_at_ms)

    def _lease_held(self) -> bool:
        """Wait while the lease is not known to be held (a renewal is late); False, and the source stops here, once
        it is lost: another replica runs the source from now on."""
        while self.lease is not None and not self.lease.held():
            if self.lease.lost or self.stop_requested.is_set():
                self.stop_requested.set()
                return False
            self.stop_requested.wait(0.1)
        return True


def _added(before: dict[str, int], now: dict[str, int]) -> dict[str, int]:
    return {reason: before.get(reason, 0) + now.get(reason, 0) for reason in before.keys() | now.keys()}
