"""Detect, then track: a full cascade scan of a source's frame at most every `full_scan_interval_ms` of capture time,
and in between only a look around each face of the source's last full scan, by template matching.

A 640x480 full scan costs about 20 ms of CPU. Finding six known faces again costs well under 1 ms: each face of the
last scan is kept as a small template (TRACK_FACE_PX wide), and the frame is searched only in a window around where
the face was, shrunk to the template's scale, by normalised cross-correlation. Video analytics systems cut detector
cost this way because faces in a class move little from one frame to the next. A face that no longer matches its
template (a new expression, a turn, a student leaving) is looked for by the cascade in a region around it only, and
the track is re-anchored on what that finds. A change of the picture away from the known faces (a thumbnail
comparison: someone arriving, coming back, a door opening) is scanned by the cascade where it happened, plus a face's
side around it, not in the whole frame; a change over more than REGION_SCAN_MAX_SHARE of the frame (the light, the
camera turned) calls for a full scan, and so does a source's frames arriving out of order (a replay or a consumer-group
rebalance), and a source not seen before. What it costs: a face that appears between two full scans without changing
the picture (too small a change for the thumbnail) is first counted at the next full scan. The state is a bounded LRU
per source: it never needs to survive a restart, because the first frame after one is simply a full scan.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from prometheus_client import Counter

from classpulse_detector.faces import Box, clip, moved, reading_order


class FaceFinder(Protocol):
    """A face detector the tracker drives: Haar's `FaceDetector` or `BlazeFaceDetector`."""

    def detect(self, gray: np.ndarray, region: Box | None = None, largest_px: int | None = None) -> list[Box]: ...

    def crop(self, gray: np.ndarray, boxes: list[Box]) -> bytes: ...

TRACK_FACE_PX = 32
"""Side a known face is shrunk to for matching: enough for a face's layout, small enough to cost microseconds."""
TRACK_WINDOW_MARGIN = 0.25
"""How far around a known face to look, as a share of its side (faces in a class move little per frame)."""
RESCAN_MARGIN = 0.5
"""How far around a face that no longer matches its template the cascade looks for it, as a share of its side."""
MIN_MATCH = 0.75
"""Normalised cross-correlation a face must keep with its template to count as found again."""
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


@dataclass
class _Track:
    boxes: list[Box]
    templates: list[np.ndarray]
    thumbnail: np.ndarray
    """The frame at the last full scan, shrunk, with the known faces' places marked so they are not compared."""
    sequence: int
    scanned_at_ms: int
    region_scanned: bool = False
    """Whether the latest frame's change of the picture was scanned where it happened."""


@dataclass
class TrackingStats:
    full_scans: int = 0
    tracked_frames: int = 0
    lost_faces: int = 0
    region_scans: int = 0
    """Tracked frames whose change away from the known faces was scanned where it happened (counted in tracked too)."""


