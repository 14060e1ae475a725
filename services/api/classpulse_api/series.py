"""Reading class metrics back from RedisTimeSeries.

A query range is stitched from the finest series that still holds each part of it: raw 1 s sums for the recent past
(kept `raw_retention_ms`), then the 10 s, 1 min and 1 h compactions further back. Parts are split on bucket
boundaries, so each output bucket comes from exactly one series and sums stay exact.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import redis.asyncio as aioredis

from classpulse_common.timeseries import Resolution, parse_mrange

Sums = dict[str, float]


@dataclass(frozen=True)
class Segment:
    resolution: Resolution
    start_ms: int
    end_ms: int  # inclusive


def plan_segments(start_ms: int, end_ms: int, bucket_ms: int, resolutions: list[Resolution], now_ms: int) -> list[Segment]:
    """Which series serves which part of [start_ms, end_ms], newest part first, finest series first."""
    segments: list[Segment] = []
    cursor = end_ms
    for resolution in resolutions:
        if bucket_ms % resolution.bucket_ms:
            continue
        oldest_kept = now_ms - resolution.retention_ms
        # Round up to a whole output bucket so no bucket is split between two series.
        seg_start = max(start_ms, -(-oldest_kept // bucket_ms) * bucket_ms)
        if seg_start <= cursor:
            segments.append(Segment(resolution, seg_start, cursor))
            cursor = seg_start - 1
        if cursor < start_ms:
            break
    return segments


class SeriesReader:
    def __init__(self, client: aioredis.Redis, resolutions: tuple[Resolution, ...]) -> None:
        self.client = client
        self.resolutions = list(resolutions)

    async def buckets(self, class_id: str, start_ms: int, end_ms: int, bucket_ms: int) -> dict[int, Sums]:
        """Per output bucket (epoch-aligned start, ms), the sum of each metric."""
        points: dict[int, Sums] = defaultdict(dict)
        for segment in plan_segments(start_ms, end_ms, bucket_ms, self.resolutions, _now_ms()):
            for metric, samples in (await self._mrange(class_id, segment, bucket_ms)).items():
                for timestamp, value in samples:
                    points[timestamp][metric] = points[timestamp].get(metric, 0.0) + value
        return dict(sorted(points.items()))

    async def totals(self, class_id: str, start_ms: int, end_ms: int) -> Sums:
        """The sum of each metric over the whole range."""
        totals: Sums = defaultdict(float)
        for sums in (await self.buckets(class_id, start_ms, end_ms, self._coarsest_bucket())).values():
            for metric, value in sums.items():
                totals[metric] += value
        return dict(totals)

    def _coarsest_bucket(self) -> int:
        return self.resolutions[-1].bucket_ms

    async def _mrange(self, class_id: str, segment: Segment, bucket_ms: int) -> dict[str, list[tuple[int, float]]]:
        reply = await self.client.execute_command(
            "TS.MRANGE",
            segment.start_ms,
            segment.end_ms,
            "SELECTED_LABELS",
            "metric",
            "AGGREGATION",
            "sum",
            bucket_ms,
            "FILTER",
            f"class_id={class_id}",
            f"resolution={segment.resolution.name}",
        )
        return parse_mrange(reply)


def _now_ms() -> int:
    return int(time.time() * 1000)
