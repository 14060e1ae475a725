"""Finding faces in a frame with OpenCV's Haar cascade (it ships inside opencv-python: nothing is downloaded) and
cutting them into the 48x48 grayscale crops the emotion model was trained on."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TypeVar

import cv2
import cv2.data
import numpy as np
from PIL import JpegImagePlugin, PngImagePlugin

from classpulse_core.schemas import CROP_SIDE, MAX_FRAME_SIDE

Box = tuple[int, int, int, int]
"""(x, y, width, height) in a frame's own pixels."""
BoxT = TypeVar("BoxT", bound=Box)


class Face(tuple[int, int, int, int]):
    """A box (x, y, width, height) that also carries where its detector saw the face's landmarks (right eye, left
    eye, nose tip, mouth, right ear, left ear: [6, 2] float32, relative to the box's corner) for the aligned crop
    (the first four) and the head pose (all six). It unpacks, compares
    and serialises as the plain box, so a tracker that moves the box (`moved`) keeps the landmarks with it and every
    consumer of boxes sees no difference. `landmarks` is None where the detector finds none (Haar)."""

    landmarks: np.ndarray | None

    def __new__(cls, box: Box, landmarks: np.ndarray | None = None) -> Face:
        face = super().__new__(cls, box)
        face.landmarks = landmarks
        return face


def landmarks_of(box: Box) -> np.ndarray | None:
    """The landmarks a box carries, in frame pixels, or None (a plain box, or a Haar one)."""
    relative = getattr(box, "landmarks", None)
    return None if relative is None else relative + np.array(box[:2], np.float32)


def moved(box: Box, x: int, y: int, shape: tuple[int, ...]) -> Face:
    """`box` placed at (x, y), clipped to the frame, with the landmarks it carries (if any)."""
    return Face(clip((x, y, box[2], box[3]), shape), getattr(box, "landmarks", None))


class UndecodableFrame(ValueError):
    pass


