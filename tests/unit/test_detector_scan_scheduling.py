"""When and where BlazeFace runs on a still room camera, as the detector service runs it (DetectorSettings' tracking
detector): a generated room video, drawn at run time from FER2013 faces, with a webcam's noise, flicker and shake on
every frame (classpulse_reliability.workload.webcam_like_frame). Three students sit still; a fourth as near arrives, a
fifth far back (smaller than SMALLEST_FACE_SHARE of the others) arrives, one leaves and comes back, one's picture
changes for another face.

What must hold: a still, noisy picture costs no forward of the network between full scans; a newcomer as large as the
faces already seen, and a face coming back, are counted on the frame they appear; a newcomer far back is counted at
the latest by the next deep scan (CLASSPULSE_DEEP_SCAN_INTERVAL_MS); full scans between deep ones run only the
pyramid's levels for faces from SMALLEST_FACE_SHARE of the smallest seen."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
import pytest

from classpulse_bench.face_layouts import background, paste_turned
from classpulse_detector.blazeface import BlazeFaceDetector
from classpulse_detector.settings import DetectorSettings
from classpulse_detector.tracking import SMALLEST_FACE_SHARE
from classpulse_reliability.workload import webcam_like_frame
from fer_faces import public_test_faces

pytestmark = pytest.mark.unit

SOURCE = ("class-a", "room-cam")
SIZE = (640, 360)
FRAME_MS = 500
DEEP_MS = 8_000
FRAMES = 24
SEATED = {"left": (120, 130), "middle": (320, 130), "right": (520, 130)}
SEATED_PX = 100
NEAR = ("near", (320, 280), SEATED_PX, range(6, FRAMES))
FAR = ("far", (560, 300), 40, range(4, FRAMES))
LEAVER_AWAY = range(12, 18)
"""Frames in which the right-hand student is away."""
CHANGED_FROM = 8
CHANGED_PX = 170
"""From CHANGED_FROM on, the left-hand student's picture is another face, larger (a video-call tile's picture changing,
or a student leaning into the camera between two frames): more than a lost face's own-size look covers."""


@pytest.fixture(scope="module")
def room_video() -> list[tuple[np.ndarray, dict[str, tuple[int, int, int]]]]:
    """Frames (gray) and, per frame, the faces on camera: name -> (centre x, centre y, side)."""
    faces = public_test_faces({"happy": 3, "neutral": 3}, 23)
    backdrop = background(random.Random(23), *SIZE)
    noise = np.random.default_rng(23)
    video = []
    for n in range(FRAMES):
        canvas = backdrop.copy()
        shown = {
            name: (*centre, CHANGED_PX if name == "left" and n >= CHANGED_FROM else SEATED_PX)
            for name, centre in SEATED.items()
            if not (name == "right" and n in LEAVER_AWAY)
        }
        shown.update({name: (*centre, side) for name, centre, side, on in (NEAR, FAR) if n in on})
        for name, (x, y, side) in shown.items():
            index = len(faces) - 1 if name == "left" and n >= CHANGED_FROM else [*SEATED, NEAR[0], FAR[0]].index(name)
            paste_turned(canvas, faces[index], (x, y), side, 0.0)
        gray = np.clip(canvas.round(), 0, 255).astype(np.uint8)
        video.append((webcam_like_frame(np.dstack([gray] * 3), noise)[..., 0], shown))
    return video


def _names(shown: dict[str, tuple[int, int, int]], boxes) -> list[str | None]:
    """Which drawn face each box is (its centre within a third of that face's side), or None."""
    names = []
    for x, y, w, h in boxes:
        near = [name for name, (cx, cy, side) in shown.items() if math.hypot(x + w / 2 - cx, y + h / 2 - cy) < side / 3]
        names.append(near[0] if near else None)
    return names


@pytest.fixture
def tracker():
    settings = DetectorSettings(face_detector="blazeface", deep_scan_interval_ms=DEEP_MS, full_scan_interval_ms=10_000)
    return settings.tracking_detector("room")


def _forwards(detector: BlazeFaceDetector) -> list[int]:
    """A counter of the network's forwards (the real network, counted as it runs)."""
    runs = [0]
    network_run = detector.network.run

    def counted(*args, **kwargs):
        runs[0] += 1
        return network_run(*args, **kwargs)

    detector.network.run = counted  # type: ignore[method-assign]
    return runs


def test_a_still_noisy_room_costs_no_forward_between_full_scans(room_video, tracker):
    runs = _forwards(tracker.detector)
    per_frame = []
    for n, (gray, shown) in enumerate(room_video[: FAR[3].start]):
        before = runs[0]
        boxes = tracker.detect(SOURCE, n + 1, n * FRAME_MS, gray)
        per_frame.append(runs[0] - before)
        assert sorted(_names(shown, boxes), key=str) == sorted(shown), n
    assert per_frame[0] > 0 and per_frame[1:] == [0] * (len(per_frame) - 1), per_frame


