"""Detect, then track: a full scan of a source's frame at most every `full_scan_interval_ms` of capture time, and in
between only a look for each known face where its motion puts it, and a scan where the picture changed.

A 640x480 full scan costs about 20 ms of CPU with Haar, 0.4-0.7 s with BlazeFace down to 20-px faces. Between full
scans each face of the source is followed: its place in the next frame is predicted from its last two places
(constant velocity, the step bounded by a face's side), and it is looked for only around there, by template matching
(normalised cross-correlation with the face as it looked when last detected, shrunk to TRACK_FACE_PX: microseconds a
face; the default for every detector), the detector then asked to look there only when the template no longer
matches (a new expression, a turn; for a face with landmarks, which a match moves unchanged, a stricter match:
MIN_MATCH_LANDMARKS): first by its quick look (`FaceFinder.look_again`: BlazeFace's one run of its 128x128 square,
which finds the face again or sees that it left), then, where that cannot tell, at the one pyramid level that sees
the face's size; or by detection on every frame ("detection": fresh landmarks every frame, a forward a face a frame;
the bench's comparison). A face
not found where it should be is dropped at once: a student who leaves stops being counted on the next frame.

Each frame is also compared, shrunk to a thumbnail, with the previous one away from the faces' places then and now (a
face that moved changed both): a change elsewhere (someone arriving, coming back, a door opening) is scanned by the
detector where it happened, plus a face's side around it, not in the whole frame; a change over more than
REGION_SCAN_MAX_SHARE of the frame (the light, the camera turned) calls for a full scan, and so does a source's frames
arriving out of order (a replay or a consumer-group rebalance), a source not seen before, and a frame of another size
than the source's last (a webcam or a WebRTC stream adapting to its bandwidth, a camera switching profile: its faces
are neither where nor as large as they were, so the source starts afresh, with a deep scan). A face found anew, by a
region or a full scan, is a new track; one a full scan finds where a known face's motion put it keeps that track.
Track numbers are the detector's own: they never leave it, never outlive a face's stay on camera (someone who leaves
and comes back is a new number) and nothing in them or in the tracking identifies a person.

A room or gallery camera does not move, and its faces keep their sizes: a full scan looks for faces down to the
detector's smallest (a "deep" scan, BlazeFace's largest cost: its finest level is the frame at twice its size) only
every `deep_scan_interval_ms`, on a source's first frame and while it has shown no face; the full scans and change
scans between look only for faces from SMALLEST_FACE_SHARE of the smallest face found since (a deep scan that finds
no face keeps that bound: the faces that left come back at their sizes), and a full scan between that finds no face
is done again at once at every level a deep scan sees the source's face sizes at (`FaceFinder.rescan`).

What it costs: a face that appears between two full scans without changing the picture (too small a change for the
thumbnail) is first counted at the next full scan; one smaller than SMALLEST_FACE_SHARE of the source's smallest face
at the next deep scan. The state is a bounded LRU per source: it never needs to survive a
restart, because the first frame after one is simply a full scan.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

import cv2
import numpy as np
from prometheus_client import Counter

from classpulse_detector.faces import Box, clip, landmarks_of, moved, reading_order


class FaceFinder(Protocol):
    """A face detector the tracker drives: Haar's `FaceDetector` or `BlazeFaceDetector`."""

    def detect(
        self, gray: np.ndarray, region: Box | None = None, largest_px: int | None = None, smallest_px: int | None = None
    ) -> list[Box]: ...

    def rescan(self, gray: np.ndarray, smallest_px: int) -> list[Box]:
        """The whole frame looked at again where a scan bounded by the source's faces, the smallest `smallest_px`
        px, found nothing: at least at every level a deep scan sees faces of those sizes at."""
        ...

    def look_again(self, gray: np.ndarray, box: Box) -> list[Box] | None:
        """The known face at `box` found again by one cheap look ([face]), or known to have left ([]), or None when
        the look cannot tell (then it is scanned for around `box`)."""
        ...

    def crop(self, gray: np.ndarray, boxes: list[Box]) -> bytes: ...

