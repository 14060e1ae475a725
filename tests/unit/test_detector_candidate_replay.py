"""The candidate replay (classpulse_bench.candidate_replay), which the detector's rules are chosen with: at the shipped
rule it reads what the detector itself finds on the same generated frames (FER2013 faces drawn at run time from
../shared/data; skipped where it is absent), so that a rule chosen on the records is the rule the detector runs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from classpulse_bench.candidate_replay import Recording, Rule, record, replay, shortfall
from classpulse_bench.face_layouts import family_frame, picker
from classpulse_bench.faces import face_matches
from classpulse_detector.settings import DetectorSettings

pytestmark = pytest.mark.unit

TUNING_SEED = 23


def test_the_replay_reads_what_the_detector_finds(public_test_faces, tmp_path):
    family = "lighting"  # its frame 1 is a gallery whose lit faces leave parts of faces scoring 0.55-0.73
    recording = record(public_test_faces, TUNING_SEED, 2, family_names=[family])
    recording.save(tmp_path / "replay.npz")
    figures = replay(Recording.load(tmp_path / "replay.npz"))[family]
    rng = random.Random(f"{TUNING_SEED}:{family}")
    pick = picker(public_test_faces, rng)
    settings = DetectorSettings(face_detector="blazeface")
    matched = detected = faces = 0
    for number in range(2):
        frame = family_frame(family, number, rng, pick)
        boxes = settings.face_finder(frame.camera_kind).detect(frame.gray)
        faces, detected = faces + len(frame.faces), detected + len(boxes)
        matched += len(face_matches([face.box for face in frame.faces], boxes))
    assert (figures.faces, figures.matched, figures.detected) == (faces, matched, detected)
    assert detected > matched  # the frames hold false faces, so the rules have something to decide
    everything = Rule(min_score=0.0, second_look_below=0.0)  # every candidate that holds no surer face
    assert replay(recording, everything)[family].detected > detected


def test_the_shortfall_sums_what_each_family_misses(public_test_faces):
    recording = record(public_test_faces, TUNING_SEED, 1, family_names=["room"])
    figures = replay(recording)
    row = figures["room"]
    expected = max(0.0, 0.97 - row.recall) + max(0.0, 0.98 - row.precision)
    assert shortfall(figures) == pytest.approx(expected)
    assert np.isclose(shortfall({"webcam": row}), 0.0)  # webcams are not summed (one face a frame)
