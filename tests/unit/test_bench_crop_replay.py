"""The crop replay cuts the very faces the faces bench found: recorded once, saved, loaded, their frames drawn again
from the seed, the aligned crops are those of the scan's own frames, and each face's frame crop is its drawn face's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from classpulse_bench.crop_replay import FRAME_CROPS, FRAMING_SWAPS, FoundFaces, crops_by_method, face_at, record
from classpulse_bench.face_layouts import family_frames, frame_alignment, frame_crop
from classpulse_bench.faces import _detectors
from classpulse_detector.blazeface import FER_FRAMING, alignment
from classpulse_detector.faces import landmarks_of

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
    replayed = crops_by_method(again, images, 0, {
        "aligned": finder.crop_one, "as FER2013's crops": lambda gray, face: finder.crop_one(gray, face, FER_FRAMING),
    })
    assert np.array_equal(replayed.crops["aligned"], np.stack(expected))
    assert replayed.cpu_ms["aligned"] >= 0
    framed = [
        frame_crop(frames[number].gray, next(face for face in frames[number].faces if face.index == index))
        for number, index in zip(again.frame, again.index, strict=True)
    ]
    assert np.array_equal(replayed.crops[FRAME_CROPS], np.stack(framed))

    # A swap takes its part of the cut from the landmarks and keeps the rest of the true box's: the landmarks'
    # alignment on FER2013's framing (a drawn face is a FER2013 crop enlarged, which FER_FRAMING describes) named by
    # the crop's centre cuts that crop again, and its scale over the true one is reported.
    for row, (number, index) in enumerate(zip(again.frame, again.index, strict=True)):
        gray = frames[number].gray
        truth = frame_alignment(next(face for face in frames[number].faces if face.index == index))
        landmarks = alignment(landmarks_of(face_at(again, row)), FER_FRAMING).centred()
        # (the same cut up to the area shrink's pixel grid, which starts from the named centre: correlation 0.999)
        again_aligned = landmarks.crop(gray).astype(float).ravel()
        assert np.corrcoef(again_aligned, replayed.crops["as FER2013's crops"][row].astype(float).ravel())[0, 1] > 0.995
        assert replayed.scale_ratio[row] == pytest.approx(landmarks.scale / truth.scale)
        for name, parts in FRAMING_SWAPS.items():
            swapped = dataclasses.replace(truth, **{part: getattr(landmarks, part) for part in parts})
            assert np.array_equal(replayed.crops[name][row], swapped.crop(gray))
            assert not np.array_equal(replayed.crops[name][row], replayed.crops[FRAME_CROPS][row])