TRACK_FACE_PX = 32
"""Side a known face is shrunk to for matching: enough for a face's layout, small enough to cost microseconds."""
TRACK_WINDOW_MARGIN = 0.25
"""How far around a known face to look, as a share of its side (faces in a class move little per frame)."""
RESCAN_MARGIN = 1.0
"""How far around where a known face should be the detector looks for it, as a share of its side. The detector needs
the face whole, with some context: a head rolled 30 degrees fills a square 1.4 times its box, and a box found on a
turned head is smaller than the head (with 0.5, BlazeFace lost a rolling head in 5 of the 24 frames of the moving-faces
video; with 1.0, none). BlazeFace pads what it scans to its input's 128 px, so up to that, a larger window costs
nothing more."""
RESCAN_SIZE_RANGE = 1.5
"""A known face is looked for again at sides from its own divided by this to its own times this: the detector runs
only the levels that see those sizes (one level of BlazeFace's pyramid, not every level down to the smallest faces
the source may hold, which made each look cost a region's worth of the finest level)."""
SMALLEST_FACE_SHARE = 0.7
"""Between deep scans, a full scan looks for faces from this share of the smallest face found in the source since
the last deep scan: a room or gallery camera does not move, so its faces keep their sizes, and a newcomer far back
changes the picture and is scanned for where it changed at every size."""
MIN_MATCH = 0.75
"""Normalised cross-correlation a face must keep with its template to count as found again."""
MIN_MATCH_LANDMARKS = 0.9
"""The match a face with landmarks must keep: a match moves a face's box and landmarks as they were, so a face that
turned or rolled must be looked for by the detector again. On the moving-faces video's rolling head, the eye line of
faces followed by template was up to 10.4 degrees off that of a full scan of the same frame at 0.75, 9.1 at 0.85, 5.4
at 0.9 (as close as following by detection every frame: within 6); on make bench's webcam-like sample class (150
frames, 2 frames/s) 0.75-0.9 sent the same faces to the detector (30-31 looks), 0.95 twice as many."""
THUMBNAIL_SIZE = (16, 12)
"""The frame shrunk to this to notice a change away from the known faces (someone arriving) for microseconds. Each
thumbnail pixel averages 40x40 pixels of a 640x480 frame, so sensor noise, flicker and a few pixels of camera shake
barely move it (64x48 called for a full scan on 2 frames in 3 of a noisy, shaking webcam-like video; 16x12 on 1 in 5,
with the same recall), while a face arriving fills several of them."""
SCENE_CHANGE_LEVEL = 24
"""Gray levels a thumbnail pixel must move by, away from the known faces, to count as a change of the picture."""
REGION_SCAN_MAX_SHARE = 0.5
"""A change covering more of the frame than this (the box around it, grown by half a face) is scanned as a whole
frame: a scan costs about its area's share of a full scan's, so beyond half the saving is small."""


FRAMES_BY_METHOD = Counter(
    "classpulse_detector_frames_total",
    "Frames by how their faces were found: full_scan, tracked, or region_scan (tracked, and a change scanned)",
    ["method"],
)

FollowMethod = Literal["detection", "template"]
"""How a known face is found again between full scans: "detection", the detector run only around where the face's
motion puts it (fresh landmarks every frame: the head pose and the aligned crop follow the face as it turns);
"template", normalised cross-correlation with the face as it looked when last detected, around the same place (a
fraction of the cost, for a detector without landmarks: Haar's), the detector run there only when it no longer
matches."""


@dataclass
class _Followed:
    """A face of a source being followed: where it is, how it moved, and a number that tells it from the source's
    other faces. The number never leaves the detector and never outlives the face's presence: a face that leaves
    and comes back is a new track (nothing here could tell it is the same person, and nothing tries)."""

    box: Box
    track_id: int
    template: np.ndarray | None
    velocity: tuple[float, float] = (0.0, 0.0)
    """Pixels per millisecond of capture time, from its last two places."""


@dataclass
class _Track:
    faces: list[_Followed]
    thumbnail: np.ndarray
    """The latest frame, shrunk, with its faces' places marked so they are not compared."""
    sequence: int
    captured_at_ms: int
    """The latest frame's capture time: the motion model's clock."""
    scanned_at_ms: int
    deep_scanned_at_ms: int
    """When the source was last scanned down to the detector's smallest faces."""
    shape: tuple[int, ...]
    """The frames' size (rows, columns): the faces' places and sizes are in its pixels."""
    smallest_px: int | None = None
    """The smallest face side found in the source since then, or, where that deep scan found none, before it
    (None: none found, so full scans go down to the detector's smallest faces)."""
    next_id: int = 0
    region_scanned: bool = False
    """Whether the latest frame's change of the picture was scanned where it happened."""

    def new_ids(self, count: int) -> list[int]:
        self.next_id += count
        return list(range(self.next_id - count, self.next_id))


