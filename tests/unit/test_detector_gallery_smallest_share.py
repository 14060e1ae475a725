"""In a gallery's full scan, a face far smaller than the call's other faces is not a student's and is dropped
(blazeface.GALLERY_SMALLEST_SHARE): a picture of a face on the wall behind a student, a tile's label, a patch of a
large face. A room's finder keeps such a face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classpulse_bench.faces import face_matches
from classpulse_demo.gallery import GalleryRenderer, paste_haloed_face, plan_gallery
from classpulse_detector.blazeface import GALLERY_SMALLEST_SHARE, BlazeFaceDetector, without_far_smaller
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit


def test_faces_under_the_share_of_the_median_side_are_dropped_in_order():
    faces = [(0, 0, 100, 100), (200, 0, 30, 30), (400, 0, 90, 90), (0, 200, 39, 39), (200, 200, 110, 110)]
    # median side 90: under 0.4 x 90 = 36 goes, 39 stays
    assert without_far_smaller(faces, 0.4) == [faces[0], faces[2], faces[3], faces[4]]
    assert without_far_smaller(faces, 0.0) == faces
    assert without_far_smaller(faces[1:2], 0.4) == faces[1:2]  # one face: nothing to compare it with
    speaker_view = [(0, 0, 100, 100), (300, 300, 20, 20)]  # two: a thumbnail beside the speaker stays
    assert without_far_smaller(speaker_view, 0.4) == speaker_view
    assert DetectorSettings.model_fields["gallery_smallest_face_share"].default == GALLERY_SMALLEST_SHARE


def _finder(camera_kind: str, **settings: float) -> BlazeFaceDetector:
    finder = DetectorSettings(face_detector="blazeface", gallery_face_detector="blazeface", **settings).face_finder(
        camera_kind  # type: ignore[arg-type]
    )
    assert isinstance(finder, BlazeFaceDetector)
    return finder


def test_a_gallery_drops_the_small_face_on_the_wall_behind_a_student_that_a_room_keeps():
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv

    try:
        data = load_fer_csv(resolve_fer_csv(None)).split("PublicTest")
    except FerCsvNotFoundError as exc:
        pytest.skip(f"FER2013 is needed to draw the faces: {exc}")
    happy = data.images[data.labels == 3][..., 0]
    layout = plan_gallery(1280, 720, 4)
    students = [layout.face_box(i) for i in range(4)]
    frame = GalleryRenderer(layout, [f"Student {i + 1}" for i in range(4)], list(happy[:4])).render([0, 1, 2, 3])
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    # A picture on the wall beside the first student, a sixth of their face's side, in the tile's spare width.
    side = layout.face_side // 6
    tile = layout.tiles[0]
    paste_haloed_face(gray, happy[10], tile.x + 12, tile.y + 12, side, round(side * 0.3))
    gray_u8 = np.clip(gray.round(), 0, 255).astype(np.uint8)
    truth = [(box.x, box.y, box.w, box.h) for box in students]
    halo = round(side * 0.3)
    picture = (tile.x + 12, tile.y + 12, side + 2 * halo, side + 2 * halo)  # the picture and its halo

    def on_picture(faces: list) -> list:
        return [f for f in faces if picture[0] <= f[0] + f[2] / 2 <= picture[0] + picture[2]
                and picture[1] <= f[1] + f[3] / 2 <= picture[1] + picture[3]]

    kept = _finder("gallery", gallery_smallest_face_share=0.0).detect(gray_u8)
    assert len(face_matches(truth, kept)) == 4 and len(on_picture(kept)) == 1  # the picture is found as a face ...
    gallery = _finder("gallery").detect(gray_u8)
    assert len(face_matches(truth, gallery)) == 4 and len(gallery) == 4  # ... and dropped in a gallery,
    assert len(on_picture(_finder("room").detect(gray_u8))) == 1  # not in a room