@dataclass
class TrackingDetector:
    detector: FaceFinder
    full_scan_interval_ms: int = 10_000
    """0 scans every frame; the service takes it from CLASSPULSE_FULL_SCAN_INTERVAL_MS (same default)."""
    max_sources: int = 10_000
    stats: TrackingStats = field(default_factory=TrackingStats)
    _tracks: OrderedDict[tuple[str, str], _Track] = field(default_factory=OrderedDict)

    def detect(self, source: tuple[str, str], sequence: int, captured_at_ms: int, gray: np.ndarray) -> list[Box]:
        """Boxes for this frame of `source` (class id, source id), found again around the source's known faces when
        it can be, from a full scan otherwise."""
        track = self._tracks.get(source)
        boxes = None if track is None else self._found_again(track, sequence, captured_at_ms, gray)
        if boxes is None:
            boxes = self.detector.detect(gray)
            templates = [_template(gray, box) for box in boxes]
            track = _Track(boxes, templates, _thumbnail(gray, boxes), sequence, captured_at_ms)
            self.stats.full_scans += 1
            FRAMES_BY_METHOD.labels("full_scan").inc()
        else:
            track.sequence = sequence
            self.stats.tracked_frames += 1
            FRAMES_BY_METHOD.labels("region_scan" if track.region_scanned else "tracked").inc()
        self._tracks[source] = track
        self._tracks.move_to_end(source)
        while len(self._tracks) > self.max_sources:
            self._tracks.popitem(last=False)
        return boxes

    def _found_again(self, track: _Track, sequence: int, captured_at_ms: int, gray: np.ndarray) -> list[Box] | None:
        """Where the track's faces are in this frame, or None when this frame needs a full scan."""
        in_order = sequence > track.sequence and captured_at_ms >= track.scanned_at_ms
        if not in_order or captured_at_ms - track.scanned_at_ms >= self.full_scan_interval_ms:
            return None
        changed = _changed_region(gray, track.thumbnail)
        region = None if changed is None else _scan_region(changed, track.boxes, gray.shape)
        if changed is not None and region is None:
            return None
        found, rescanned = [], False
        for index, (box, template) in enumerate(zip(track.boxes, track.templates, strict=True)):
            again = _match(gray, box, template)
            if again is None:
                # The face changed (a new expression, turned, left): scan only around it, not the whole frame.
                self.stats.lost_faces += 1
                rescanned = True
                again = self._rescan_near(gray, box, [*found, *track.boxes[index + 1 :]])
            if again is not None:
                found.append(again)
        track.region_scanned = region is not None
        if region is not None:
            self.stats.region_scans += 1
            found += [box for box in self.detector.detect(gray, region) if not any(_iou(box, f) > 0.3 for f in found)]
        if rescanned or region is not None:
            # Re-anchor on this frame: new templates for the faces as they look now, and a thumbnail of the frame as
            # it is now, without the mask of a face that left (so that someone coming back there counts as a change).
            track.boxes = found
            track.templates = [_template(gray, box) for box in found]
            track.thumbnail = _thumbnail(gray, found)
        return reading_order(found)

    def _rescan_near(self, gray: np.ndarray, box: Box, others: list[Box]) -> Box | None:
        """The face a cascade scan finds around where `box` was (not one of the `others`), or None if none."""
        x, y, w, h = box
        grow_x, grow_y = int(w * RESCAN_MARGIN), int(h * RESCAN_MARGIN)
        region = clip((x - grow_x, y - grow_y, w + 2 * grow_x, h + 2 * grow_y), gray.shape)
        candidates = [
            found
            for found in self.detector.detect(gray, region, largest_px=int(max(w, h) * 1.5))
            if not any(_iou(found, o) > 0.3 for o in others)
        ]
        cx, cy = x + w / 2, y + h / 2
        return min(candidates, key=lambda b: (b[0] + b[2] / 2 - cx) ** 2 + (b[1] + b[3] / 2 - cy) ** 2, default=None)


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


def _changed_region(gray: np.ndarray, thumbnail: np.ndarray) -> Box | None:
    """The box (frame pixels) around the thumbnail cells that changed away from the known faces, or None."""
    now = cv2.resize(gray, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
    change = np.abs(now - thumbnail)
    rows, cols = np.nonzero((change > SCENE_CHANGE_LEVEL) & (change < 256))
    if rows.size == 0:
        return None
    cell_w, cell_h = gray.shape[1] / THUMBNAIL_SIZE[0], gray.shape[0] / THUMBNAIL_SIZE[1]
    x0, y0 = int(cols.min() * cell_w), int(rows.min() * cell_h)
    return x0, y0, int((cols.max() + 1) * cell_w) - x0, int((rows.max() + 1) * cell_h) - y0


def _scan_region(changed: Box, known: list[Box], shape: tuple[int, ...]) -> Box | None:
    """Where to scan for a change: its box grown by half the largest known face's side (so that a face at least half
    inside the changed cells is inside the region whole), or None when that is too much of the frame, or no face is
    known to size it by."""
    if not known:
        return None
    grow = max(max(w, h) for _, _, w, h in known) // 2
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


def _match(gray: np.ndarray, box: Box, template: np.ndarray) -> Box | None:
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
    if not best >= MIN_MATCH:  # also rejects NaN, which a flat window yields
        return None
    # Move by whole window pixels from where the face was, so that a still face keeps its box exactly.
    moved_x, moved_y = best_x - round((x - x0) * scale), best_y - round((y - y0) * scale)
    return moved(box, x + round(moved_x / scale), y + round(moved_y / scale), gray.shape)


def _iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = width * height
    return inter / float(aw * ah + bw * bh - inter) if inter else 0.0
