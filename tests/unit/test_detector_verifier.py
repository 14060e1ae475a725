"""BlazeFace's face / not-face verifier (classpulse_detector.verifier): the shipped weights are the pinned ones, the
trainer fits what separates faces from what is not, and on generated frames (FER2013 faces drawn at run time from
../shared/data; skipped where it is absent) the detector at its lower score keeps real faces and drops name labels
and backdrop."""

from __future__ import annotations

import random

import numpy as np
import pytest

from classpulse_bench.face_layouts import family_frame, picker
from classpulse_bench.faces import face_matches
from classpulse_bench.verifier_training import centred_on_a_face, fit_logistic
from classpulse_detector.blazeface import BlazeFaceDetector
from classpulse_detector.verifier import FEATURES, WEIGHTS_PATH, FaceVerifier, VerifierFileError

pytestmark = pytest.mark.unit


def test_the_shipped_weights_load_and_a_changed_file_is_refused(tmp_path):
    assert FaceVerifier.load().weights.shape == (FEATURES,)
    changed = tmp_path / "face_verifier.npy"
    content = bytearray(WEIGHTS_PATH.read_bytes())
    content[-1] ^= 0xFF
    changed.write_bytes(bytes(content))
    with pytest.raises(VerifierFileError, match="sha256"):
        FaceVerifier.load(changed)
    with pytest.raises(VerifierFileError, match="cannot read"):
        FaceVerifier.load(tmp_path / "absent.npy")


def test_the_trainer_learns_what_separates_the_classes():
    rng = np.random.default_rng(5)
    labels = (rng.random(400) < 0.5).astype(float)
    features = rng.normal(size=(400, FEATURES)) * 3 + 40  # far from standardised: the fit must undo that
    features[:, 7] += np.where(labels == 1, 2.0, -2.0)  # one informative feature among noise
    verifier = FaceVerifier(fit_logistic(features, labels, l2=10.0))
    accuracy = ((verifier.probability(features) >= 0.5) == labels).mean()
    assert accuracy > 0.9
    assert np.argmax(np.abs(verifier.weights * features.std(0))) == 7


def test_a_candidate_is_a_face_when_centred_on_one_at_about_its_size():
    drawn = [(100, 100, 80, 80)]
    assert centred_on_a_face(np.array([110, 108, 175, 178]), drawn)
    assert not centred_on_a_face(np.array([100, 100, 120, 120]), drawn)  # an eye
    assert not centred_on_a_face(np.array([60, 60, 240, 240]), drawn)  # a box far larger than the face


TUNING_SEED = 23
"""The bench's tuning seed (docs/face-detection.md, "Verifier"). At the former score 0.6 with the second look alone,
blur frame 2 missed 3 of its 18 blurred faces and noise frame 4 (a gallery) one of its 22; at score 0.5 without the
verifier, gallery frame 3 held 3 false faces (tiles' name labels, "Student 13", and parts of faces, scoring 0.51-0.59)
and JPEG frame 7 held 8; since the finest pyramid level runs only where the level above proposes a small face, and
opens no window for a part of a sure face (BlazeFaceDetector._proposed_level), gallery frame 3 holds 2 and JPEG frame
7 none."""
CHECKED = {"blur": {2: 0}, "gallery": {3: 1}, "jpeg": {7: 0}, "noise": {4: 0}}
"""Family -> frame -> drawn faces missed at the shipped settings (gallery frame 3: a face no setting finds)."""
WITHOUT_VERIFIER = {"gallery": (3, 2)}
"""Family -> (frame, false faces among its candidates at the shipped score that are not centred on a drawn face)."""


