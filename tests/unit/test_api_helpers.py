import itertools

import numpy as np
import pytest

from classpulse_api import views
from classpulse_api.series import RangeNotHeld, bucket_count, plan_read, plan_segments
from classpulse_api.timeparams import iso, parse_duration, parse_instant
from classpulse_core.capture import CaptureTimeProblem, capture_time_problem
from classpulse_core.indices import (
    attention_risk,
    classified_faces,
    classified_share,
    dominant,
    emotion_shares,
    faces_per_frame,
    mood_index,
    on_camera,
    presence,
)
from classpulse_core.labels import EMOTIONS
from classpulse_core.share_correction import ShareCorrection
from classpulse_core.timeseries import Resolution
from classpulse_store.registry import ClassRecord

pytestmark = pytest.mark.unit

HOUR = 3_600_000
RESOLUTIONS = [Resolution("1s", 1000, 6 * HOUR), Resolution("10s", 10_000, 7 * 24 * HOUR), Resolution("1h", HOUR, 400 * 24 * HOUR)]


def test_instants_parse_from_epoch_ms_and_iso():
    assert parse_instant("1732492800000") == 1732492800000
    assert parse_instant("2024-11-25T00:00:00Z") == 1732492800000
    assert parse_instant("2024-11-25T01:00:00+01:00") == 1732492800000
    assert parse_instant("2024-11-25T00:00:00") == 1732492800000
    assert iso(1732492800000) == "2024-11-25T00:00:00.000Z"
    with pytest.raises(ValueError, match="neither"):
        parse_instant("yesterday")


@pytest.mark.parametrize("text", ["253402300800000", "99999999999999999999", "1969-12-31T23:59:59Z", "3000-01-01T00:00:00Z"])
def test_instants_outside_what_a_reply_can_name_are_refused(text):
    """The year 10000 (epoch ms 253402300800000) once reached the reply's ISO time and failed there: a 500."""
    with pytest.raises(ValueError, match="outside 1970-01-01"):
        parse_instant(text)


