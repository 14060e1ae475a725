"""The window of capture times the pipeline accepts, checked where frames enter (ingest) and where they are counted
(the aggregator).

A capture time in the future (a camera's or a file's clock ahead, a forged stamp) would push a series' newest sample
ahead, and RedisTimeSeries then refuses every honest sample more than the retention behind it; one older than the
raw retention cannot be written at all. Both are refused with their reason instead, and counted.
"""

from __future__ import annotations

from enum import StrEnum


class CaptureTimeProblem(StrEnum):
    FUTURE = "capture_time_future"
    TOO_OLD = "capture_time_too_old"


def capture_time_problem(
    captured_at_ms: int, now_ms: int, max_age_ms: int, max_ahead_ms: int
) -> tuple[CaptureTimeProblem, str] | None:
    """Why a capture time is outside [now - max_age, now + max_ahead], in words; None when it is inside."""
    if captured_at_ms > now_ms + max_ahead_ms:
        return CaptureTimeProblem.FUTURE, (
            f"capture time {captured_at_ms} is {captured_at_ms - now_ms} ms in the future (at most {max_ahead_ms} ms "
            "of clock skew is accepted)"
        )
    if captured_at_ms < now_ms - max_age_ms:
        return CaptureTimeProblem.TOO_OLD, (
            f"capture time {captured_at_ms} is {now_ms - captured_at_ms} ms old, older than the {max_age_ms} ms the "
            "raw series keep"
        )
    return None
