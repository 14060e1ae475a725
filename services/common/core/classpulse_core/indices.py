"""The class-level indices a teacher reads, computed from summed metrics (so any time bucket gives the right value).

Students on camera = present / seconds: `present` sums, second by second, how many students were on camera (a
personal camera, one student's own, counts 1 while it shows a face; a room or gallery camera counts every face it shows; a
camera counts from each frame until its next frame, or until the presence window runs out if none comes), so
divided by a span of seconds it is the average number of students on camera over that span. The span is the
seconds in which the class was watched (`observed`: at least one of its cameras live) for summaries and time
buckets, and the whole window for the live view (so a class whose cameras all went off reads 0 there, not "no data").

Presence = students on camera / expected students, capped at 1 (None when the class size is unknown).

Facing the screen = facing / posed: of the student-seconds on camera with a head pose (BlazeFace landmarks; a Haar
face has none and is left out), the share whose head pointed at its camera within the cone of
classpulse_detector.headpose (|yaw| <= 30 deg, |pitch| <= 25 deg). None when no face had a pose. A movement anyone
can see, not an emotion and not attention itself: it is shown in presence-only classes too.

Classified faces = the sum of the seven emotion sums (each classified face's probabilities sum to 1), and the
classified share = classified faces / faces: how much of what was seen the emotion shares were read from. A window
that was partly presence-only (a class switched off, then on again), or whose faces were seen but not classified,
reads under 1.

Mood (valence) index, in [-1, 1]: the emotion shares weighted by the valence of each emotion,
    mood = sum_e share_e * valence_e, with valence: happy +1, surprise +0.4, neutral 0, sad -0.8, fear -0.7,
    angry -0.9, disgust -0.9
(values from the circumplex model of affect: positive for pleasant, negative for unpleasant emotions).

Attention-at-risk index, in [0, 1]: the share of the expected class that is either away or shows negative affect,
    risk = 1 - presence * (1 - negative), with negative = share of angry + disgust + fear + sad;
without emotions (presence-only mode) it is 1 - presence; without a class size it uses negative alone.
Sustained values matter, not single seconds: alerts fire only when an index stays past its threshold for a while.
"""

from __future__ import annotations

from classpulse_core.labels import EMOTIONS
from classpulse_core.timeseries import FACES, FACING, FRAMES, OBSERVED, POSED, PRESENT

VALENCE = {"happy": 1.0, "surprise": 0.4, "neutral": 0.0, "sad": -0.8, "fear": -0.7, "angry": -0.9, "disgust": -0.9}
NEGATIVE = ("angry", "disgust", "fear", "sad")

Sums = dict[str, float]


def _emotion_totals(sums: Sums) -> dict[str, float]:
    return {name: sums.get(f"emotion.{name}", 0.0) for name in EMOTIONS}


def classified_faces(sums: Sums) -> float:
    """The faces whose emotions were read: each classified face adds its probabilities, which sum to 1 (the model's
    softmax), to the seven emotion sums, so their total counts the faces. Faces seen while the class was
    presence-only, or never classified, add nothing to them."""
    return sum(_emotion_totals(sums).values())


def classified_share(sums: Sums) -> float | None:
    """The share of the faces seen that the emotion shares were read from; None without faces."""
    faces = sums.get(FACES, 0.0)
    return min(1.0, classified_faces(sums) / faces) if faces > 0 else None


def emotion_shares(sums: Sums) -> dict[str, float] | None:
    """Share of each emotion among the faces, from summed probabilities; None when no face was classified."""
    totals = _emotion_totals(sums)
    whole = sum(totals.values())
    if whole <= 0:
        return None
    return {name: value / whole for name, value in totals.items()}


def faces_per_frame(sums: Sums) -> float | None:
    frames = sums.get(FRAMES, 0.0)
    return sums.get(FACES, 0.0) / frames if frames else None


def on_camera(sums: Sums, seconds: float | None = None) -> float | None:
    """Students on camera on average over `seconds` (default: the seconds the class was watched); None for no span."""
    span = sums.get(OBSERVED, 0.0) if seconds is None else seconds
    return sums.get(PRESENT, 0.0) / span if span > 0 else None


def facing_screen(sums: Sums) -> float | None:
    posed = sums.get(POSED, 0.0)
    return min(1.0, max(0.0, sums.get(FACING, 0.0) / posed)) if posed > 1e-9 else None


def presence(sums: Sums, expected_students: int, seconds: float | None = None) -> float | None:
    students = on_camera(sums, seconds)
    if students is None or expected_students <= 0:
        return None
    return min(1.0, students / expected_students)


def mood_index(shares: dict[str, float] | None) -> float | None:
    return None if shares is None else sum(share * VALENCE[name] for name, share in shares.items())


def attention_risk(shares: dict[str, float] | None, present: float | None) -> float | None:
    negative = None if shares is None else sum(shares[name] for name in NEGATIVE)
    if present is None:
        return negative
    return 1.0 - present * (1.0 - (negative or 0.0))


def dominant(shares: dict[str, float] | None) -> str | None:
    return None if shares is None else max(shares, key=shares.__getitem__)
