"""Head pose from BlazeFace's six landmarks, on generated geometry: the mean head turned, tilted and rolled by known
angles, seen through a webcam-like perspective camera (60 cm away), at several sizes and places in the frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classpulse_detector.headpose import FACE_MODEL, FACING_MAX_PITCH_DEG, FACING_MAX_YAW_DEG, facing, head_pose

pytestmark = pytest.mark.unit


def _rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The head turned by yaw (to the image's right), then tilted by pitch (up), rolled about its own forward axis."""
    yaw, pitch, roll = (math.radians(angle) for angle in (yaw_deg, pitch_deg, roll_deg))
    turn = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    tilt = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    spin = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    return turn @ tilt @ spin


def _landmarks(yaw=0.0, pitch=0.0, roll=0.0, distance_mm=600.0, focal_px=600.0, centre=(320.0, 240.0), noise_px=0.0, seed=0):
    """The six landmarks as a pinhole camera `distance_mm` away sees the model head in that pose."""
    head = FACE_MODEL - FACE_MODEL.mean(0)
    posed = head @ _rotation(yaw, pitch, roll).T
    depth = distance_mm - posed[:, 2]  # z points towards the camera
    points = focal_px * posed[:, :2] / depth[:, None] + np.array(centre)
    return points + np.random.default_rng(seed).normal(0, noise_px, points.shape)


def test_a_frontal_face_has_no_yaw_or_pitch_and_faces_the_screen():
    pose = head_pose(_landmarks())
    assert abs(pose.yaw_deg) < 1 and abs(pose.pitch_deg) < 1
    assert pose.facing


@pytest.mark.parametrize("yaw", [-60, -40, -20, -10, 10, 20, 40, 60])
def test_a_turned_face_reads_its_yaw_and_its_side(yaw):
    pose = head_pose(_landmarks(yaw=yaw))
    assert pose.yaw_deg == pytest.approx(yaw, abs=4)
    assert abs(pose.pitch_deg) < 4
    assert pose.facing is (abs(yaw) <= FACING_MAX_YAW_DEG)


@pytest.mark.parametrize("pitch", [-45, -30, -15, 15, 30, 45])
def test_a_face_tilted_up_or_down_reads_its_pitch(pitch):
    pose = head_pose(_landmarks(pitch=pitch))
    assert pose.pitch_deg == pytest.approx(pitch, abs=4)
    assert abs(pose.yaw_deg) < 4
    assert pose.facing is (abs(pitch) <= FACING_MAX_PITCH_DEG)


@pytest.mark.parametrize("roll", [-30, -15, 15, 30])
def test_a_rolled_head_looking_at_the_screen_still_faces_it(roll):
    pose = head_pose(_landmarks(yaw=10, pitch=-10, roll=roll))
    assert pose.yaw_deg == pytest.approx(10, abs=4) and pose.pitch_deg == pytest.approx(-10, abs=4)
    assert pose.facing


def test_size_and_place_in_the_frame_do_not_change_the_pose():
    near = head_pose(_landmarks(yaw=25, pitch=12, distance_mm=450, centre=(100, 90)))
    far = head_pose(_landmarks(yaw=25, pitch=12, distance_mm=3000, focal_px=900, centre=(1500, 800)))
    assert near.yaw_deg == pytest.approx(far.yaw_deg, abs=3) and near.pitch_deg == pytest.approx(far.pitch_deg, abs=3)


def test_landmarks_a_few_pixels_off_move_the_pose_a_few_degrees():
    # A 150-px face (a webcam's) with each landmark up to ~2 px off, as BlazeFace places them on real faces.
    errors = [
        abs(head_pose(_landmarks(yaw=15, pitch=-10, noise_px=1.0, seed=seed)).yaw_deg - 15) for seed in range(50)
    ]
    assert np.median(errors) < 4


def test_a_combined_turn_outside_the_cone_is_not_facing_inside_it_is():
    assert facing(_landmarks(yaw=25, pitch=20)) is True
    assert facing(_landmarks(yaw=40, pitch=20)) is False
    assert facing(_landmarks(yaw=10, pitch=-35)) is False


def test_no_landmarks_or_degenerate_ones_give_no_pose_never_a_crash():
    assert facing(None) is None
    assert head_pose(np.zeros((4, 2))) is None  # a detector giving only four points: no pose
    assert head_pose(np.zeros((6, 2))) is None
    assert head_pose(np.tile([[3.0, 4.0]], (6, 1))) is None
    line = np.stack([np.arange(6.0), np.arange(6.0) * 2], axis=1)  # all on a line
    assert head_pose(line) is None
    assert head_pose(np.full((6, 2), np.nan)) is None
