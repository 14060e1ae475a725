"""Whether a face is turned towards its camera: head pose (yaw, pitch) from BlazeFace's six landmarks.

This is a readily apparent movement (where a head points), not an emotion and not a measure of attention: a student
reading notes, or looking at a second screen, is "not facing" as much as one looking away. The class's facing share
is what the API shows (`facing / faces with pose`): faces without landmarks (Haar) have no pose and are left out of
both counts, never counted as facing or not.

The pose is fitted, not guessed from one ratio: the six landmarks (eyes, nose tip, mouth, ears) are matched by least
squares to the same six points of a mean adult head (FACE_MODEL) seen through a scaled orthographic camera (a face
is far from the camera compared with its depth). The fit gives the first two rows of the head's rotation; their
cross product the third, and with them the direction the face points. Roll (a tilted head) does not change that
direction, so a tilted head looking at the screen is facing. Six points, twelve equations for eight unknowns: a
landmark a little off moves the fit little, where a single nose-to-eyes ratio would swing with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FACING_MAX_YAW_DEG = 30.0
"""A face turned further left or right than this is not facing the screen: about where a webcam above a laptop
screen stops seeing the far eye's corner, and where BlazeFace's landmarks of the far side are still estimated."""
FACING_MAX_PITCH_DEG = 25.0
"""A face tilted further up or down than this is not facing: beyond it a student looks at a desk or over the screen
(a webcam on a laptop sees most students from slightly below: its own pitch is within this)."""

FACE_MODEL = np.array(
    [
        (-32.0, 0.0, 0.0),  # right eye (the person's: image left on a frontal face)
        (32.0, 0.0, 0.0),  # left eye
        (0.0, 34.0, 22.0),  # nose tip
        (0.0, 66.0, 8.0),  # mouth centre
        (-72.0, 14.0, -85.0),  # right ear (tragion)
        (72.0, 14.0, -85.0),  # left ear
    ]
)
"""A mean adult head in millimetres, x to the image's right, y down, z towards the camera, eyes at the origin.
Eye spacing 64 mm; nose tip 0.53 and mouth 1.04 eye spacings below the eye line, as BlazeFace places them on
FER2013's (mostly frontal) faces (classpulse_detector.blazeface.FER_FRAMING); nose and mouth depths and the ears'
place (tragion: 144 mm apart, 85 mm behind the eyes) from adult anthropometric means."""

MIN_ROW_RATIO = 0.5
MAX_ROW_COSINE = 0.5
"""How far the fitted projection may be from a scaled rotation (row lengths' ratio, cosine between rows) and still be
read as a head's pose: a 60-degree turn with landmarks 2 px off on a 100-px face stays well inside both."""


@dataclass(frozen=True)
class HeadPose:
    yaw_deg: float
    """Positive: the face turned towards the image's right (the person's left)."""
    pitch_deg: float
    """Positive: the face tilted up."""

    @property
    def facing(self) -> bool:
        return abs(self.yaw_deg) <= FACING_MAX_YAW_DEG and abs(self.pitch_deg) <= FACING_MAX_PITCH_DEG


def head_pose(landmarks: np.ndarray) -> HeadPose | None:
    """The pose of a face from its six landmarks ([6, 2], image pixels, BlazeFace's order), or None when they do not
    describe a face (fewer than six, or degenerate: all on a line)."""
    if landmarks is None or len(landmarks) < len(FACE_MODEL):
        return None
    points = np.asarray(landmarks[: len(FACE_MODEL)], np.float64)
    model = FACE_MODEL - FACE_MODEL.mean(0)
    image = points - points.mean(0)
    # image ~= model @ M.T, M the 2x3 scaled rotation's first two rows.
    solution, _, rank, _ = np.linalg.lstsq(model, image, rcond=None)
    if rank < 3:
        return None
    rows = solution.T
    norms = np.linalg.norm(rows, axis=1)
    if not np.all(norms > 1e-9) or not np.all(np.isfinite(rows)):
        return None
    first, second = rows / norms[:, None]
    # A scaled rotation has rows of one length at right angles; a fit far from that is not a head (points on a line,
    # landmarks of two faces mixed), and is no pose rather than a wrong one.
    if not (MIN_ROW_RATIO <= norms[0] / norms[1] <= 1 / MIN_ROW_RATIO and abs(float(first @ second)) <= MAX_ROW_COSINE):
        return None
    # The nearest pair of orthonormal rows (the fit's rows are only nearly orthogonal): symmetric correction.
    error = float(first @ second) / 2
    first, second = first - error * second, second - error * first
    first, second = first / np.linalg.norm(first), second / np.linalg.norm(second)
    third = np.cross(first, second)
    # Where the face's own forward axis (0, 0, 1) points in the camera's frame: the rotation's third column.
    forward_x, forward_y, forward_z = first[2], second[2], third[2]
    yaw = math.degrees(math.atan2(forward_x, forward_z))
    pitch = math.degrees(math.atan2(-forward_y, math.hypot(forward_x, forward_z)))
    return HeadPose(yaw, pitch)


def facing(landmarks: np.ndarray | None) -> bool | None:
    """Whether a face with these landmarks faces its camera within the cone; None without a pose (no landmarks)."""
    pose = None if landmarks is None else head_pose(landmarks)
    return None if pose is None else pose.facing
