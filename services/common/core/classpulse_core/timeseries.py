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

Labels on every series: app=classpulse, class_id, metric, resolution; TS.MRANGE FILTER class_id=<id> resolution=<res>
reads every metric of a class in one round trip.
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
RAW_RESOLUTION = "1s"


@dataclass(frozen=True)
class Resolution:
    name: str
    bucket_ms: int
    retention_ms: int


def series_key(class_id: str, metric: str, resolution: str = RAW_RESOLUTION) -> str:
    base = f"ts:{{{class_id}}}:{metric}"
    return base if resolution == RAW_RESOLUTION else f"{base}:{resolution}"


def parse_mrange(reply: dict[Any, Any]) -> dict[str, list[tuple[int, float]]]:
    """Samples per metric from a TS.MRANGE ... SELECTED_LABELS metric reply (RESP3: {key: [labels, meta, samples]})."""
    series: dict[str, list[tuple[int, float]]] = {}
    for labels, *_, samples in reply.values():
        metric = labels["metric"] if "metric" in labels else labels[b"metric"].decode()
        series[metric if isinstance(metric, str) else metric.decode()] = [(int(ts), float(v)) for ts, v in samples]
    return series
