"""Generated frames for measuring face finding, made at run time from FER2013 faces (nothing is stored): a webcam's
single face, video-call galleries, room-like scenes, and the same under noise, blur, hard JPEG and lighting changes.

Every frame is drawn gray (FER2013 is gray, and the detector works on gray frames), then JPEG-encoded and decoded as
ingest and the detector would. Each face is a FER2013 face scaled up inside a halo made from its own border
(`classpulse_demo.gallery.paste_haloed_face`): FER2013's tight crops cut through the cheeks, and a flat background
right at that edge is not what a face in a photo looks like. A face's true box is the scaled FER2013 image; faces in
webcams and rooms are also turned by up to MAX_TILT_DEG, the way heads tilt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from classpulse_core.schemas import CROP_SIDE, CameraKind
from classpulse_demo.gallery import GalleryRenderer, paste_haloed_face, plan_gallery
from classpulse_detector.blazeface import Alignment
from classpulse_ingest.settings import IngestSettings

HALO_RATIO = 0.3
MAX_TILT_DEG = 20
GALLERY_SIZES = ((640, 360), (960, 540), (1280, 720), (1920, 1080))
GALLERY_MIN_FACE_PX = 20
ROOM_SIZES = ((1280, 720), (1920, 1080))
ROOM_FACE_PX = (30, 200)
WEBCAM_SIZES = ((640, 480), (1280, 720))


@dataclass(frozen=True)
class PlacedFace:
    box: tuple[int, int, int, int]
    index: int
    """Into the faces the frame was drawn from."""
    tilt: float = 0.0
    """Degrees the face was turned by when drawn (`paste_turned`; a gallery's tiles are upright)."""


@dataclass(frozen=True)
class LayoutFrame:
    gray: np.ndarray
    faces: list[PlacedFace]
    camera_kind: CameraKind = "room"
    """A webcam is a student's own camera ("personal"), a gallery a video call's tiles ("gallery"): the pipeline runs
    that kind's detector on it."""


FacePicker = Callable[[], tuple[int, np.ndarray]]
"""Returns the next face to draw: (its index, 48x48 uint8)."""


PLACEHOLDER_GRAY_SHARE = 0.7
"""An image whose most common gray level covers this share of its pixels or more is one of FER2013's placeholders, not
a face: a blank, a warning sign, a "moved or deleted this image" notice. In PublicTest three images reach it (a
blank, 1.0; a warning sign and a notice, 0.72-0.76), the most uniform face 0.59."""


def picker(images: np.ndarray, rng: random.Random) -> FacePicker:
    """Draws faces from `images` ([N, 48, 48] uint8) at random, never a placeholder (no detector can find a face that
    is not there, and it has no emotion to get right)."""
    # Blank images are left out of the list and any other placeholder drawn is drawn again, so that the frames stay
    # those every earlier figure was measured on (blanks left out), but for the few a placeholder was drawn in.
    drawable = [index for index, image in enumerate(images) if image.std() > 0]

    def pick() -> tuple[int, np.ndarray]:
        index = rng.choice(drawable)
        while is_placeholder(images[index]):
            index = rng.choice(drawable)
        return index, images[index]

    return pick


def is_placeholder(image: np.ndarray) -> bool:
    """Whether a uint8 image is mostly one gray level (PLACEHOLDER_GRAY_SHARE)."""
    return int(np.bincount(image.ravel(), minlength=256).max()) >= PLACEHOLDER_GRAY_SHARE * image.size


def background(rng: random.Random, width: int, height: int) -> np.ndarray:
    """A smooth random backdrop (walls, furniture as blurred blocks), float32 gray."""
    coarse = np.array([[rng.uniform(30, 200) for _ in range(8)] for _ in range(6)], np.float32)
    canvas = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.randint(2, 6)):
        x, y = rng.randrange(width), rng.randrange(height)
        cv2.rectangle(canvas, (x, y), (x + rng.randrange(width // 3), y + rng.randrange(height // 3)),
                      rng.uniform(20, 220), -1)
    return cv2.GaussianBlur(canvas, (0, 0), sigmaX=3)


def paste_turned(canvas: np.ndarray, face: np.ndarray, centre: tuple[int, int], side: int, tilt: float) -> None:
    """The face in its halo, turned by `tilt` degrees about its centre, blended into `canvas`."""
    halo = round(side * HALO_RATIO)
    extent = side + 2 * halo
    patch = np.zeros((extent, extent), np.float32)
    mask = np.zeros((extent, extent), np.float32)
    paste_haloed_face(patch, face, 0, 0, side, halo)
    paste_haloed_face(mask, np.full_like(face, 255), 0, 0, side, halo)
    turn = cv2.getRotationMatrix2D((extent / 2, extent / 2), tilt, 1.0)
    patch = cv2.warpAffine(patch, turn, (extent, extent), borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, turn, (extent, extent)) / 255
    x0, y0 = centre[0] - extent // 2, centre[1] - extent // 2
    ax0, ay0 = max(x0, 0), max(y0, 0)
    ax1, ay1 = min(x0 + extent, canvas.shape[1]), min(y0 + extent, canvas.shape[0])
    alpha = alpha[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
    canvas[ay0:ay1, ax0:ax1] = alpha * patch[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] + (1 - alpha) * canvas[ay0:ay1, ax0:ax1]


def enlarged_on_backdrop(rng: random.Random, face: np.ndarray, side: int) -> np.ndarray:
    """The 48x48 `face` enlarged to `side` px in its halo, upright, at the centre of a square backdrop with the
    halo's width of room around it (uint8 gray): one face as a detector would see it, to read its landmarks. Its
    corner lies at (extent - side) // 2 on both axes."""
    extent = round(side * (1 + 2 * HALO_RATIO)) * 2
    canvas = background(rng, extent, extent)
    paste_turned(canvas, face, (extent // 2, extent // 2), side, 0.0)
    return np.clip(canvas.round(), 0, 255).astype(np.uint8)


def webcam(rng: random.Random, pick: FacePicker) -> LayoutFrame:
    """One student close to their camera: a face of a quarter to three quarters of the frame's height, anywhere
    it fits whole."""
    width, height = rng.choice(WEBCAM_SIZES)
    canvas = background(rng, width, height)
    side = round(height * rng.uniform(0.25, 0.75))
    cx, cy = rng.randint(side // 2, width - side // 2), rng.randint(side // 2, height - side // 2)
    index, face = pick()
    tilt = rng.uniform(-MAX_TILT_DEG, MAX_TILT_DEG)
    paste_turned(canvas, face, (cx, cy), side, tilt)
    return LayoutFrame(_gray(canvas), [PlacedFace((cx - side // 2, cy - side // 2, side, side), index, tilt)], "personal")


def gallery(rng: random.Random, pick: FacePicker) -> LayoutFrame:
    """A video call's gallery of 2 to 25 tiles at 640x360 to 1920x1080 (faces as small as 20 px)."""
    while True:
        width, height = rng.choice(GALLERY_SIZES)
        students = rng.randint(2, 25)
        try:
            layout = plan_gallery(width, height, students, GALLERY_MIN_FACE_PX)
            break
        except ValueError:
            continue  # too many tiles for this size: draw another
    picked = [pick() for _ in range(students)]
    renderer = GalleryRenderer(layout, [f"Student {i + 1}" for i in range(students)], [face for _, face in picked])
    gray = cv2.cvtColor(renderer.render(list(range(students))), cv2.COLOR_BGR2GRAY)
    faces = [
        PlacedFace((box.x, box.y, box.w, box.h), index)
        for (index, _), box in zip(picked, (layout.face_box(i) for i in range(students)), strict=True)
    ]
    return LayoutFrame(gray, faces, "gallery")


def room(rng: random.Random, pick: FacePicker) -> LayoutFrame:
    """A classroom seen from the front: 3 to 20 faces of 30 to 200 px, smaller towards the back (the top), not
    overlapping, each tilted a little."""
    width, height = rng.choice(ROOM_SIZES)
    canvas = background(rng, width, height)
    faces, taken = [], []
    for _ in range(rng.randint(3, 20)):
        for _attempt in range(30):
            cy = rng.randint(ROOM_FACE_PX[0], height - ROOM_FACE_PX[0])
            depth = cy / height  # nearer the camera lower in the picture: larger
            side = round(ROOM_FACE_PX[0] + (ROOM_FACE_PX[1] - ROOM_FACE_PX[0]) * depth * rng.uniform(0.6, 1.0))
            cx = rng.randint(side, width - side)
            box = (cx - side // 2, cy - side // 2, side, side)
            if box[1] >= 0 and box[1] + side <= height and not any(_near(box, other) for other in taken):
                break
        else:
            continue
        index, face = pick()
        tilt = rng.uniform(-MAX_TILT_DEG, MAX_TILT_DEG)
        paste_turned(canvas, face, (cx, cy), side, tilt)
        taken.append(box)
        faces.append(PlacedFace(box, index, tilt))
    return LayoutFrame(_gray(canvas), faces)


def frame_alignment(face: PlacedFace) -> Alignment:
    """How the drawn face is cut as FER2013 framed it: its true box's centre on the crop's, turned upright by its
    tilt, its side the crop's."""
    x, y, side, _ = face.box
    middle = np.full(2, CROP_SIDE / 2)
    return Alignment(np.array([x + side / 2, y + side / 2]), math.radians(-face.tilt), CROP_SIDE / side, middle)


def frame_crop(gray: np.ndarray, face: PlacedFace) -> np.ndarray:
    """The drawn face cut from the frame as FER2013 framed it (`frame_alignment`), at the model's 48x48, as the
    detector cuts its crops (`turned_crop`). What a detector and aligner that made no error would give the model:
    the frame's own losses (size, blur, noise, JPEG, light) and none of the pipeline's."""
    return frame_alignment(face).crop(gray)


def _near(a, b) -> bool:
    """Whether two faces' halos would overlap."""
    grow = 1 + 2 * HALO_RATIO
    (ax, ay, aw, _), (bx, by, bw, _) = a, b
    return abs((ax + aw / 2) - (bx + bw / 2)) < (aw + bw) * grow / 2 and abs((ay + aw / 2) - (by + bw / 2)) < (aw + bw) * grow / 2


def _gray(canvas: np.ndarray) -> np.ndarray:
    return np.clip(canvas.round(), 0, 255).astype(np.uint8)


def noisy(rng: random.Random, gray: np.ndarray) -> np.ndarray:
    """Sensor noise: Gaussian, sigma 6 to 16 gray levels."""
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(6, 16), gray.shape)
    return _gray(gray + noise)


def blurred(rng: random.Random, gray: np.ndarray) -> np.ndarray:
    """Out of focus or moving: Gaussian blur, sigma 1 to 2.5 px."""
    return cv2.GaussianBlur(gray, (0, 0), sigmaX=rng.uniform(1.0, 2.5))


def lit(rng: random.Random, gray: np.ndarray) -> np.ndarray:
    """Lighting: a dim or bright room (gain 0.35 to 1.6) and light falling across the frame."""
    height, width = gray.shape
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * np.linspace(-1, 1, width)[None, :] + np.sin(angle) * np.linspace(-1, 1, height)[:, None])
    return _gray(gray * rng.uniform(0.35, 1.6) * (1 + 0.35 * ramp))


LAYOUTS = {"webcam": webcam, "gallery": gallery, "room": room}
DEGRADATIONS = {"noise": noisy, "blur": blurred, "lighting": lit}
CLEAN_JPEG_QUALITY = 85
"""Ingest's default re-encoding quality (CLASSPULSE_JPEG_QUALITY)."""
LOW_JPEG_QUALITIES = (15, 25, 40)
INGEST_MAX_SIDE = IngestSettings.model_fields["max_frame_side"].default
"""Ingest downscales larger frames to this before the detector sees them (CLASSPULSE_MAX_FRAME_SIDE)."""


def families() -> list[str]:
    """Each layout as is, then each degradation (and hard JPEG) over all three layouts in turn."""
    return [*LAYOUTS, *DEGRADATIONS, "jpeg"]


def family_loss(family: str, rng: random.Random, gray: np.ndarray) -> tuple[np.ndarray, int]:
    """A drawn frame through its family's own loss (a degradation's, none for a layout's), and the JPEG quality ingest
    publishes it at (hard JPEG's drawn from LOW_JPEG_QUALITIES)."""
    if family == "jpeg":
        return gray, rng.choice(LOW_JPEG_QUALITIES)
    if family in DEGRADATIONS:
        return DEGRADATIONS[family](rng, gray), CLEAN_JPEG_QUALITY
    return gray, CLEAN_JPEG_QUALITY


def jpeg_round_trip(gray: np.ndarray, quality: int) -> np.ndarray:
    """`gray` encoded as JPEG at `quality` and decoded, as the detector reads what ingest published."""
    ok, jpeg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def family_frame(family: str, number: int, rng: random.Random, pick: FacePicker) -> LayoutFrame:
    """The `number`th frame of a family, as ingest would publish it: downscaled to INGEST_MAX_SIDE, through JPEG."""
    layout = family if family in LAYOUTS else list(LAYOUTS)[number % len(LAYOUTS)]
    frame = LAYOUTS[layout](rng, pick)
    gray, quality = family_loss(family, rng, frame.gray)
    frame = LayoutFrame(gray, frame.faces, frame.camera_kind)
    scale = min(1.0, INGEST_MAX_SIDE / max(frame.gray.shape))
    if scale < 1:
        gray = cv2.resize(frame.gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = LayoutFrame(gray, [
            PlacedFace(tuple(round(v * scale) for v in face.box), face.index, face.tilt) for face in frame.faces
        ], frame.camera_kind)
    return LayoutFrame(jpeg_round_trip(frame.gray, quality), frame.faces, frame.camera_kind)


def family_frames(images: np.ndarray, family: str, frames: int, seed: int) -> Iterator[LayoutFrame]:
    """The first `frames` frames of a family for `seed`, drawn from `images` (PublicTest): the faces bench's frames."""
    rng = random.Random(f"{seed}:{family}")
    pick = picker(images, rng)
    for number in range(frames):
        yield family_frame(family, number, rng, pick)
