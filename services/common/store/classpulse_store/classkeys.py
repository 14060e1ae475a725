"""Every Redis key a class has, so that deleting a class removes them all without scanning the keyspace.

All of a class's keys carry its `{<class_id>}` hash tag. Those with fixed names (the record, the series of every
metric at every resolution, the alert stream and state, the presence state, the sessions index, the ingest quota)
are listed by `fixed_keys`; sessions are found through the sessions index. Keys whose names vary with a source or a
minute (the aggregator's dedup sets and per-source presence, ingest's frame counters) are added to the class's key
index, `keys:{<class_id>}`, by whoever writes them: a sorted set scored by when each key expires (ms since the
epoch), whose entries of expired keys the aggregator drops as it goes. A new per-class key with a varying name must
be added to the index where it is written, or deleting a class leaves it behind.

A class also has fields in a hash every class shares, the integrations' read positions (`OUTBOX_CURSORS`, written by
classpulse_api.dispatcher): its alert cursor and one summary cursor per lesson, named here so that deleting the class
removes them too (`cursor_fields`).
"""

from __future__ import annotations

from collections.abc import Iterable

from classpulse_core.alerts import events_key
from classpulse_core.timeseries import SERIES_METRICS, series_key
from classpulse_store.registry import class_key


def keys_index(class_id: str) -> str:
    return f"keys:{{{class_id}}}"


def alert_state_key(class_id: str) -> str:
    return f"alertstate:{{{class_id}}}"


def class_presence_key(class_id: str) -> str:
    """When the class was watched: its intervals with a live camera (the aggregator's `observed` accounting)."""
    return f"presence:{{{class_id}}}"


def source_presence_key(class_id: str, source_id: str) -> str:
    return f"presence:{{{class_id}}}:{source_id}"


def dedup_key(class_id: str, source_id: str, minute: int) -> str:
    return f"dedup:{{{class_id}}}:{source_id}:{minute}"


def sessions_key(class_id: str) -> str:
    return f"sessions:{{{class_id}}}"


def session_key(class_id: str, session_id: str) -> str:
    return f"session:{{{class_id}}}:{session_id}"


def quota_key(class_id: str) -> str:
    return f"ingest:quota:{{{class_id}}}"


def sequence_key(class_id: str, source_id: str) -> str:
    return f"ingest:sequence:{{{class_id}}}:{source_id}"


OUTBOX_CURSORS = "{outbox}:cursors"
LESSONS_CURSOR_FIELD = ":lessons"
"""The dispatcher's own read position in the lessons stream: a name no class id takes (a class id begins with a letter
or digit), where `lessons` was a class's alert cursor too."""
LESSONS_CURSOR_FIELD_BEFORE = "lessons"
"""Its name until 2026-12-07, read while the new one is not written yet (the first turn after an upgrade)."""


def alert_cursor_field(class_id: str) -> str:
    return class_id


def summary_cursor_field(class_id: str, session_id: str) -> str:
    return f"summary:{class_id}:{session_id}"


def cursor_fields(class_id: str, session_ids: Iterable[str]) -> list[str]:
    """The class's fields in `OUTBOX_CURSORS`, given its sessions' ids."""
    return [alert_cursor_field(class_id), *(summary_cursor_field(class_id, session_id) for session_id in session_ids)]


def fixed_keys(class_id: str, resolutions: Iterable[str]) -> list[str]:
    """The keys of a class whose names do not vary, the key index included."""
    series = [series_key(class_id, metric, resolution) for resolution in resolutions for metric in SERIES_METRICS]
    return [
        class_key(class_id),
        events_key(class_id),
        alert_state_key(class_id),
        class_presence_key(class_id),
        sessions_key(class_id),
        quota_key(class_id),
        keys_index(class_id),
        *series,
    ]
