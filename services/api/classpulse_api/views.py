"""From summed metrics to the numbers the API shows: indices, phases, peaks.

Emotion shares are corrected for the model's known errors (`classpulse_core.share_correction`) before any index is
computed from them; the raw mean of the probabilities is shown beside them as `emotions_raw`."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from classpulse_api.models import EMOTIONS_OFF, EMOTIONS_ON, EmotionShares, Indices, Peak, PhaseSummary
from classpulse_api.timeparams import iso
from classpulse_core import indices
from classpulse_core.share_correction import ShareCorrection
from classpulse_core.timeseries import FACES, FRAMES
from classpulse_store.registry import ClassRecord

Sums = dict[str, float]
Shares = dict[str, float] | None


def emotion_status(enabled: bool) -> str:
    return EMOTIONS_ON if enabled else EMOTIONS_OFF


def _shares_of(correction: ShareCorrection, windows: Sequence[Sums], record: ClassRecord) -> list[tuple[Shares, Shares]]:
    """(corrected, raw) emotion shares of each window, only for a class whose emotions are on: a presence-only class
    shows none, even of a period before it was switched. One call for many windows: the correction solves them
    together."""
    if not record.emotion_enabled:
        return [(None, None)] * len(windows)
    return list(zip(correction.shares(windows), map(indices.emotion_shares, windows), strict=True))


def indices_of(
    correction: ShareCorrection, sums: Sums, record: ClassRecord, seconds: float | None = None
) -> dict[str, object]:
    """The indices of summed metrics; presence over `seconds` (default: the seconds the class was watched)."""
    return _indices(sums, record, _shares_of(correction, [sums], record)[0], seconds)


def bucket_indices(correction: ShareCorrection, buckets: dict[int, Sums], record: ClassRecord) -> list[dict[str, object]]:
    """`indices_of` each bucket, in order."""
    windows = list(buckets.values())
    return [_indices(sums, record, shares) for sums, shares in zip(windows, _shares_of(correction, windows, record), strict=True)]


def _indices(sums: Sums, record: ClassRecord, shares: tuple[Shares, Shares], seconds: float | None = None) -> dict[str, object]:
    corrected, raw = shares
    present = indices.presence(sums, record.expected_students, seconds)
    return Indices(
        frames=round(sums.get(FRAMES, 0)),
        faces=round(sums.get(FACES, 0)),
        faces_per_frame=indices.faces_per_frame(sums),
        on_camera=indices.on_camera(sums, seconds),
        presence=present,
        facing_screen=indices.facing_screen(sums),
        classified_faces=round(indices.classified_faces(sums)) if record.emotion_enabled else None,
        classified_share=indices.classified_share(sums) if record.emotion_enabled else None,
        emotions=EmotionShares(**corrected) if corrected else None,
        emotions_raw=EmotionShares(**raw) if raw else None,
        dominant_emotion=indices.dominant(corrected),
        mood_index=indices.mood_index(corrected),
        attention_risk=indices.attention_risk(corrected, present),
    ).model_dump()


def add(total: Sums, more: Sums) -> None:
    for metric, value in more.items():
        total[metric] = total.get(metric, 0.0) + value


def phases(correction: ShareCorrection, buckets: dict[int, Sums], bucket_ms: int, end_ms: int, count: int) -> list[PhaseSummary]:
    """The buckets' span (first bucket to `end_ms` at most) cut in `count` parts, each with its dominant emotion and
    the faces it was read from (a part that was presence-only reads none): a lesson's arc at a glance. Parts are cut
    on bucket edges, as equal in buckets as can be (never more parts than buckets), so each part says the times of
    the buckets it sums, whatever their width: a lesson read back the next day, from the 10-s or 1-min roll-ups, is
    cut where its buckets are."""
    if not buckets or count < 1:
        return []
    first = min(buckets)
    spanned = (max(buckets) - first) // bucket_ms + 1
    count = min(count, spanned)
    edges = [first + part * spanned // count * bucket_ms for part in range(count + 1)]
    parts: list[Sums] = [{} for _ in range(count)]
    for t, sums in buckets.items():
        add(parts[bisect_right(edges, t) - 1], sums)
    out = []
    for n, (sums, shares) in enumerate(zip(parts, correction.shares(parts), strict=True)):
        out.append(
            PhaseSummary(
                start=iso(edges[n]),
                end=iso(min(end_ms, edges[n + 1] - 1)),
                faces=round(sums.get(FACES, 0)),
                classified_faces=round(indices.classified_faces(sums)),
                classified_share=indices.classified_share(sums),
                dominant_emotion=indices.dominant(shares),
                mood_index=indices.mood_index(shares),
            )
        )
    return out


def peaks(correction: ShareCorrection, buckets: dict[int, Sums], record: ClassRecord, count: int = 3) -> list[Peak]:
    """The moments of highest negative affect, so a teacher can find them in the recording."""
    scored = []
    for (t, sums), shares in zip(buckets.items(), correction.shares(list(buckets.values())), strict=True):
        if shares is None:
            continue
        negative = sum(shares[name] for name in indices.NEGATIVE)
        present = indices.presence(sums, record.expected_students)
        scored.append(Peak(time=iso(t), t=t, negative_share=negative, attention_risk=indices.attention_risk(shares, present)))
    return sorted(scored, key=lambda p: -p.negative_share)[:count]