def test_newcomers_and_returns_are_counted_in_time(room_video, tracker):
    counted = []
    for n, (gray, shown) in enumerate(room_video):
        names = _names(shown, tracker.detect(SOURCE, n + 1, n * FRAME_MS, gray))
        assert None not in names and len(names) == len(set(names)), (n, names)  # nothing else, nothing twice
        counted.append(set(names))
    # As large as the faces seen: counted from the frame it arrives (the change is scanned where it happened).
    assert all(NEAR[0] in counted[n] for n in NEAR[3]), [n for n in NEAR[3] if NEAR[0] not in counted[n]]
    # A picture that changes for another face: counted on every frame.
    assert all("left" in counted[n] for n in range(FRAMES)), [n for n in range(FRAMES) if "left" not in counted[n]]
    # Leaving and coming back: not counted while away, counted on the first frame back.
    assert all("right" not in counted[n] for n in LEAVER_AWAY)
    assert all("right" in counted[n] for n in range(LEAVER_AWAY.stop, FRAMES))
    # Far back, smaller than the bound: counted at the latest from the first deep scan after it arrived on.
    deep_due = math.ceil(DEEP_MS / FRAME_MS)
    assert FAR[3].start < deep_due < FRAMES
    assert all(FAR[0] in counted[n] for n in range(deep_due, FRAMES)), [n for n in range(deep_due, FRAMES) if FAR[0] not in counted[n]]
    assert all(shown.keys() == counted[n] for n, (_, shown) in enumerate(room_video) if n >= deep_due)
    assert tracker.stats.deep_scans == 2


def test_full_scans_between_deep_ones_run_only_the_levels_for_the_faces_seen(room_video, tracker):
    levels = []
    detect = tracker.detector.detect

    def recorded(gray, region=None, largest_px=None, smallest_px=None):
        if region is None:
            levels.append(tracker.detector.scales(gray.shape[1], gray.shape[0], largest_px, smallest_px))
        return detect(gray, region, largest_px, smallest_px)

    tracker.detector.detect = recorded  # type: ignore[method-assign]
    tracker.full_scan_interval_ms = 1_000
    smallest = min(max(box[2:]) for box in tracker.detect(SOURCE, 1, 0, room_video[0][0]))
    for n, (gray, _) in enumerate(room_video[1 : FAR[3].start], start=1):
        tracker.detect(SOURCE, n + 1, n * FRAME_MS, gray)
    deep, *bounded = levels
    assert len(bounded) == 1 and tracker.stats.deep_scans == 1
    # The deep scan's finest level finds 20-px faces; the bounded one's, faces from 0.7 of the smallest found.
    assert deep[-1] == pytest.approx(38 / 20)
    assert bounded[0][-1] == pytest.approx(38 / int(SMALLEST_FACE_SHARE * smallest)) and len(bounded[0]) < len(deep)


def test_a_face_looked_for_again_costs_one_level():
    """A known face is looked for at sides from its own / 1.5 to its own x 1.5: one level of the pyramid (it was
    every level from those sizes down to the finest, 20-px faces' level at twice the frame's size)."""
    detector = DetectorSettings(face_detector="blazeface").face_finder("room")
    assert isinstance(detector, BlazeFaceDetector)
    for side in (30, 60, 100, 200):
        assert len(detector.scales(1280, 720, int(side * 1.5), int(side / 1.5))) == 1, side
    assert len(detector.scales(1280, 720)) >= 4



CAMERAS_OFF = range(14, 18)
"""Frames of `empty_spell_video` in which the class's camera is off: a dark, noisy frame. The tracker's deep scan is
due at frame DEEP_MS / FRAME_MS = 16, inside the spell."""


@pytest.fixture(scope="module")
def empty_spell_video() -> list[tuple[np.ndarray, dict[str, tuple[int, int, int]]]]:
    """The three seated students of `room_video`, gone with the picture during CAMERAS_OFF and back after (make bench's
    sample class turns its cameras off and on once a pass)."""
    faces = public_test_faces({"happy": 3}, 29)
    backdrop = background(random.Random(29), *SIZE)
    noise = np.random.default_rng(29)
    video = []
    for n in range(CAMERAS_OFF.stop + 2):
        canvas = np.full_like(backdrop, 30) if n in CAMERAS_OFF else backdrop.copy()
        shown = {} if n in CAMERAS_OFF else {name: (*centre, SEATED_PX) for name, centre in SEATED.items()}
        for index, (x, y, side) in enumerate(shown.values()):
            paste_turned(canvas, faces[index], (x, y), side, 0.0)
        gray = np.clip(canvas.round(), 0, 255).astype(np.uint8)
        video.append((webcam_like_frame(np.dstack([gray] * 3), noise)[..., 0], shown))
    return video


