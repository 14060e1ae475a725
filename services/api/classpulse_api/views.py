"""From summed metrics to the numbers the API shows: indices, phases, peaks."""

from __future__ import annotations

from classpulse_api.models import EMOTIONS_OFF, EMOTIONS_ON, EmotionShares, Indices, Peak, PhaseSummary
from classpulse_api.timeparams import iso
from classpulse_common import indices
from classpulse_common.registry import ClassRecord
from classpulse_common.timeseries import FACES, FRAMES

Sums = dict[str, float]


def emotion_status(enabled: bool) -> str:
    return EMOTIONS_ON if enabled else EMOTIONS_OFF


def shares_of(sums: Sums, record: ClassRecord) -> dict[str, float] | None:
    """Emotion shares, only for a class whose emotions are on: a presence-only class shows none, even of a period
    before it was switched."""
    return indices.emotion_shares(sums) if record.emotion_enabled else None


def indices_of(sums: Sums, record: ClassRecord, seconds: float | None = None) -> dict[str, object]:
    """The indices of summed metrics; presence over `seconds` (default: the seconds the class was watched)."""
    shares = shares_of(sums, record)
    present = indices.presence(sums, record.expected_students, seconds)
    return Indices(
        frames=round(sums.get(FRAMES, 0)),
        faces=round(sums.get(FACES, 0)),
        faces_per_frame=indices.faces_per_frame(sums),
        on_camera=indices.on_camera(sums, seconds),
        presence=present,
        emotions=EmotionShares(**shares) if shares else None,
        dominant_emotion=indices.dominant(shares),
        mood_index=indices.mood_index(shares),
        attention_risk=indices.attention_risk(shares, present),
    ).model_dump()


def add(total: Sums, more: Sums) -> None:
    for metric, value in more.items():
        total[metric] = total.get(metric, 0.0) + value


def phases(buckets: dict[int, Sums], start_ms: int, end_ms: int, count: int) -> list[PhaseSummary]:
    """The range cut in `count` equal parts, each with its dominant emotion: a lesson's arc at a glance."""
    if not buckets or count < 1:
        return []
    first, last = min(buckets), max(buckets)
    width = max(1, (last - first) // count + 1)
    parts: list[Sums] = [{} for _ in range(count)]
    for t, sums in buckets.items():
        add(parts[min(count - 1, (t - first) // width)], sums)
    out = []
    for n, sums in enumerate(parts):
        shares = indices.emotion_shares(sums)
        out.append(
            PhaseSummary(
                start=iso(first + n * width),
                end=iso(min(end_ms, first + (n + 1) * width - 1)),
                faces=round(sums.get(FACES, 0)),
                dominant_emotion=indices.dominant(shares),
                mood_index=indices.mood_index(shares),
            )
        )
    return out


def peaks(buckets: dict[int, Sums], record: ClassRecord, count: int = 3) -> list[Peak]:
    """The moments of highest negative affect, so a teacher can find them in the recording."""
    scored = []
    for t, sums in buckets.items():
        shares = indices.emotion_shares(sums)
        if shares is None:
            continue
        negative = sum(shares[name] for name in indices.NEGATIVE)
        present = indices.presence(sums, record.expected_students)
        scored.append(Peak(time=iso(t), t=t, negative_share=negative, attention_risk=indices.attention_risk(shares, present)))
    return sorted(scored, key=lambda p: -p.negative_share)[:count]
