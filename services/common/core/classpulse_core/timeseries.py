"""The layout of class metrics in RedisTimeSeries: written by the aggregator, read by the API.

Per class, one raw series per metric at one-second resolution, holding per-second SUMS so that every coarser bucket
is the sum of finer ones (compaction rules with `sum`), and every ratio (emotion share, faces per frame, presence) is
computed from sums at read time, weighted correctly at any resolution:

    ts:{<class_id>}:<metric>            raw, 1 s buckets, retention `raw_retention_ms`
    ts:{<class_id>}:<metric>:<res>      compactions: 10s, 1m, 1h, each with its own retention

Metrics: `frames` (frames processed), `faces` (faces seen), `present` (student-seconds on camera: each second holds
how many students were on camera during it), `observed` (seconds in which at least one of the class's cameras was
live), `facing` and `posed` (student-seconds facing their camera, and with a head pose at all: written ahead and
corrected like `present`, so facing share = facing / posed), and, when emotions are on, `emotion.<name>` (the sum over faces of the probability of that emotion, so
share = emotion.<name> / faces). `present` and `observed` are written ahead, up to the presence window after a frame
(a snapshot counts until the next one is due): see the aggregator's writer and `indices.py`. The `{class_id}` hash tag keeps a class's
keys in one Redis Cluster slot so one script can update them atomically.

Labels on every series: app=classpulse, class_id, metric, resolution (for operators' own TS.MRANGE and TS.QUERYINDEX).
The services read a class's series by their names instead (`range_commands`: one TS.RANGE a metric, pipelined in one
round trip, every key in the class's slot), not by TS.MRANGE's label filter: RedisTimeSeries keeps one label index for
every database of a server, and a FLUSHDB of any database empties it, so every other database's series, still there,
were found by no filter (a class read 0 frames, its alerts saw an empty class) until each was created again; after a
restart the AOF's replay of that FLUSHDB empties it again. A filter also asks every shard of a Redis Cluster, where a
class's keys live on one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from classpulse_core.labels import EMOTIONS

FRAMES = "frames"
FACES = "faces"
PRESENT = "present"
OBSERVED = "observed"
FACING = "facing"
POSED = "posed"
EMOTION_METRICS: tuple[str, ...] = tuple(f"emotion.{name}" for name in EMOTIONS)
SERIES_METRICS: tuple[str, ...] = (FRAMES, FACES, PRESENT, OBSERVED, FACING, POSED, *EMOTION_METRICS)
RAW_RESOLUTION = "1s"


@dataclass(frozen=True)
class Resolution:
    name: str
    bucket_ms: int
    retention_ms: int


def series_key(class_id: str, metric: str, resolution: str = RAW_RESOLUTION) -> str:
    base = f"ts:{{{class_id}}}:{metric}"
    return base if resolution == RAW_RESOLUTION else f"{base}:{resolution}"


def range_commands(
    class_id: str, resolution: str, start_ms: int, end_ms: int, count: int, bucket_ms: int
) -> list[tuple[str | int, ...]]:
    """One TS.RANGE a metric of the class (SERIES_METRICS' order) from `start_ms` to `end_ms` at `resolution`, summed
    in epoch-aligned buckets of `bucket_ms`, at most `count` of them; a compaction's open bucket included (LATEST)."""
    latest = () if resolution == RAW_RESOLUTION else ("LATEST",)
    return [
        ("TS.RANGE", series_key(class_id, metric, resolution), start_ms, end_ms, *latest, "COUNT", count,
         "AGGREGATION", "sum", bucket_ms)
        for metric in SERIES_METRICS
    ]


MISSING_SERIES = "key does not exist"
"""RedisTimeSeries' error for a series not created yet (a class that has shown no frame, emotions never written)."""


def parse_ranges(replies: list[Any]) -> dict[str, list[tuple[int, float]]]:
    """Samples per metric from the replies to `range_commands`, in order, read with errors returned in place (a
    pipeline's `raise_on_error=False`): a series not created yet is left out; any other error is raised."""
    series: dict[str, list[tuple[int, float]]] = {}
    for metric, reply in zip(SERIES_METRICS, replies, strict=True):
        if isinstance(reply, Exception):
            if MISSING_SERIES in str(reply):
                continue
            raise reply
        series[metric] = [(int(ts), float(v)) for ts, v in reply]
    return series