@pytest.mark.parametrize("text,ms", [("1s", 1000), ("10s", 10_000), ("5m", 300_000), ("1h", HOUR), ("250ms", 250)])
def test_durations(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["0s", "10", "1w", "-1s", ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_recent_ranges_read_only_raw_seconds():
    now = 100 * HOUR
    segments = plan_segments(now - HOUR, now, 10_000, RESOLUTIONS, now)
    assert [(s.resolution.name, s.start_ms, s.end_ms) for s in segments] == [("1s", now - HOUR, now)]


def test_old_ranges_are_stitched_on_bucket_boundaries_without_overlap():
    now = 100 * HOUR + 1234
    segments = plan_segments(now - 30 * HOUR, now, HOUR, RESOLUTIONS, now)
    assert [s.resolution.name for s in segments] == ["1s", "10s"]
    raw, older = segments
    assert raw.start_ms % HOUR == 0 and raw.start_ms >= now - 6 * HOUR
    assert older.end_ms == raw.start_ms - 1 and older.start_ms == now - 30 * HOUR


def test_resolutions_that_do_not_divide_the_bucket_are_skipped():
    now = 1000 * HOUR
    segments = plan_segments(now - 300 * 24 * HOUR, now, 15_000, RESOLUTIONS, now)
    assert [s.resolution.name for s in segments] == ["1s"]


def test_shares_are_weighted_by_summed_probabilities():
    sums = {"frames": 4, "faces": 8, "emotion.happy": 6.0, "emotion.sad": 2.0}
    shares = emotion_shares(sums)
    assert shares["happy"] == pytest.approx(0.75) and shares["sad"] == pytest.approx(0.25) and shares["angry"] == 0
    assert sum(shares.values()) == pytest.approx(1.0)
    assert dominant(shares) == "happy"
    assert faces_per_frame(sums) == 2.0
    assert emotion_shares({"frames": 3, "faces": 0}) is None and faces_per_frame({}) is None


def test_indices_follow_their_documented_formulas():
    # 10 watched seconds with 3 students on camera throughout: 30 student-seconds.
    sums = {"frames": 10, "faces": 30, "present": 30.0, "observed": 10.0, "emotion.happy": 15.0, "emotion.sad": 15.0}
    shares = emotion_shares(sums)
    assert on_camera(sums) == 3.0 and on_camera(sums, seconds=20) == 1.5  # the live view: over the whole window
    assert presence(sums, expected_students=4) == pytest.approx(0.75)
    assert presence(sums, expected_students=4, seconds=30) == pytest.approx(0.25)
    assert on_camera({"frames": 3}) is None and presence({}, 4, seconds=10) == 0.0
    assert presence(sums, expected_students=2) == 1.0  # capped
    assert presence(sums, expected_students=0) is None  # class size unknown
    assert mood_index(shares) == pytest.approx(0.5 * 1.0 + 0.5 * -0.8)
    # risk = 1 - presence * (1 - negative share)
    assert attention_risk(shares, 0.75) == pytest.approx(1 - 0.75 * 0.5)
    assert attention_risk(None, 0.25) == pytest.approx(0.75)  # presence-only mode
    assert attention_risk(shares, None) == pytest.approx(0.5)
    assert mood_index(None) is None and attention_risk(None, None) is None


def test_the_faces_shares_were_read_from_are_the_total_of_the_emotion_sums():
    """30 faces seen, 10 of them classified (each face's probabilities sum to 1): the shares cover a third of them."""
    sums = {"frames": 10, "faces": 30, "emotion.happy": 7.5, "emotion.sad": 2.5}
    assert classified_faces(sums) == pytest.approx(10.0) and classified_share(sums) == pytest.approx(1 / 3)
    assert classified_faces({"faces": 4}) == 0 and classified_share({"faces": 4}) == 0
    assert classified_share({"frames": 3}) is None  # nothing seen: no share of it
    identity = ShareCorrection(np.eye(len(EMOTIONS)), "identity")
    on = views.indices_of(identity, sums, ClassRecord(class_id="c"))
    assert (on["classified_faces"], on["classified_share"]) == (10, pytest.approx(1 / 3))
    # A class presence-only now shows neither, as it shows no share, even of a period before it was switched.
    off = views.indices_of(identity, sums, ClassRecord(class_id="c", emotion_enabled=False))
    assert (off["classified_faces"], off["classified_share"], off["emotions"]) == (None, None, None)


FOUR = [Resolution("1s", 1000, 6 * HOUR), Resolution("10s", 10_000, 7 * 24 * HOUR),
        Resolution("1m", 60_000, 30 * 24 * HOUR), Resolution("1h", HOUR, 400 * 24 * HOUR)]


def test_a_range_is_read_at_the_finest_bucket_that_still_holds_its_start():
    now = 10_000 * HOUR
    lesson = plan_read(now - 2 * HOUR, now - HOUR, FOUR, now, max_buckets=10_000)
    assert lesson.bucket_ms == 1000 and [s.resolution.name for s in lesson.segments] == ["1s"]
    # The same lesson the next day: its raw seconds are gone, the 10 s roll-up serves it whole.
    next_day = plan_read(now - 26 * HOUR, now - 25 * HOUR, FOUR, now, max_buckets=10_000)
    assert next_day.bucket_ms == 10_000 and [s.resolution.name for s in next_day.segments] == ["10s"]
    # A week: too many 10 s buckets for one answer, so minutes; the recent part still from finer series.
    week = plan_read(now - 7 * 24 * HOUR + HOUR, now, FOUR, now, max_buckets=20_000)
    assert week.bucket_ms == 60_000 and [s.resolution.name for s in week.segments] == ["1s", "10s"]
    # Months: hours, from the hourly roll-up for the part nothing finer keeps.
    months = plan_read(now - 100 * 24 * HOUR, now, FOUR, now, max_buckets=10_000)
    assert months.bucket_ms == HOUR and [s.resolution.name for s in months.segments][-1] == "1h"


def test_a_bucket_asked_for_is_widened_where_only_coarser_series_hold_the_range():
    now = 10_000 * HOUR
    plan = plan_read(now - 3 * 24 * HOUR, now - 2 * 24 * HOUR, FOUR, now, max_buckets=10_000, bucket_ms=1000)
    assert plan.bucket_ms == 10_000
    plan = plan_read(now - 3 * 24 * HOUR, now - 2 * 24 * HOUR, FOUR, now, max_buckets=10_000, bucket_ms=15_000)
    assert plan.bucket_ms == 20_000  # the next multiple of 10 s: no bucket straddles two roll-up buckets


def test_ranges_start_on_a_whole_bucket_and_are_clipped_to_what_is_held():
    now = 10_000 * HOUR + 1234
    plan = plan_read(now - 25 * HOUR + 3_000, now - 24 * HOUR, FOUR, now, max_buckets=10_000)
    assert plan.start_ms % plan.bucket_ms == 0 and now - 25 * HOUR + 3_000 - plan.start_ms < plan.bucket_ms
    everything = plan_read(0, now, FOUR, now, max_buckets=10_000)
    # From the first hour the hourly roll-up holds whole: the one the retention cuts through is partly trimmed.
    assert everything.held_from_ms == now - 400 * 24 * HOUR and 0 <= everything.start_ms - everything.held_from_ms < HOUR
    with pytest.raises(RangeNotHeld, match="nothing before .* is kept"):
        plan_read(0, now - 401 * 24 * HOUR, FOUR, now, max_buckets=10_000)


def test_a_bucket_no_roll_up_divides_starts_with_the_first_bucket_raw_holds_whole():
    """15-s buckets come from the raw seconds alone: a range starting 2 s inside raw's retention has its first
    15-s bucket begin before what raw keeps, and that bucket was left out while the reply named its start."""
    now = 10_000 * HOUR + 7_000
    start = now - 6 * HOUR + 2_000
    plan = plan_read(start, start + 300_000, FOUR, now, max_buckets=10_000, bucket_ms=15_000)
    assert [segment.resolution.name for segment in plan.segments] == ["1s"]
    assert plan.start_ms == plan.segments[-1].start_ms and plan.start_ms % 15_000 == 0
    assert 0 < plan.start_ms - (now - 6 * HOUR) <= 15_000


def test_a_range_no_series_can_give_in_few_enough_buckets_gets_wider_ones_never_more_than_the_cap():
    now = 10_000 * HOUR
    everything = plan_read(0, now, FOUR, now, max_buckets=100)
    assert everything.bucket_ms % HOUR == 0 and everything.bucket_ms > HOUR
    assert bucket_count(everything.start_ms, everything.end_ms, everything.bucket_ms) <= 100
    assert [s.resolution.name for s in everything.segments][-1] == "1h"


@pytest.mark.parametrize("offset_ms", [0, 1, 4_999, 9_999])
def test_a_range_ends_with_the_last_millisecond_of_its_last_bucket_and_holds_no_more_buckets_than_the_cap(offset_ms):
    """Both ends move out to whole buckets, so a range of 10 buckets' length that starts inside one spans 11: the
    width is chosen on the buckets the range will span, not its length."""
    now = 10_000 * HOUR
    start = now - 2 * HOUR + offset_ms
    plan = plan_read(start, start + 10 * 10_000 - 1, FOUR, now, max_buckets=10, bucket_ms=None)
    assert plan.start_ms % plan.bucket_ms == 0 and (plan.end_ms + 1) % plan.bucket_ms == 0
    assert plan.start_ms <= start and plan.end_ms >= start + 10 * 10_000 - 1
    assert bucket_count(plan.start_ms, plan.end_ms, plan.bucket_ms) <= 10
    assert plan.segments[0].end_ms == plan.end_ms  # the series read to the end the reply names
    assert plan.bucket_ms == (10_000 if offset_ms == 0 else 60_000)


def test_capture_times_outside_the_window_are_named():
    now = 1_800_000_000_000
    assert capture_time_problem(now - 5_000, now, max_age_ms=HOUR, max_ahead_ms=60_000) is None
    assert capture_time_problem(now + 60_000, now, max_age_ms=HOUR, max_ahead_ms=60_000) is None
    problem, words = capture_time_problem(now + 61_000, now, max_age_ms=HOUR, max_ahead_ms=60_000)
    assert problem is CaptureTimeProblem.FUTURE and "61000 ms in the future" in words
    problem, words = capture_time_problem(now - HOUR - 1, now, max_age_ms=HOUR, max_ahead_ms=60_000)
    assert problem is CaptureTimeProblem.TOO_OLD and "older than the 3600000 ms" in words


@pytest.mark.parametrize("bucket_ms", [1000, 10_000])
def test_a_lessons_arc_is_cut_on_the_edges_of_the_buckets_it_sums(bucket_ms):
    """Cut on bucket starts alone, a 62-s lesson read from the 10-s roll-up (7 buckets) in 6 parts had its first part
    say 0-10 s while summing 0-20 s, and its last hold only the last 2 s; from the raw seconds its parts said 9.834 s
    where they cut at 10 s."""
    start = 1_796_457_650_000
    seconds = 62
    buckets = {
        start + at: {"faces": float(min(bucket_ms, (seconds * 1000) - at) // 1000), "emotion.happy": 1.0}
        for at in range(0, seconds * 1000, bucket_ms)
    }
    identity = ShareCorrection(np.eye(len(EMOTIONS)), "identity")
    arc = views.phases(identity, buckets, bucket_ms, start + seconds * 1000 - 1, 6)
    cuts = {1000: [0, 10, 20, 31, 41, 51, 62], 10_000: [0, 10, 20, 30, 40, 50, 62]}[bucket_ms]
    assert [(parse_instant(part.start), parse_instant(part.end), part.faces) for part in arc] == [
        (start + a * 1000, start + b * 1000 - 1, b - a) for a, b in itertools.pairwise(cuts)
    ]
    # One face classified a bucket: each part's shares were read from as many faces as it sums buckets.
    held = [sum(parse_instant(part.start) <= t <= parse_instant(part.end) for t in buckets) for part in arc]
    assert [(part.classified_faces, part.classified_share) for part in arc] == [
        (n, pytest.approx(n / part.faces)) for n, part in zip(held, arc, strict=True)
    ]
    few = views.phases(identity, dict(list(buckets.items())[:3]), bucket_ms, start + 2 * bucket_ms + 999, 6)
    assert [part.faces for part in few] == [bucket_ms // 1000] * 3  # never more parts than buckets