_HEADER_READERS = {b"\xff\xd8\xff": JpegImagePlugin.JpegImageFile, b"\x89PNG\r\n\x1a\n": PngImagePlugin.PngImageFile}
"""Pillow's parsers of the two formats ingest publishes, by signature. Opened directly rather than by Image.open,
whose decompression-bomb check would refuse a huge size without saying it: decode_gray caps the size itself."""


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the JPEG's start-of-frame or the PNG's IHDR declares it, read by Pillow without decoding.

    A 50 KB JPEG may declare 65535x65535 pixels: decoding it first would allocate gigabytes (the detector was
    OOM-killed over and over by one such frame, a crash loop no dead letter catches), so its size is read here."""
    for signature, reader in _HEADER_READERS.items():
        if data.startswith(signature):
            try:
                with reader(io.BytesIO(data)) as image:
                    return image.size
            except (SyntaxError, OSError, ValueError) as exc:  # what Pillow raises for a header it cannot parse
                raise UndecodableFrame(f"corrupt {reader.format}: {exc}") from None
    raise UndecodableFrame("frame is neither a JPEG nor a PNG")


def decode_gray(data: bytes) -> np.ndarray:
    """The image as grayscale; refused before decoding when its header declares a side over MAX_FRAME_SIDE."""
    if not data:  # OpenCV asserts (cv2.error) on an empty buffer rather than returning None
        raise UndecodableFrame("frame is empty")
    width, height = image_size(data)
    if not (0 < width <= MAX_FRAME_SIDE and 0 < height <= MAX_FRAME_SIDE):
        raise UndecodableFrame(f"image declares {width}x{height} pixels; the most a side may have is {MAX_FRAME_SIDE}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise UndecodableFrame("frame is not a decodable image")
    return image


class FaceDetector:
    def __init__(
        self,
        cascade_path: str | None = None,
        scale_factor: float = 1.15,
        min_neighbors: int = 3,
        min_face_px: int = 60,
        detect_max_side: int = 320,
        crop_margin: float = 0.1,
    ) -> None:
        path = cascade_path or cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load face cascade {path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_px = min_face_px
        self.detect_max_side = detect_max_side
        self.crop_margin = crop_margin

    def detect(
        self, gray: np.ndarray, region: Box | None = None, largest_px: int | None = None, smallest_px: int | None = None
    ) -> list[Box]:
        """Face boxes (x, y, w, h) in the frame's own pixel coordinates, from a scan of the whole frame, or only of
        `region` of it (at the scale and settings a whole-frame scan uses, so both find the same faces there), and
        only of faces up to `largest_px` and from `smallest_px` when given."""
        scale = min(1.0, self.detect_max_side / max(gray.shape))
        x0, y0, width, height = region or (0, 0, gray.shape[1], gray.shape[0])
        part = gray[y0 : y0 + height, x0 : x0 + width]
        small = part if scale == 1.0 else cv2.resize(part, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(16, int(max(self.min_face_px, smallest_px or 0) * scale))
        if min(small.shape) < min_side:
            return []
        max_side = max(min_side, int(largest_px * scale)) if largest_px else 0
        found = self._cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )
        boxes = ((x + x0, y + y0, w, h) for x, y, w, h in (_rescale(box, scale) for box in found))
        return reading_order([clip(box, gray.shape) for box in boxes])

    def rescan(self, gray: np.ndarray, smallest_px: int) -> list[Box]:
        """A frame where a scan from `smallest_px` found nothing, scanned again: every size (a whole-frame scan costs
        ~30 ms)."""
        return self.detect(gray)

    def look_again(self, gray: np.ndarray, box: Box) -> list[Box] | None:
        """No quick look: a Haar face is looked for again by a scan around it (the tracker's `_detected_near`)."""
        return None

    def crop(self, gray: np.ndarray, boxes: list[Box]) -> bytes:
        """The faces as concatenated 48x48 uint8 crops."""
        return b"".join(box_crop(gray, box, self.crop_margin).tobytes() for box in boxes)


ENLARGING = cv2.INTER_CUBIC
"""How a face smaller than the crop is enlarged to it (and, in an aligned crop, a larger one turned after its
area-averaged shrink). On 1,200 FER2013 PublicTest faces shrunk to a face's size in a frame and enlarged back to 48 px, the model's accuracy
with bilinear / bicubic interpolation: 20 px 0.386 / 0.424, 28 px 0.540 / 0.578, 40 px 0.607 / 0.649, 60 px 0.679 /
0.682 (0.678 unshrunk); Lanczos was within a point of bicubic; unsharp masking after it helped blurred small faces
but cost up to 3 points at 60 px, so only a crop with little fine detail, a blurred face's, is sharpened
(`BlazeFaceDetector.crop`)."""


def box_crop(gray: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """The 48x48 crop of `box` grown by `margin` of its side on each side (within the frame)."""
    height, width = gray.shape
    x, y, w, h = box
    grow_x, grow_y = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - grow_x), max(0, y - grow_y)
    x1, y1 = min(width, x + w + grow_x), min(height, y + h + grow_y)
    part = gray[y0:y1, x0:x1]
    # Area averaging shrinks without aliasing; it enlarges no better than bilinear interpolation.
    enlarging = max(part.shape) < CROP_SIDE
    return cv2.resize(part, (CROP_SIDE, CROP_SIDE), interpolation=ENLARGING if enlarging else cv2.INTER_AREA)


def reading_order(boxes: list[BoxT]) -> list[BoxT]:
    """Top to bottom, left to right: keeps outputs stable for the same frame."""
    return sorted(boxes, key=lambda b: (b[1] // max(1, b[3]), b[0]))


def _rescale(box: Sequence[int], scale: float) -> Box:
    x, y, width, height = (int(round(v / scale)) for v in box)
    return x, y, width, height


def clip(box: Box, shape: tuple[int, ...]) -> Box:
    height, width = shape[:2]
    x, y, w, h = box
    x, y = min(max(0, x), width - 1), min(max(0, y), height - 1)
    return x, y, min(w, width - x), min(h, height - y)

