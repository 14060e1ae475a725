"""Class metrics: live window, summary, time series, alert events, and a live stream of updates (SSE)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from classpulse_api import views
from classpulse_api.deps import (
    CorrectionDep,
    LogLimitParam,
    LogOffsetParam,
    ReadableClass,
    ReaderDep,
    ReaderKey,
    StoreDep,
    readable_as,
)
from classpulse_api.events import EventLog
from classpulse_api.live import LiveBroadcaster
from classpulse_api.models import (
    METRIC_NAMES,
    ClassSummary,
    ClassTimeseries,
    LiveWindow,
    Page,
    ReadCoverage,
    SeriesPoint,
)
from classpulse_api.series import RangeNotHeld, ReadPlan, SeriesReader, bucket_count
from classpulse_api.store import ClassStore
from classpulse_api.timeparams import format_duration, iso, parse_duration, parse_instant
from classpulse_core.alerts import AlertEvent
from classpulse_core.share_correction import ShareCorrection
from classpulse_store.registry import ClassRecord
from classpulse_web.keystore import KeyStore

router = APIRouter(prefix="/v1/classes", tags=["class metrics"])

StartParam = Annotated[str | None, Query(alias="from", description="ISO 8601 or epoch ms; default: the class's registration")]
EndParam = Annotated[str | None, Query(alias="to", description="ISO 8601 or epoch ms; default: now")]
SessionParam = Annotated[str | None, Query(alias="session", description="a session id: its time range")]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _range(start: str | None, end: str | None, record: ClassRecord) -> tuple[int, int]:
    """The requested range; by default from the class's registration until now."""
    try:
        # From the start of the registration's second: samples are stored per whole second, so the first second of
        # data is stamped at or before the registration itself.
        start_ms = parse_instant(start) if start else record.created_at_ms - record.created_at_ms % 1000
        end_ms = parse_instant(end) if end else _now_ms()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if end_ms < start_ms:
        raise HTTPException(422, "'to' is before 'from'")
    return start_ms, end_ms


async def requested_range(
    record: ReadableClass, store: StoreDep, start: StartParam = None, end: EndParam = None, session: SessionParam = None
) -> tuple[int, int]:
    """The range a caller asked for: a session's, or from/to (by default from the registration until now)."""
    return await _session_range(store, record, session) if session else _range(start, end, record)


RangeDep = Annotated[tuple[int, int], Depends(requested_range)]


async def _session_range(store: ClassStore, record: ClassRecord, session_id: str) -> tuple[int, int]:
    session = await store.get_session(record.class_id, session_id)
    if session is None:
        raise HTTPException(404, f"class {record.class_id!r} has no session {session_id!r}")
    return session.started_at_ms, session.ended_at_ms or _now_ms()


def _plan(request: Request, reader: SeriesReader, start_ms: int, end_ms: int, bucket_ms: int | None = None) -> ReadPlan:
    try:
        return reader.plan(start_ms, end_ms, request.app.state.settings.max_points, bucket_ms)
    except RangeNotHeld as exc:
        raise HTTPException(422, str(exc)) from None


def _coverage(plan: ReadPlan) -> ReadCoverage:
    names = [segment.resolution.name for segment in sorted(plan.segments, key=lambda s: s.resolution.bucket_ms)]
    return ReadCoverage(bucket_ms=plan.bucket_ms, resolutions=names, held_from=iso(plan.held_from_ms))


@router.get("/{class_id}/summary", response_model=ClassSummary, summary="Totals, indices, phases and peaks over a range or session")
async def summary(
    request: Request,
    record: ReadableClass,
    reader: ReaderDep,
    correction: CorrectionDep,
    time_range: RangeDep,
    session: SessionParam = None,
    phases: Annotated[int, Query(ge=1, le=24, description="parts the range is cut in for its arc")] = 4,
) -> ClassSummary:
    plan = _plan(request, reader, *time_range)
    buckets = await reader.read(record.class_id, plan)
    totals: dict[str, float] = {}
    for sums in buckets.values():
        views.add(totals, sums)
    return ClassSummary(
        class_id=record.class_id,
        start=iso(plan.start_ms),
        end=iso(plan.end_ms),
        session_id=session,
        emotion_enabled=record.emotion_enabled,
        emotion_status=views.emotion_status(record.emotion_enabled),
        phases=views.phases(correction, buckets, plan.bucket_ms, plan.end_ms, phases) if record.emotion_enabled else [],
        peaks=views.peaks(correction, buckets, record) if record.emotion_enabled else [],
        coverage=_coverage(plan),
        **views.indices_of(correction, totals, record),
    )


