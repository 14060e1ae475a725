"""The crop replay cuts the very faces the faces bench found: recorded once, saved, loaded, their frames drawn again
from the seed, the aligned crops are those of the scan's own frames, and each face's frame crop is its drawn face's."""

from __future__ import annotations

import numpy as np
import pytest

from classpulse_bench.crop_replay import FRAME_CROPS, FoundFaces, crops_by_method, record
from classpulse_bench.face_layouts import family_frames, frame_crop
from classpulse_bench.faces import _detectors

pytestmark = pytest.mark.unit


def test_the_replay_crops_the_faces_found_in_the_frames_scanned(tmp_path):
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv

    try:
        data = load_fer_csv(resolve_fer_csv(None)).split("PublicTest")
    except FerCsvNotFoundError as exc:
        pytest.skip(f"FER2013 is needed to draw the frames: {exc}")
    images = data.images[..., 0]
    found = record(images, data.labels, 5, 3, family_names=["webcam"])
    assert len(found.label) >= 2 and set(found.family) == {"webcam"}
    assert np.array_equal(found.label, data.labels[found.index])
    found.save(tmp_path / "found.npz")
    again = FoundFaces.load(tmp_path / "found.npz")

    finder = _detectors(["blazeface"])["blazeface"]["personal"]
    frames = list(family_frames(images, "webcam", 3, 5))
    expected = [finder.crop_one(frames[number].gray, finder.detect(frames[number].gray)[0]) for number in again.frame]
    crops, cost = crops_by_method(again, images, 0, {"aligned": finder.crop_one})
    assert np.array_equal(crops["aligned"], np.stack(expected))
    assert cost["aligned"] >= 0
    framed = [
        frame_crop(frames[number].gray, next(face for face in frames[number].faces if face.index == index))
        for number, index in zip(again.frame, again.index, strict=True)
    ]
    assert np.array_equal(crops[FRAME_CROPS], np.stack(framed))
