"""A class's series are read by their names (`classpulse_core.timeseries.range_commands`), one TS.RANGE a metric,
and a series not created yet is left out of what is read, as a label filter would leave it out."""

from __future__ import annotations

import pytest

from classpulse_core.timeseries import SERIES_METRICS, parse_ranges, range_commands, series_key

pytestmark = pytest.mark.unit


class ResponseError(Exception):
    """What a pipeline returns in place for a command Redis refused (redis-py's own is an Exception too)."""


def test_every_metric_of_the_class_is_asked_by_name_at_the_resolution():
    raw = range_commands("c-1", "1s", 1000, 9000, 10, 1000)
    assert [command[1] for command in raw] == [series_key("c-1", metric) for metric in SERIES_METRICS]
    assert raw[0] == ("TS.RANGE", "ts:{c-1}:frames", 1000, 9000, "COUNT", 10, "AGGREGATION", "sum", 1000)
    # A compaction's open bucket is read too (LATEST), as the raw series' last second is.
    compacted = range_commands("c-1", "10s", 0, 60_000, 8, 10_000)
    assert compacted[0] == ("TS.RANGE", "ts:{c-1}:frames:10s", 0, 60_000, "LATEST", "COUNT", 8, "AGGREGATION", "sum", 10_000)


def test_a_series_not_created_yet_is_left_out_and_any_other_error_raised():
    replies: list[object] = [[[1000, b"2"], [2000, "1.5"]]] + [[]] * (len(SERIES_METRICS) - 1)
    replies[-1] = ResponseError("TSDB: the key does not exist")
    series = parse_ranges(replies)
    assert series["frames"] == [(1000, 2.0), (2000, 1.5)] and series["faces"] == []
    assert SERIES_METRICS[-1] not in series and len(series) == len(SERIES_METRICS) - 1
    replies[-1] = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        parse_ranges(replies)