@router.get(
    "/{class_id}/timeseries",
    response_model=ClassTimeseries,
    response_model_exclude_unset=True,
    summary="Metrics and indices in time buckets",
)
async def timeseries(
    request: Request,
    record: ReadableClass,
    reader: ReaderDep,
    correction: CorrectionDep,
    time_range: RangeDep,
    bucket: Annotated[
        str, Query(description="bucket width, whole seconds: 1s, 10s, 1m, 1h; widened where only coarser series hold the range")
    ] = "10s",
    metrics: Annotated[
        str | None, Query(description=f"comma-separated metrics to return, of: {', '.join(METRIC_NAMES)}; default all")
    ] = None,
) -> ClassTimeseries:
    try:
        bucket_ms = parse_duration(bucket)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if bucket_ms % 1000:
        raise HTTPException(422, "bucket must be a whole number of seconds")
    plan = _plan(request, reader, *time_range, bucket_ms=bucket_ms)
    max_points = request.app.state.settings.max_points
    if bucket_count(plan.start_ms, plan.end_ms, plan.bucket_ms) > max_points:
        raise HTTPException(422, f"more than {max_points} buckets: narrow the range or widen the bucket")
    wanted = set(METRIC_NAMES) if metrics is None else {name.strip() for name in metrics.split(",") if name.strip()}
    if unknown := wanted - set(METRIC_NAMES):
        raise HTTPException(422, f"unknown metric(s) {sorted(unknown)}; known: {', '.join(METRIC_NAMES)}")
    buckets = await reader.read(record.class_id, plan)
    points = [
        SeriesPoint(t=t, time=iso(t), **{k: v for k, v in figures.items() if k in wanted})
        for t, figures in zip(buckets, views.bucket_indices(correction, buckets, record), strict=True)
    ]
    return ClassTimeseries(
        class_id=record.class_id,
        start=iso(plan.start_ms),
        end=iso(plan.end_ms),
        bucket=format_duration(plan.bucket_ms),
        bucket_ms=plan.bucket_ms,
        emotion_enabled=record.emotion_enabled,
        emotion_status=views.emotion_status(record.emotion_enabled),
        coverage=_coverage(plan),
        points=points,
    )


def _live_window(
    correction: ShareCorrection, record: ClassRecord, window_s: int, at_ms: int, totals: dict[str, float]
) -> LiveWindow:
    # Presence over all of the window's seconds, so a class whose cameras all went off reads 0 on camera.
    return LiveWindow(
        class_id=record.class_id,
        window_s=window_s,
        at=iso(at_ms),
        emotion_enabled=record.emotion_enabled,
        emotion_status=views.emotion_status(record.emotion_enabled),
        **views.indices_of(correction, totals, record, seconds=window_s),
    )


WindowParam = Annotated[int, Query(ge=1, le=3600, description="seconds of the latest window")]
STREAM_RECHECK_S = 5.0
"""How often an open stream asks again whether its key may still read its class, and in which mode."""


@router.get("/{class_id}/live", response_model=LiveWindow, summary="The latest window of a class")
async def live(record: ReadableClass, reader: ReaderDep, correction: CorrectionDep, window: WindowParam = 10) -> LiveWindow:
    now = _now_ms()
    # The window's whole seconds up to the current one (samples are stamped at their second's start).
    totals = await reader.window_totals(record.class_id, now - now % 1000, [window])
    return _live_window(correction, record, window, now, totals[window])


@router.get("/{class_id}/events", response_model=Page[AlertEvent], summary="Alert events, newest first")
async def events(
    request: Request,
    record: ReadableClass,
    offset: LogOffsetParam = 0,
    limit: LogLimitParam = 50,
) -> Page[AlertEvent]:
    log: EventLog = request.app.state.events
    items, total = await log.page(record.class_id, offset, limit, emotions_on=record.emotion_enabled)
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get(
    "/{class_id}/stream",
    response_class=EventSourceResponse,
    summary="Server-Sent Events: `live` every second, `alert` as they happen",
)
async def stream(
    request: Request, response: Response, record: ReadableClass, key: ReaderKey, store: StoreDep, correction: CorrectionDep,
    window: WindowParam = 10,
) -> AsyncIterator[ServerSentEvent]:
    # FastAPI sends `no-cache` on a stream; class data is never stored along the way either (webapp.BASELINE_HEADERS).
    response.headers["Cache-Control"] = "no-store"
    # Every viewer of a class in this process shares its reads (classpulse_api.live): one per second, however many.
    broadcaster: LiveBroadcaster = request.app.state.live
    keys: KeyStore = request.app.state.keys
    checked = time.monotonic()
    async with broadcaster.watch(record.class_id, window) as updates:
        while True:
            update = await updates.get()
            # A stream outlives the request that opened it: what that request was let read is asked again (the
            # key revoked or expired, the class deleted or given to another teacher: the stream ends; switched to
            # presence-only: its emotions stop at once).
            if key.expires_at_ms is not None and _now_ms() >= key.expires_at_ms:
                return
            if time.monotonic() - checked >= STREAM_RECHECK_S:
                checked = time.monotonic()
                current = await store.get(record.class_id)
                readable = readable_as(request, key, current) if current is not None else None
                if readable is None or not await keys.exists(key.key_id):
                    return
                record = readable
            for event in update.events:
                if event.shown_for(record.emotion_enabled):
                    yield ServerSentEvent(event="alert", data=event)
            if update.totals is not None:
                yield ServerSentEvent(event="live", data=_live_window(correction, record, window, update.at_ms, update.totals))