@dataclass
class TrackingStats:
    full_scans: int = 0
    deep_scans: int = 0
    """Full scans down to the detector's smallest faces (counted in full_scans too)."""
    tracked_frames: int = 0
    lost_faces: int = 0
    """Known faces the quick look missed: no longer matching their template ("template": then looked for by the
    detector around it), or not detected where their motion put them ("detection": then dropped)."""
    region_scans: int = 0
    """Tracked frames whose change away from the known faces was scanned where it happened (counted in tracked too)."""
    rescans: int = 0
    """Full scans bounded by the source's face sizes that found nothing and were done again (`FaceFinder.rescan`)."""


@dataclass
class TrackingDetector:
    detector: FaceFinder
    full_scan_interval_ms: int = 10_000
    """0 scans every frame; the service takes it from CLASSPULSE_FULL_SCAN_INTERVAL_MS (same default)."""
    deep_scan_interval_ms: int = 0
    """Capture time between full scans down to the detector's smallest faces; the full scans between look only for
    faces from SMALLEST_FACE_SHARE of the smallest face found in the source since (0: every full scan is deep; the
    service takes it from CLASSPULSE_DEEP_SCAN_INTERVAL_MS)."""
    max_sources: int = 10_000
    follow: FollowMethod = "template"
    stats: TrackingStats = field(default_factory=TrackingStats)
    _tracks: OrderedDict[tuple[str, str], _Track] = field(default_factory=OrderedDict)

    def detect(self, source: tuple[str, str], sequence: int, captured_at_ms: int, gray: np.ndarray) -> list[Box]:
        """Boxes for this frame of `source` (class id, source id), found again around the source's known faces when
        it can be, from a full scan otherwise."""
        track = self._tracks.get(source)
        followed = None if track is None else self._found_again(track, sequence, captured_at_ms, gray)
        if track is None or followed is None:
            track = self._full_scan(track, sequence, captured_at_ms, gray)
            self.stats.full_scans += 1
            FRAMES_BY_METHOD.labels("full_scan").inc()
        else:
            track.faces = followed
            self.stats.tracked_frames += 1
            FRAMES_BY_METHOD.labels("region_scan" if track.region_scanned else "tracked").inc()
        self._saw(track, [face.box for face in track.faces])
        track.sequence, track.captured_at_ms = sequence, captured_at_ms
        track.thumbnail = _thumbnail(gray, [face.box for face in track.faces])
        self._tracks[source] = track
        self._tracks.move_to_end(source)
        while len(self._tracks) > self.max_sources:
            self._tracks.popitem(last=False)
        return [face.box for face in track.faces]

    def track_ids(self, source: tuple[str, str]) -> list[int]:
        """The source-local numbers of the faces last returned for `source`, in the same order (for the tracking's
        own tests and bench: they are never sent on)."""
        track = self._tracks.get(source)
        return [] if track is None else [face.track_id for face in track.faces]

    def _full_scan(self, track: _Track | None, sequence: int, captured_at_ms: int, gray: np.ndarray) -> _Track:
        """A track of this frame's faces from a scan of the whole frame. A face the previous frame knew, where its
        motion puts it now, keeps its number and motion; a frame out of order, or of another size, starts the source
        afresh."""
        continued = (
            track is not None and sequence > track.sequence and captured_at_ms > track.captured_at_ms
            and track.shape == gray.shape
        )
        deep = (
            track is None or not continued or track.smallest_px is None
            or captured_at_ms - track.deep_scanned_at_ms >= self.deep_scan_interval_ms
        )
        smallest_px = None if deep or track is None else _bound(track)
        boxes = reading_order(self.detector.detect(gray, smallest_px=smallest_px))
        if not boxes and track is not None and track.smallest_px is not None and not deep:
            # A bounded scan runs other pyramid levels than the deep one that found the source's faces, and a hard face
            # (scoring near the threshold at one level only) was lost at every bounded scan until the next deep one: 4
            # of make demo MODE=webcams' 187 snapshots. So a bounded scan that finds nothing is done again at once, at
            # least at every level a deep scan sees faces of the source's sizes at (`FaceFinder.rescan`). It was a deep
            # scan: with BlazeFace, its finer levels (~130 of ~160 ms on make bench's 640x480 frames) looked for faces
            # under the bound, which a deep scan finds at most deep_scan_interval_ms later, as between any two.
            self.stats.rescans += 1
            boxes = reading_order(self.detector.rescan(gray, track.smallest_px))
        if track is None or not continued:
            track = _Track([], np.zeros(0), sequence, captured_at_ms, captured_at_ms, captured_at_ms, gray.shape)
        if deep:
            # A deep scan that finds no face keeps the sizes the source showed before (its faces left: a class's
            # cameras turned off, a room emptied), so that the scan that sees them back is bounded by them, as any
            # scan between deep ones is (and one that finds nothing is looked at again, above). It was deep: 160-290
            # ms of BlazeFace a 640x480 frame, against ~35 bounded.
            track.deep_scanned_at_ms = captured_at_ms
            track.smallest_px = None if boxes else track.smallest_px
            self.stats.deep_scans += 1
        elapsed = captured_at_ms - track.captured_at_ms
        predicted = [_predicted(face, elapsed, gray.shape) for face in track.faces]
        pairs = _pairs_by_overlap(boxes, predicted)
        faces = []
        for index, box in enumerate(boxes):
            known = pairs.get(index)
            if known is None:
                faces.append(_Followed(box, track.new_ids(1)[0], self._template_of(gray, box)))
            else:
                before = track.faces[known]
                faces.append(_Followed(box, before.track_id, self._template_of(gray, box), _velocity(before, box, elapsed)))
        track.faces, track.scanned_at_ms = faces, captured_at_ms
        track.region_scanned = False
        return track

    @staticmethod
    def _saw(track: _Track, boxes: list[Box]) -> None:
        """Lowers the source's smallest face to the smallest of `boxes`, faces found in it."""
        for box in boxes:
            side = max(box[2], box[3])
            track.smallest_px = side if track.smallest_px is None else min(track.smallest_px, side)

    def _found_again(self, track: _Track, sequence: int, captured_at_ms: int, gray: np.ndarray) -> list[_Followed] | None:
        """Where the track's faces are in this frame, or None when this frame needs a full scan."""
        continued = sequence > track.sequence and captured_at_ms >= track.captured_at_ms and track.shape == gray.shape
        deep_due = 0 < self.deep_scan_interval_ms <= captured_at_ms - track.deep_scanned_at_ms
        if not continued or deep_due or captured_at_ms - track.scanned_at_ms >= self.full_scan_interval_ms:
            return None
        elapsed = captured_at_ms - track.captured_at_ms
        predicted = [_predicted(face, elapsed, gray.shape) for face in track.faces]
        found: list[_Followed] = []
        for index, (face, guess) in enumerate(zip(track.faces, predicted, strict=True)):
            again, template = None, face.template
            if face.template is not None:  # the faces of a tracker that follows by template carry one
                again = _match(gray, guess, face.template, _least_match(face.box))
            if again is None:
                others = [*(f.box for f in found), *predicted[index + 1 :]]
                again = self._detected_near(gray, guess, others, _bound(track))
                template = None if again is None else self._template_of(gray, again)
                if face.template is not None or again is None:
                    self.stats.lost_faces += 1
            if again is not None:
                found.append(_Followed(again, face.track_id, template, _velocity(face, again, elapsed)))
        changed = _changed_region(gray, track.thumbnail, [face.box for face in found])
        region = None if changed is None else _scan_region(changed, [*track.faces, *found], gray.shape)
        if changed is not None and region is None:
            return None
        track.region_scanned = region is not None
        if region is not None:
            self.stats.region_scans += 1
            boxes = [face.box for face in found]
            arrived = [
                box for box in self.detector.detect(gray, region, smallest_px=_bound(track))
                if not any(_iou(box, b) > 0.3 for b in boxes)
            ]
            # A face with landmarks found in a region gets no template yet: the detector looks for it again in the
            # next frame, at its own size (a region's coarse levels see a face in a loose box, or a "face" across two
            # gallery tiles, which a template would follow until the next full scan: on make bench's webcam-like
            # sample class, precision 0.955 against 0.999 so). Haar, which often misses a face it found the frame
            # before, keeps the template.
            found += [
                _Followed(box, track_id, None if landmarks_of(box) is not None else self._template_of(gray, box))
                for box, track_id in zip(arrived, track.new_ids(len(arrived)), strict=True)
            ]
        by_box = {id(face.box): face for face in found}
        return [by_box[id(box)] for box in reading_order([face.box for face in found])]

    def _template_of(self, gray: np.ndarray, box: Box) -> np.ndarray | None:
        return _template(gray, box) if self.follow == "template" else None

    def _detected_near(self, gray: np.ndarray, box: Box, others: list[Box], smallest_px: int | None) -> Box | None:
        """The face found around `box` (where a known face should be; not one of the `others`), or None: first by the
        detector's quick look (none where it saw the face leave), then, where that cannot tell, by a scan at the one
        level that sees the face's own size, then, if none is found there, at every level for faces from
        `smallest_px` (a face that changed: on make bench's sample class a student's picture changing for another
        was lost for up to 4 frames without the wider look, recall 0.975 against 0.997 by detection every frame)."""
        x, y, w, h = box
        own_size, largest = int(max(w, h) / RESCAN_SIZE_RANGE), int(max(w, h) * RESCAN_SIZE_RANGE)
        # A face found by the quick look is kept where a scan would keep it: at its own size, or, as the wider look
        # below keeps a face changed for another, from the source's smallest faces.
        least = min(own_size, smallest_px or own_size)
        quick = self.detector.look_again(gray, box)
        if quick == []:
            return None
        if quick and least <= max(quick[0][2:]) <= largest and not any(_iou(quick[0], o) > 0.3 for o in others):
            return quick[0]
        grow_x, grow_y = int(w * RESCAN_MARGIN), int(h * RESCAN_MARGIN)
        region = clip((x - grow_x, y - grow_y, w + 2 * grow_x, h + 2 * grow_y), gray.shape)
        candidates = [
            found
            for found in self.detector.detect(gray, region, largest, own_size)
            if max(found[2:]) >= own_size and not any(_iou(found, o) > 0.3 for o in others)
        ] or [  # the wider look: only a face where this one was (another face nearby is a region scan's to find)
            found for found in self.detector.detect(gray, region, smallest_px=smallest_px)
            if _centre_distance(found, box) < max(w, h) / 2 and not any(_iou(found, o) > 0.3 for o in others)
        ]
        cx, cy = x + w / 2, y + h / 2
        return min(candidates, key=lambda b: (b[0] + b[2] / 2 - cx) ** 2 + (b[1] + b[3] / 2 - cy) ** 2, default=None)


