"""Time parameters of the API: instants as ISO 8601 or epoch milliseconds, durations like 10s, 5m, 1h."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


# Instants are bounded far inside what `iso` can write (years 1-9999) once a range is widened to whole buckets.
LATEST_INSTANT_MS = int(datetime(3000, 1, 1, tzinfo=UTC).timestamp() * 1000)


def parse_instant(text: str) -> int:
    """Epoch ms from '1732492800000' or '2026-11-24T22:00:00Z' (no zone means UTC), from 1970 to before 3000."""
    text = text.strip()
    if text.isdigit():
        ms = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither epoch milliseconds nor an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = int(moment.timestamp() * 1000)
    if not 0 <= ms < LATEST_INSTANT_MS:
        raise ValueError(f"{text!r} is outside 1970-01-01 to {iso(LATEST_INSTANT_MS)} (exclusive)")
    return ms


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 1s, 10s, 5m, 1h")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """The shortest of 1h, 10m, 30s, 500ms that says `ms` exactly."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