@pytest.mark.parametrize("family", sorted(CHECKED))
def test_the_lower_score_keeps_faces_and_the_verifier_drops_labels_and_parts(public_test_faces, family):
    from classpulse_detector.settings import DetectorSettings

    rng = random.Random(f"{TUNING_SEED}:{family}")
    pick = picker(public_test_faces, rng)
    frames = [family_frame(family, number, rng, pick) for number in range(max(CHECKED[family]) + 1)]
    # The room camera's finder (faces from 20 px) on every layout, galleries too: the verifier was trained and chosen
    # with it; a gallery camera's own finder (faces from 16 px) is not tuned with it yet (docs/face-detection.md,
    # "Not reached yet").
    detector = DetectorSettings(face_detector="blazeface").face_finder("room")
    assert isinstance(detector, BlazeFaceDetector)
    for number, missed in CHECKED[family].items():
        frame = frames[number]
        truth = [face.box for face in frame.faces]
        boxes = detector.detect(frame.gray)
        matched = face_matches(truth, boxes)
        assert len(boxes) == len(matched), f"{family} frame {number}: {len(boxes) - len(matched)} false faces"
        assert len(matched) == len(truth) - missed, f"{family} frame {number}: {len(truth) - len(matched)} faces missed"
    if family in WITHOUT_VERIFIER:  # what the verifier is for: candidates at the same score that are not faces
        number, false_faces = WITHOUT_VERIFIER[family]
        candidates = detector.candidates(frames[number].gray)
        centred = sum(centred_on_a_face(box, [face.box for face in frames[number].faces]) for box in candidates.boxes)
        assert len(candidates.scores) - centred >= false_faces


def test_the_verifier_judges_only_the_band_the_lower_score_admits(public_test_faces):
    """A candidate scoring 0.6-0.7 (what the former score 0.6 let through) gets the second look alone; one scoring
    0.5-0.6 must also pass the verifier. Judging 0.6-0.7 too, the verifier dropped real faces of faces-wild
    (docs/face-detection.md, "Where the verifier judges")."""
    import cv2

    from classpulse_detector.blazeface import VERIFIED_BELOW, Detections

    never_a_face = FaceVerifier(np.concatenate([np.zeros(FEATURES, np.float32), [-50.0]]).astype(np.float32))
    detector = BlazeFaceDetector(min_face_px=20, verifier=never_a_face)
    gray = np.full((240, 320), 128, np.uint8)
    for face in public_test_faces[:20]:  # the first face the network finds surely, pasted at 120 px
        gray[60:180, 100:220] = cv2.resize(face, (120, 120), interpolation=cv2.INTER_CUBIC)
        found = detector.candidates(gray)
        if len(found.scores) == 1 and found.scores[0] >= 0.8:
            break
    else:
        pytest.fail("none of the first 20 PublicTest faces was found surely")

    def scored(score: float) -> Detections:
        return Detections(found.boxes, found.landmarks, np.array([score], np.float32))

    assert detector.is_face(gray, scored(0.65), 0)  # the second look finds it again; the verifier is not asked
    assert not detector.is_face(gray, scored(VERIFIED_BELOW - 0.05), 0)  # the verifier refuses it


def test_a_gallery_finder_asks_the_verifier_up_to_the_second_look(public_test_faces):
    """On the tuning seed's lighting frame 1 (a gallery of 8 lit faces), the candidates scoring 0.55-0.73 that are
    not faces are parts of a large face the network missed; with the room camera's band (the verifier only under
    0.6) 5 of them are kept, with the gallery's (under 0.7, probability 0.6: blazeface.GALLERY_VERIFIED_BELOW) 2,
    and the same 7 faces are found (docs/face-detection.md, "The verifier per camera kind")."""
    from classpulse_detector.blazeface import GALLERY_VERIFIED_BELOW
    from classpulse_detector.settings import DetectorSettings

    rng = random.Random(f"{TUNING_SEED}:lighting")
    pick = picker(public_test_faces, rng)
    frame = [family_frame("lighting", number, rng, pick) for number in range(2)][1]
    assert frame.camera_kind == "gallery"
    settings = DetectorSettings()
    gallery = settings.face_finder("gallery")
    assert isinstance(gallery, BlazeFaceDetector) and gallery.verified_below == GALLERY_VERIFIED_BELOW
    room_band = BlazeFaceDetector(settings.blazeface_model, settings.blazeface_min_score, gallery.min_face_px)
    band_alone = DetectorSettings(gallery_smallest_face_share=0.0).face_finder("gallery")
    truth = [face.box for face in frame.faces]
    # The band alone; then as shipped, where a gallery also drops a face far smaller than the others (one of the two
    # left: blazeface.GALLERY_SMALLEST_SHARE).
    for finder, false_faces in ((room_band, 5), (band_alone, 2), (gallery, 1)):
        boxes = finder.detect(frame.gray)
        matched = face_matches(truth, boxes)
        assert (len(matched), len(boxes) - len(matched)) == (7, false_faces)