MAX_STEP_SHARE = 1.0
"""The farthest the motion model moves a face between two frames, as a share of its side: a longer step is more
likely a wrong pairing than a face crossing the frame between two snapshots."""


def _bound(track: _Track) -> int | None:
    """The smallest face side scans of the source look for between deep scans (None: every size)."""
    return None if track.smallest_px is None else int(SMALLEST_FACE_SHARE * track.smallest_px)


def _predicted(face: _Followed, elapsed_ms: int, shape: tuple[int, ...]) -> Box:
    """Where the face's motion puts it after `elapsed_ms` (a constant velocity, the step bounded)."""
    x, y, w, h = face.box
    reach = MAX_STEP_SHARE * max(w, h)
    dx, dy = (max(-reach, min(reach, v * elapsed_ms)) for v in face.velocity)
    return moved(face.box, x + round(dx), y + round(dy), shape)


def _velocity(before: _Followed, now: Box, elapsed_ms: int) -> tuple[float, float]:
    """The face's motion from its last place to `now` (the previous motion when no time passed)."""
    if elapsed_ms <= 0:
        return before.velocity
    (x0, y0, w0, h0), (x1, y1, w1, h1) = before.box, now
    return ((x1 + w1 / 2) - (x0 + w0 / 2)) / elapsed_ms, ((y1 + h1 / 2) - (y0 + h0 / 2)) / elapsed_ms


