"""Finding faces in a frame with OpenCV's Haar cascade (it ships inside opencv-python: nothing is downloaded) and
cutting them into the 48x48 grayscale crops the emotion model was trained on."""

from __future__ import annotations

import cv2
import numpy as np

from classpulse_common.schemas import CROP_SIDE


Box = tuple[int, int, int, int]
"""(x, y, width, height) in a frame's own pixels."""


class UndecodableFrame(ValueError):
    pass


def decode_gray(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
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

    def detect(self, gray: np.ndarray, region: Box | None = None, largest_px: int | None = None) -> list[Box]:
        """Face boxes (x, y, w, h) in the frame's own pixel coordinates, from a scan of the whole frame, or only of
        `region` of it (at the scale and settings a whole-frame scan uses, so both find the same faces there), and
        only of faces up to `largest_px` when given."""
        scale = min(1.0, self.detect_max_side / max(gray.shape))
        x0, y0, width, height = region or (0, 0, gray.shape[1], gray.shape[0])
        part = gray[y0 : y0 + height, x0 : x0 + width]
        small = part if scale == 1.0 else cv2.resize(part, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(16, int(self.min_face_px * scale))
        if min(small.shape) < min_side:
            return []
        max_side = max(min_side, int(largest_px * scale)) if largest_px else 0
        found = self._cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )
        boxes = ((x + x0, y + y0, w, h) for x, y, w, h in (_rescale(box, scale) for box in found))
        return reading_order([clip(box, gray.shape) for box in boxes])

    def crop(self, gray: np.ndarray, boxes: list[Box]) -> bytes:
        """The faces as concatenated 48x48 uint8 crops."""
        height, width = gray.shape
        crops = []
        for x, y, w, h in boxes:
            grow_x, grow_y = int(w * self.crop_margin), int(h * self.crop_margin)
            x0, y0 = max(0, x - grow_x), max(0, y - grow_y)
            x1, y1 = min(width, x + w + grow_x), min(height, y + h + grow_y)
            crops.append(cv2.resize(gray[y0:y1, x0:x1], (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA))
        return b"".join(crop.tobytes() for crop in crops)


def reading_order(boxes: list[Box]) -> list[Box]:
    """Top to bottom, left to right: keeps outputs stable for the same frame."""
    return sorted(boxes, key=lambda b: (b[1] // max(1, b[3]), b[0]))


def _rescale(box, scale: float) -> Box:
    return tuple(int(round(v / scale)) for v in box)


def clip(box: Box, shape: tuple[int, ...]) -> Box:
    height, width = shape[:2]
    x, y, w, h = box
    x, y = min(max(0, x), width - 1), min(max(0, y), height - 1)
    return x, y, min(w, width - x), min(h, height - y)

