"""Geometry of the detector's crops and tiles, with no network involved: an aligned crop puts a face's eyes, nose and
mouth where the framing says whatever the face's turn, size and place; tiles cover a frame with the overlap they
promise; and detections of one face from neighbouring tiles or pyramid levels merge into one."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from classpulse_detector.blazeface import (
    FER_FRAMING,
    FULL_RANGE,
    SHORT_RANGE,
    TILE_OVERLAP,
    BlazeFaceDetector,
    Detections,
    _without_nested,
    aligned_crop,
    holds_surer_face,
    tiles,
    weighted_nms,
    without_faces_of_faces,
)
from classpulse_detector.faces import box_crop

pytestmark = pytest.mark.unit

MARK_RADIUS = 3
"""Frame pixels: a landmark is drawn as a bright disc on a dark frame, found again in the crop by its centroid."""


def _marked_frame(points: np.ndarray, shape=(720, 1280)) -> np.ndarray:
    gray = np.zeros(shape, np.uint8)
    for x, y in points:
        cv2.circle(gray, (round(x), round(y)), MARK_RADIUS, 255, -1, lineType=cv2.LINE_AA)
    return gray


def _centroids(crop: np.ndarray, near: np.ndarray) -> np.ndarray:
    """The brightness centroid around each expected point of the crop."""
    found = []
    ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
    for x, y in near:
        window = (np.abs(xs - x) <= 4) & (np.abs(ys - y) <= 4)
        weight = crop.astype(np.float64) * window
        found.append((float((weight * xs).sum() / weight.sum()), float((weight * ys).sum() / weight.sum())))
    return np.array(found)


def _face_points(centre, eye_distance: float, turn_deg: float) -> np.ndarray:
    """Eyes, nose tip and mouth of an upright face placed like FER_FRAMING's, scaled, turned and moved."""
    framing = np.array(FER_FRAMING.points)
    scale = eye_distance / (framing[1, 0] - framing[0, 0])
    angle = math.radians(turn_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (framing - framing.mean(0)) * scale @ rotation.T + np.array(centre)


@pytest.mark.parametrize("turn_deg", [-35, -10, 0, 20, 40])
@pytest.mark.parametrize("eye_distance", [12, 40, 150])
def test_a_turned_face_comes_out_upright_with_its_points_on_the_framing(turn_deg, eye_distance):
    points = _face_points((500, 300), eye_distance, turn_deg)
    crop = aligned_crop(_marked_frame(points), points, FER_FRAMING)
    target = np.array(FER_FRAMING.points)
    found = _centroids(crop, target)
    # Eyes level, and every point within about a crop pixel of where FER2013 puts it.
    assert abs(found[0, 1] - found[1, 1]) < 1.0
    assert np.abs(found - target).max() < 1.5


def test_a_zoomed_framing_moves_the_points_about_the_centre():
    points = _face_points((400, 300), 60, 15)
    framing = FER_FRAMING.zoomed(0.9, 2.0)
    found = _centroids(aligned_crop(_marked_frame(points), points, framing), np.array(framing.points))
    assert np.abs(found - np.array(framing.points)).max() < 1.5
    eye_gap = found[1, 0] - found[0, 0]
    assert eye_gap == pytest.approx((FER_FRAMING.points[1][0] - FER_FRAMING.points[0][0]) * 0.9, abs=1.0)


@pytest.mark.parametrize("size", [(1280, 720), (192, 192), (193, 100), (640, 360), (2000, 50)])
@pytest.mark.parametrize("side", [64, 192])
def test_tiles_cover_the_frame_with_the_promised_overlap(size, side):
    width, height = size
    corners = tiles(width, height, side, TILE_OVERLAP)
    covered = np.zeros((height, width), bool)
    for x, y in corners:
        assert 0 <= x and 0 <= y and x + min(side, width) <= width and y + min(side, height) <= height
        covered[y : y + side, x : x + side] = True
    assert covered.all()
    for axis, length in ((0, width), (1, height)):
        starts = sorted({corner[axis] for corner in corners})
        if length <= side:
            assert starts == [0]
        else:
            assert starts[-1] + side == length  # the last tile ends at the edge
            assert all(b - a <= side * (1 - TILE_OVERLAP) + 1 for a, b in itertools.pairwise(starts))


def test_a_fixed_size_network_runs_on_tiles_and_a_resizable_one_on_the_whole_region():
    full, short = BlazeFaceDetector("full", min_face_px=24), BlazeFaceDetector("short", min_face_px=24)
    region = (10, 20, 1280, 720)
    for scale in full.scales(*region[2:]):
        windows = full.windows(region, scale)
        side = math.floor(FULL_RANGE.side / scale)
        assert all(w <= side and h <= side for _, _, w, h in windows)
        assert len(windows) == len(tiles(1280, 720, side, TILE_OVERLAP))
        assert min(x for x, *_ in windows) == 10 and max(x + w for x, _, w, _ in windows) == 1290
    assert all(short.windows(region, scale) == [region] for scale in short.scales(*region[2:]))
    assert SHORT_RANGE.resizable and not FULL_RANGE.resizable


def _detections(boxes, scores) -> Detections:
    boxes = np.array(boxes, np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return Detections(boxes, np.repeat(centres[:, None, :], 6, axis=1), np.array(scores, np.float32))


def test_one_face_seen_by_neighbouring_tiles_and_levels_merges_into_one():
    # The face whole in one tile, slightly off in the next, and its upper half cut by a tile's edge (a finer level
    # or a tile seeing part of it); a second face far away stays.
    found = _detections(
        [[100, 100, 160, 160], [102, 98, 163, 161], [100, 100, 160, 128], [400, 100, 460, 160]],
        [0.9, 0.8, 0.7, 0.85],
    )
    merged = _without_nested(weighted_nms(found))
    assert len(merged.scores) == 2
    first = merged.boxes[np.argmin(merged.boxes[:, 0])]
    assert first == pytest.approx([100.7, 99.3, 161.0, 151.0], abs=1.0)  # score-weighted mean of the three
    assert merged.scores.max() == pytest.approx(0.9)


def test_tiled_detection_finds_nothing_on_blank_frames_of_any_size():
    # 640x360: three tiled levels, the coarsest with tiles cut to the frame's height (42 tiles; 1280x720 adds a level and
    # takes 186 tiles of the same blank input, four times the cost); 400x15 and 1x1: too small for any network run;
    # 4000x2400: its finest level capped at MAX_LEVEL_PIXELS (514 tiles).
    full = BlazeFaceDetector("full", min_face_px=24)
    for shape in [(360, 640), (15, 400), (1, 1), (2400, 4000)]:
        assert full.detect(np.zeros(shape, np.uint8)) == []


def test_a_part_of_a_face_overlapping_its_edge_is_dropped_and_a_neighbour_is_kept():
    # A 100-px face; a 40-px "face" at its corner, a fifth of its area inside (an ear, hair, a second person's cheek
    # at the edge of the photo); a 40-px face beside it, touching by a sliver (1/40 of its area), stays.
    found = _detections(
        [[100, 100, 200, 200], [180, 180, 220, 220], [199, 100, 239, 140]],
        [0.9, 0.7, 0.7],
    )
    kept = _without_nested(weighted_nms(found))
    assert sorted(kept.boxes[:, 0].tolist()) == pytest.approx([100, 199])


def test_a_small_face_that_scores_higher_than_a_large_false_one_around_it_stays():
    found = _detections([[100, 100, 400, 400], [200, 200, 240, 240]], [0.7, 0.9])
    assert len(_without_nested(weighted_nms(found)).scores) == 2


def _sharpest_step(crop: np.ndarray) -> int:
    return int(np.abs(np.diff(crop.astype(np.int32), axis=1)).max())


@pytest.mark.parametrize("eye_distance", [6, 9])
def test_a_small_face_is_enlarged_bicubically_keeping_its_edges(eye_distance):
    # A 20-30 px face (the back of a room) is enlarged 2-3 times into the crop: bilinear interpolation spreads a
    # sharp edge evenly over the enlarged pixels (at most 255 / scale a pixel); bicubic keeps it steeper, which kept
    # 4 points of the model's accuracy on such faces (classpulse_detector.faces.ENLARGING).
    points = _face_points((300.5, 200.5), eye_distance, 0)
    gray = np.zeros((400, 600), np.uint8)
    gray[:, 301:] = 255  # an edge through the face
    scale = (FER_FRAMING.points[1][0] - FER_FRAMING.points[0][0]) / eye_distance
    assert _sharpest_step(aligned_crop(gray, points, FER_FRAMING)) > 1.05 * 255 / scale
    box = (290, 190, round(48 / scale), round(48 / scale))
    assert _sharpest_step(box_crop(gray, box, 0.0)) > 1.05 * 255 / scale


def test_a_large_candidate_holding_surer_small_faces_is_found_out():
    # A coarse level's 400-px "face" over a backdrop with two 40-px faces in it that score higher; a 200-px face
    # holding a less sure small "face" (an eye) stays a face; a small face just outside a large one stays too.
    found = _detections(
        [[0, 0, 400, 400], [50, 50, 90, 90], [300, 200, 340, 240], [500, 0, 700, 200], [560, 40, 600, 80], [705, 0, 745, 40]],
        [0.65, 0.9, 0.8, 0.9, 0.7, 0.95],
    )
    assert [holds_surer_face(found, index) for index in range(6)] == [True, False, False, False, False, False]
    # One surer small face is enough, a larger surer one (over half the side) is not a part of the candidate.
    one = _detections([[0, 0, 400, 400], [150, 150, 190, 190]], [0.65, 0.9])
    assert holds_surer_face(one, 0)
    large = _detections([[0, 0, 400, 400], [100, 100, 350, 350]], [0.65, 0.9])
    assert not holds_surer_face(large, 0)


def test_a_face_holding_a_surer_part_that_is_no_face_stays_a_face():
    # A gallery face (0.55) holding a surer "part" at its corner (0.65: hair, a tile's corner) that the verifier or the
    # second look refuses is a face; a coarse level's "face" (0.65) holding two small faces that are faces is not.
    found = _detections(
        [[0, 0, 100, 100], [70, 5, 92, 27], [200, 0, 600, 400], [250, 50, 290, 90], [500, 200, 540, 240]],
        [0.55, 0.65, 0.65, 0.9, 0.8],
    )
    judged = []

    def alone(index: int) -> bool:
        judged.append(index)
        return index != 1  # the part is refused when judged alone; every other candidate passes alone

    assert without_faces_of_faces(found, alone).tolist() == [True, False, False, True, True]
    assert 2 not in judged  # one holding a face is dropped without its second look