def _pairs_by_overlap(boxes: list[Box], known: list[Box], least: float = 0.2) -> dict[int, int]:
    """Each box's known box, greedily by overlap (IoU at least `least`), each known box paired once."""
    scored = sorted(
        ((_iou(box, other), i, j) for i, box in enumerate(boxes) for j, other in enumerate(known)), reverse=True
    )
    pairs: dict[int, int] = {}
    for overlap, i, j in scored:
        if overlap < least:
            break
        if i not in pairs and j not in pairs.values():
            pairs[i] = j
    return pairs


def _thumbnail(gray: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """The shrunk frame as int16, with -1000 where faces are: any difference there is out of range, so ignored."""
    thumbnail = cv2.resize(gray, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
    sx, sy = THUMBNAIL_SIZE[0] / gray.shape[1], THUMBNAIL_SIZE[1] / gray.shape[0]
    for x, y, w, h in boxes:
        grow_x, grow_y = w * TRACK_WINDOW_MARGIN, h * TRACK_WINDOW_MARGIN
        thumbnail[
            max(0, int((y - grow_y) * sy)) : int((y + h + grow_y) * sy) + 1,
            max(0, int((x - grow_x) * sx)) : int((x + w + grow_x) * sx) + 1,
        ] = -1000
    return thumbnail


def _changed_region(gray: np.ndarray, thumbnail: np.ndarray, found: list[Box]) -> Box | None:
    """The box (frame pixels) around the thumbnail cells that changed since the last frame, away from its faces and
    from where they are found now (a face that moved changed both places), or None."""
    now = _thumbnail(gray, found)
    change = np.abs(now - thumbnail)
    rows, cols = np.nonzero((change > SCENE_CHANGE_LEVEL) & (change < 256))
    if rows.size == 0:
        return None
    cell_w, cell_h = gray.shape[1] / THUMBNAIL_SIZE[0], gray.shape[0] / THUMBNAIL_SIZE[1]
    x0, y0 = int(cols.min() * cell_w), int(rows.min() * cell_h)
    return x0, y0, int((cols.max() + 1) * cell_w) - x0, int((rows.max() + 1) * cell_h) - y0


def _scan_region(changed: Box, known: list[_Followed], shape: tuple[int, ...]) -> Box | None:
    """Where to scan for a change: its box grown by half the largest known face's side (so that a face at least half
    inside the changed cells is inside the region whole), or None when that is too much of the frame, or no face is
    known to size it by."""
    if not known:
        return None
    grow = max(max(face.box[2:]) for face in known) // 2
    x, y, w, h = changed
    region = clip((x - grow, y - grow, w + 2 * grow, h + 2 * grow), shape)
    if region[2] * region[3] > REGION_SCAN_MAX_SHARE * shape[0] * shape[1]:
        return None
    return region


def _template(gray: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    scale = TRACK_FACE_PX / max(w, h, 1)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray[y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)


def _least_match(box: Box) -> float:
    """The match a face must keep with its template: a stricter one for a face with landmarks, which a match moves
    unchanged (a turned head is looked for by the detector again, for landmarks of its own)."""
    return MIN_MATCH if landmarks_of(box) is None else MIN_MATCH_LANDMARKS


def _match(gray: np.ndarray, box: Box, template: np.ndarray, least: float) -> Box | None:
    """The box moved to where `template` matches best in a window around it, or None if nothing matches well."""
    x, y, w, h = box
    grow_x, grow_y = max(1, int(w * TRACK_WINDOW_MARGIN)), max(1, int(h * TRACK_WINDOW_MARGIN))
    x0, y0 = max(0, x - grow_x), max(0, y - grow_y)
    x1, y1 = min(gray.shape[1], x + w + grow_x), min(gray.shape[0], y + h + grow_y)
    scale = TRACK_FACE_PX / max(w, h, 1)
    window = cv2.resize(
        gray[y0:y1, x0:x1], (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
        interpolation=cv2.INTER_AREA,
    )
    if window.shape[0] < template.shape[0] or window.shape[1] < template.shape[1]:
        return None
    scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (best_x, best_y) = cv2.minMaxLoc(scores)
    if not best >= least:  # also rejects NaN, which a flat window yields
        return None
    # Move by whole window pixels from where the face was, so that a still face keeps its box exactly.
    moved_x, moved_y = best_x - round((x - x0) * scale), best_y - round((y - y0) * scale)
    return moved(box, x + round(moved_x / scale), y + round(moved_y / scale), gray.shape)


def _centre_distance(a: Box, b: Box) -> float:
    return float(np.hypot(a[0] + a[2] / 2 - b[0] - b[2] / 2, a[1] + a[3] / 2 - b[1] - b[3] / 2))


def _iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = width * height
    return inter / float(aw * ah + bw * bh - inter) if inter else 0.0