def test_an_empty_spell_costs_no_deep_scan_but_the_one_due_and_faces_back_are_found_at_their_sizes(
    empty_spell_video, tracker
):
    """The dark frame's bounded scan, finding nothing, is looked at again at the deep scan's levels for the faces'
    sizes only (it was a deep scan); the deep scan due in the spell, finding nothing, keeps the faces' sizes, so the
    scan that finds them back is bounded by them (it was deep), and finds each of them on the frame they are back."""
    detect = tracker.detector.detect
    full_scans: list[tuple[int, int | None]] = []

    def recorded(gray, region=None, largest_px=None, smallest_px=None):
        if region is None:
            full_scans.append((n, smallest_px))
        return detect(gray, region, largest_px, smallest_px)

    tracker.detector.detect = recorded
    for n, (gray, shown) in enumerate(empty_spell_video):
        names = _names(shown, tracker.detect(SOURCE, n + 1, n * FRAME_MS, gray))
        assert sorted(names, key=str) == sorted(shown), (n, names)
    bound = int(SMALLEST_FACE_SHARE * SEATED_PX)
    back = [smallest for frame, smallest in full_scans if frame == CAMERAS_OFF.stop]
    assert back and all(smallest is not None and smallest >= bound * 0.8 for smallest in back), full_scans
    assert (0, None) in full_scans and (DEEP_MS // FRAME_MS, None) in full_scans, full_scans
    assert tracker.stats.deep_scans == 2 and tracker.stats.rescans == 1, (tracker.stats, full_scans)


def test_a_rescan_runs_the_deep_scans_levels_for_the_sizes_given_and_finds_their_faces(room_video):
    """`BlazeFaceDetector.rescan` finds the faces a deep scan finds of the sizes given, at the deep scan's own levels
    that see them, without the finer ones (the deep scan's largest cost)."""
    detector = DetectorSettings(face_detector="blazeface").face_finder("room")
    assert isinstance(detector, BlazeFaceDetector)
    gray, shown = room_video[0]
    scales: list[float] = []
    forward = detector.network.forward

    def recorded(image, origin, scale, min_score=None):
        scales.append(scale)
        return forward(image, origin, scale, min_score)

    detector.network.forward = recorded  # type: ignore[method-assign]
    deep = detector.detect(gray)
    deep_scales, scales[:] = sorted(set(scales)), []
    again = detector.rescan(gray, SEATED_PX)
    assert sorted(_names(shown, again), key=str) == sorted(_names(shown, deep), key=str) == sorted(shown)
    levels = detector.scales(*gray.shape[::-1])
    assert set(scales) <= set(levels) and max(scales) < levels[-2], (scales, levels)
    assert min(scales) == deep_scales[0]
    # Sizes as small as the deep scan's finest faces: the deep scan itself.
    scales[:] = []
    assert detector.rescan(gray, detector.min_face_px) == deep and max(scales) == levels[-1]


RESIZED = (1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0)
"""The size of each frame of `test_a_source_whose_frames_change_size_is_counted_on_the_first_frame_of_each_size`, as
a share of the room video's: a webcam or WebRTC stream halving its frames for its bandwidth, then restoring them."""


def test_a_source_whose_frames_change_size_is_counted_on_the_first_frame_of_each_size(room_video, tracker):
    """The faces of the frame before are neither where nor as large as they were: the source starts afresh, with a
    deep scan (it followed the old boxes, which matched nothing, and full scans looked only for faces from 0.7 of the
    old smallest: the class read no one until the next deep scan, up to CLASSPULSE_DEEP_SCAN_INTERVAL_MS)."""
    seated = room_video[: FAR[3].start]
    for n, scale in enumerate(RESIZED):
        gray, shown = seated[n % len(seated)]
        resized = cv2.resize(gray, (round(SIZE[0] * scale), round(SIZE[1] * scale)), interpolation=cv2.INTER_AREA)
        scaled = {name: (round(x * scale), round(y * scale), round(side * scale)) for name, (x, y, side) in shown.items()}
        names = _names(scaled, tracker.detect(SOURCE, n + 1, n * FRAME_MS, resized))
        assert sorted(names, key=str) == sorted(scaled), (n, scale, names)
    assert tracker.stats.deep_scans == 3, tracker.stats  # the first frame and each change of size: no more
