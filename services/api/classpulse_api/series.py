"""Reading class metrics back from RedisTimeSeries.

A query range is stitched from the finest series that still holds each part of it: raw 1 s sums for the recent past
(kept `raw_retention_ms`), then the 10 s, 1 min and 1 h compactions further back. Parts are split on bucket
boundaries, so each output bucket comes from exactly one series and sums stay exact. Compactions are read with
LATEST, so the bucket a compaction has not closed yet (the last seconds of a lesson nothing came after) is included.

The output bucket is never finer than the finest series still holding the range's start: a lesson read back after
its raw seconds expired comes back in 10 s buckets with the same totals. What a series still holds is counted from
the newest sample it may have, not from the clock: RedisTimeSeries trims behind a series' newest sample, and
`present` and `observed` are written a presence window ahead of the last frame. A range older than every retention is
refused (`RangeNotHeld`), never answered with nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis

from classpulse_api.timeparams import iso
from classpulse_core.timeseries import Resolution, parse_ranges, range_commands

Sums = dict[str, float]


class RangeNotHeld(ValueError):
    """No series keeps any part of the range any more (or not at the bucket asked for)."""


@dataclass(frozen=True)
class Segment:
    resolution: Resolution
    start_ms: int
    end_ms: int  # inclusive


@dataclass(frozen=True)
class ReadPlan:
    """How a range is read: its start (down to a whole bucket, and up to the first bucket a series still holds whole),
    its end (up to the last millisecond of its last bucket), the output bucket, and which series serve which part."""

    start_ms: int
    end_ms: int
    bucket_ms: int
    segments: list[Segment]
    held_from_ms: int
    """The oldest instant any series still holds; a range starting before it was clipped to it."""


# `newest_ms` below: the newest instant a series may hold a sample of (the clock plus SeriesReader's lead); each
# series keeps its retention behind it.
def held_from(resolutions: list[Resolution], newest_ms: int) -> int:
    return newest_ms - max(resolution.retention_ms for resolution in resolutions)


def plan_segments(start_ms: int, end_ms: int, bucket_ms: int, resolutions: list[Resolution], newest_ms: int) -> list[Segment]:
    """Which series serves which part of [start_ms, end_ms], newest part first, finest series first."""
    segments: list[Segment] = []
    cursor = end_ms
    for resolution in resolutions:
        if bucket_ms % resolution.bucket_ms:
            continue
        oldest_kept = newest_ms - resolution.retention_ms
        # Round up to a whole output bucket so no bucket is split between two series.
        seg_start = max(start_ms, -(-oldest_kept // bucket_ms) * bucket_ms)
        if seg_start <= cursor:
            segments.append(Segment(resolution, seg_start, cursor))
            cursor = seg_start - 1
        if cursor < start_ms:
            break
    return segments


def plan_read(
    start_ms: int, end_ms: int, resolutions: list[Resolution], newest_ms: int, max_buckets: int, bucket_ms: int | None = None
) -> ReadPlan:
    """The plan for a range: with `bucket_ms`, buckets of that width (widened to a multiple of the finest series
    still holding the range's start, if that is coarser); without, the finest width that still holds the start and
    gives at most `max_buckets` buckets."""
    oldest = held_from(resolutions, newest_ms)
    if end_ms < oldest:
        longest = max(resolutions, key=lambda resolution: resolution.retention_ms)
        raise RangeNotHeld(
            f"nothing before {iso(oldest)} is kept any more: the longest retention ({longest.name} buckets) is "
            f"{longest.retention_ms // 1000} s"
        )
    start_ms = max(start_ms, oldest)
    holding = [resolution for resolution in resolutions if newest_ms - resolution.retention_ms <= start_ms]
    finest = min(holding, key=lambda resolution: resolution.bucket_ms)
    if bucket_ms is None:
        widths = sorted(resolution.bucket_ms for resolution in holding)
        coarsest = widths[-1]
        # The finest width that fits; if none does, whole multiples of the coarsest: never more than max_buckets.
        bucket_ms = next((width for width in widths if bucket_count(start_ms, end_ms, width) <= max_buckets), None)
        if bucket_ms is None:
            bucket_ms = -(-(end_ms - start_ms + 1) // (max_buckets * coarsest)) * coarsest
            while bucket_count(start_ms, end_ms, bucket_ms) > max_buckets:
                bucket_ms += coarsest
    elif bucket_ms % finest.bucket_ms:
        bucket_ms = -(-bucket_ms // finest.bucket_ms) * finest.bucket_ms
    # A bucket's sum is stamped at its start, and a roll-up's sample holds its whole bucket: a range starting or
    # ending inside a bucket starts or ends with the whole bucket, whichever series serves it, and says so.
    start_ms -= start_ms % bucket_ms
    end_ms += bucket_ms - 1 - end_ms % bucket_ms
    segments = plan_segments(start_ms, end_ms, bucket_ms, resolutions, newest_ms)
    # A bucket no roll-up divides (15 s) is read from raw alone: where its rounded-down start is older than the raw
    # seconds kept, the range starts with the first bucket raw holds whole, and says so.
    start_ms = min((segment.start_ms for segment in segments), default=start_ms)
    return ReadPlan(start_ms, end_ms, bucket_ms, segments, oldest)


def bucket_count(start_ms: int, end_ms: int, bucket_ms: int) -> int:
    """How many buckets of `bucket_ms` (aligned on the epoch) hold some of [start_ms, end_ms]."""
    return end_ms // bucket_ms - start_ms // bucket_ms + 1


class SeriesReader:
    def __init__(self, client: aioredis.Redis, resolutions: tuple[Resolution, ...], newest_sample_lead_ms: int) -> None:
        self.client = client
        self.resolutions = list(resolutions)
        self.newest_sample_lead_ms = newest_sample_lead_ms

    def plan(self, start_ms: int, end_ms: int, max_buckets: int, bucket_ms: int | None = None) -> ReadPlan:
        # A series keeps its retention behind its own newest sample, which may lie this far past the clock (presence
        # is written ahead of the last frame): planned from there, no part is read from a series that trimmed it.
        return plan_read(start_ms, end_ms, self.resolutions, _now_ms() + self.newest_sample_lead_ms, max_buckets, bucket_ms)

    async def read(self, class_id: str, plan: ReadPlan) -> dict[int, Sums]:
        """Per output bucket of the plan (epoch-aligned start, ms), the sum of each metric."""
        points: dict[int, Sums] = defaultdict(dict)
        for segment in plan.segments:
            for metric, samples in (await self._ranges(class_id, segment, plan.bucket_ms)).items():
                for timestamp, value in samples:
                    points[timestamp][metric] = points[timestamp].get(metric, 0.0) + value
        return dict(sorted(points.items()))

    async def window_totals(self, class_id: str, last_second_ms: int, windows_s: Iterable[int]) -> dict[int, Sums]:
        """The sum of each metric over the latest `window` seconds up to `last_second_ms`, for each window asked,
        read in the finest buckets that hold it so that nothing outside the window is summed. Windows read in
        buckets of the same width share one read (with the default retentions, every window up to the raw one's)."""
        plans = {
            window: self.plan(last_second_ms - (window - 1) * 1000, last_second_ms, max_buckets=window + 2)
            for window in set(windows_s)
        }
        by_width: dict[int, list[int]] = defaultdict(list)
        for window, plan in plans.items():
            by_width[plan.bucket_ms].append(window)
        totals: dict[int, Sums] = {}
        for windows in by_width.values():
            buckets = await self.read(class_id, plans[max(windows)])
            for window in windows:
                window_sums: Sums = defaultdict(float)
                for timestamp, sums in buckets.items():
                    if timestamp >= plans[window].start_ms:
                        for metric, value in sums.items():
                            window_sums[metric] += value
                totals[window] = dict(window_sums)
        return totals

    async def totals(self, class_id: str, start_ms: int, end_ms: int) -> Sums:
        """The sum of each metric over the seconds from `start_ms` to `end_ms`, both included (a lesson so far, or an
        interval of it, for its statements)."""
        window = (end_ms - start_ms) // 1000 + 1
        return (await self.window_totals(class_id, end_ms, [window]))[window]

    async def _ranges(self, class_id: str, segment: Segment, bucket_ms: int) -> dict[str, list[tuple[int, float]]]:
        # Every read is capped in Redis too: at most the segment's buckets (the plan bounds them by the point cap).
        buckets = (segment.end_ms - segment.start_ms) // bucket_ms + 2
        pipe = self.client.pipeline(transaction=False)
        for command in range_commands(class_id, segment.resolution.name, segment.start_ms, segment.end_ms, buckets, bucket_ms):
            pipe.execute_command(*command)
        return parse_ranges(await pipe.execute(raise_on_error=False))


def _now_ms() -> int:
    return int(time.time() * 1000)
