"""The faces bench's matching rule: a detection counts for a drawn face when centred on it at about its size, so a
detector's tight box inside FER2013's loose crop is a found face, or when it overlaps the drawn image by IoU >= 0.4,
so a box around a face off its image's centre is too; a part of a face or a neighbour is not."""

from __future__ import annotations

import pytest

from classpulse_bench.faces import face_matches

pytestmark = pytest.mark.unit


def test_a_tight_box_inside_a_loose_crop_is_the_face_it_frames():
    drawn = [(100, 100, 93, 93)]
    tight = (118, 122, 56, 56)  # IoU 0.36 with the drawn crop: the IoU rule calls it a miss
    assert face_matches(drawn, [tight]) == {0: 0}


def test_a_box_off_the_crops_centre_or_around_the_face_and_its_halo_is_the_face_it_overlaps():
    # FER2013 puts some faces off their image's centre, and a tight crop's face found with its halo gives a box over
    # 1.5 times the image: the centre rule alone counted each as a missed face and a false one.
    drawn = [(100, 100, 100, 100), (400, 100, 100, 100)]
    off_centre = (130, 105, 100, 100)  # centred 0.30 of the side away; IoU 0.50 with the drawn image
    with_halo = (372, 72, 156, 156)  # 1.56 times the side, concentric; IoU 0.41
    assert face_matches(drawn, [off_centre, with_halo]) == {0: 0, 1: 1}
    assert face_matches(drawn, [(160, 100, 100, 100)]) == {}  # IoU 0.25, centred 0.6 away: beside the face


def test_parts_neighbours_and_doubles_are_not_matches():
    drawn = [(100, 100, 90, 90), (300, 100, 90, 90)]
    eye = (110, 110, 20, 20)  # too small and off the centre
    between = (190, 100, 90, 90)  # centred between the two faces
    assert face_matches(drawn, [eye, between]) == {}
    # Two detections of one face: the nearer-centred one counts, the other is a false face.
    assert face_matches(drawn, [(104, 100, 90, 90), (100, 101, 90, 90)]) == {0: 1}


def test_share_distance_counts_false_faces_and_missed_ones():
    import numpy as np

    from classpulse_bench.faces import share_distances
    from classpulse_core.labels import EMOTIONS
    from classpulse_core.share_correction import ShareCorrection

    def predict(crops):  # a crop's first pixel names the emotion it is read as
        return np.eye(len(EMOTIONS))[crops[:, 0, 0, 0]]

    crops = [np.full((48, 48), emotion, np.uint8) for emotion in (3, 3, 6)]  # two happy faces, one false "neutral"
    shown = [3, 3, 4, 4]  # two happy, two sad shown: the sad ones were missed
    distances = share_distances(predict, ShareCorrection(np.eye(len(EMOTIONS)), "identity"), crops, shown)
    # shares read: happy 2/3, neutral 1/3; shown: happy 1/2, sad 1/2 -> (1/6 + 1/2 + 1/3) / 2
    assert distances == {"shares_tvd_raw": 0.5, "shares_tvd_corrected": 0.5}
    assert share_distances(predict, None, [], shown) == {"shares_tvd_raw": None, "shares_tvd_corrected": None}


def test_class_mixes_of_a_familys_crops_show_what_the_correction_is_for():
    import random

    import numpy as np

    from classpulse_bench.faces import mix_distances
    from classpulse_core.labels import EMOTIONS
    from classpulse_core.share_correction import ShareCorrection

    k = len(EMOTIONS)
    # A model that reads every face as 60% its emotion and 40% neutral: the raw mean leans towards neutral, and the
    # correction that knows it undoes the lean.
    confusion = 0.6 * np.eye(k)
    confusion[:, EMOTIONS.index("neutral")] += 0.4
    labels = np.repeat(np.arange(k), 5)
    probabilities = confusion[labels]
    distances = mix_distances(ShareCorrection(confusion, "known"), probabilities, labels, 20, random.Random(1))
    assert distances["shares_tvd_mixes_raw"] > 0.2 and distances["shares_tvd_mixes_corrected"] < 1e-6
    # Students of an emotion the family has no crop of are left out, not read as something else.
    sad_missing = labels != EMOTIONS.index("sad")
    assert mix_distances(ShareCorrection(confusion, "known"), probabilities[sad_missing], labels[sad_missing], 20,
                         random.Random(1))["shares_tvd_mixes_corrected"] < 1e-6
    known = ShareCorrection(confusion, "known")
    assert mix_distances(known, np.zeros((0, k)), np.zeros(0, int), 20, random.Random(1)) == {
        "shares_tvd_mixes_raw": None, "shares_tvd_mixes_corrected": None, "shares_tvd_mixes_corrected_se": None}
    # A system without a correction (the fer package) is read raw: the same classes, the same raw figure.
    assert mix_distances(None, probabilities, labels, 20, random.Random(1)) == {
        "shares_tvd_mixes_raw": distances["shares_tvd_mixes_raw"]}
    assert mix_distances(None, np.zeros((0, k)), np.zeros(0, int), 20, random.Random(1)) == {"shares_tvd_mixes_raw": None}


def test_class_mixes_read_from_the_data_sets_crops_split_what_the_pipelines_crops_cost():
    """The same classes read from the faces' FER2013 crops: the floor the pipeline's crops add to. Here the data set's
    crops are read as the correction expects and the pipeline's crops as a blur that leaves half of each face's
    emotion to neutral, so only the pipeline's figure carries an error, and each figure carries its standard error."""
    import random

    import numpy as np

    from classpulse_bench.faces import mix_distances
    from classpulse_core.labels import EMOTIONS
    from classpulse_core.share_correction import ShareCorrection

    k = len(EMOTIONS)
    confusion = 0.6 * np.eye(k)
    confusion[:, EMOTIONS.index("neutral")] += 0.4
    blurred = 0.5 * confusion + 0.5 * np.eye(k)[EMOTIONS.index("neutral")]
    labels = np.repeat(np.arange(k), 5)
    distances = mix_distances(ShareCorrection(confusion, "known"), blurred[labels], labels, 20, random.Random(1),
                              confusion[labels])
    assert distances["shares_tvd_mixes_data_set_crops_corrected"] < 1e-6
    assert distances["shares_tvd_mixes_corrected"] > 0.1
    assert 0 < distances["shares_tvd_mixes_corrected_se"] < distances["shares_tvd_mixes_corrected"] / 5


def test_a_layout_followed_as_the_service_does_keeps_the_faces_its_first_scan_found():
    """The faces bench's tracked columns: a gallery followed for a few noisy, shaking frames by the service's tracking
    detector matches on every frame the faces its first (deep) scan matched, and adds no false face."""
    import random

    import numpy as np

    from classpulse_bench.face_layouts import family_frame
    from classpulse_bench.faces import _tracked_figures, _trackers
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv, sample_faces

    try:
        csv_path = resolve_fer_csv(None)
    except FerCsvNotFoundError as exc:
        pytest.skip(f"layouts are drawn from FER2013 faces: {exc}")
    faces = [face.pixels for group in sample_faces(csv_path, {"happy": 6, "neutral": 6}, "PublicTest", random.Random(5)).values() for face in group]
    rng = random.Random(5)
    frame = family_frame("gallery", 0, rng, lambda: (0, rng.choice(faces)))
    trackers = _trackers("blazeface")
    first = trackers[frame.camera_kind].detector.detect(frame.gray)  # the finder that follows it
    found_first = len(face_matches([face.box for face in frame.faces], first))
    # All but two of 25: the gallery's verifier band (candidates under 0.7 need 0.6) refuses one of the 12 faces drawn
    # in two of its three tiles, a loss the band was chosen to trade for precision on seeds 23, 41 and 29 (docs
    # "The verifier per camera kind").
    assert found_first >= len(frame.faces) - 2 > 0
    matched, detected, cpu_s = _tracked_figures(trackers, ("bench", "0"), frame, 4, np.random.default_rng(5))
    assert matched >= 4 * found_first - 1 and detected <= 4 * len(first) and cpu_s > 0


def test_a_run_of_some_families_keeps_the_bench_order_and_names_an_unknown_one():
    from classpulse_bench.face_layouts import families
    from classpulse_bench.faces import chosen_families

    assert chosen_families(None) == families()
    assert chosen_families(["jpeg", "room", "blur"]) == ["room", "blur", "jpeg"]
    with pytest.raises(ValueError, match=r"unknown families \['rooms'\]"):
        chosen_families(["rooms", "blur"])


def test_recall_by_side_puts_each_drawn_face_in_its_bin_and_leaves_an_empty_bin_without_a_share():
    from classpulse_bench.faces import recall_by_side

    figures = recall_by_side([(29, True), (30, False), (44, True), (50, True), (59, False), (200, True), (200, False)])
    assert (figures["faces_0_30"], figures["recall_0_30"]) == (1, 1.0)
    assert (figures["faces_30_45"], figures["recall_30_45"]) == (2, 0.5)  # 30 is the bin's own, not the one below
    assert (figures["faces_45_60"], figures["recall_45_60"]) == (2, 0.5)
    assert (figures["faces_60_90"], figures["recall_60_90"]) == (0, None)
    assert (figures["faces_90_up"], figures["recall_90_up"]) == (2, 0.5)
    assert sum(value for key, value in figures.items() if key.startswith("faces_")) == 7


def test_a_frame_crop_cuts_the_drawn_face_upright_at_its_true_box():
    # The bench's frame crops split the data set's accuracy gap into what the frame loses and what the pipeline loses:
    # on a clean frame a frame crop must be the drawn image again, turned back by the tilt it was drawn at.
    import random

    import cv2
    import numpy as np

    from classpulse_bench.face_layouts import PlacedFace, family_frames, frame_crop

    rng = np.random.default_rng(3)
    # Drawable "faces": smooth random patterns, each different and with structure at every scale a crop keeps.
    images = np.stack([
        cv2.resize(rng.uniform(0, 255, (6, 6)), (48, 48), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
        for _ in range(40)
    ])

    def likeness(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])

    tilted = 0
    for family in ("webcam", "room", "gallery"):
        for frame in family_frames(images, family, 3, seed=random.Random(family).randrange(100)):
            for face in frame.faces:
                assert frame_crop(frame.gray, face).shape == (48, 48)
                assert likeness(frame_crop(frame.gray, face), images[face.index]) > 0.9
                if abs(face.tilt) > 8:  # the turn undone is what makes the crop the image: kept level, it is not
                    tilted += 1
                    level = frame_crop(frame.gray, PlacedFace(face.box, face.index, 0.0))
                    assert likeness(level, images[face.index]) < likeness(frame_crop(frame.gray, face), images[face.index]) - 0.05
    assert tilted >= 3


def test_the_faces_drawn_leave_out_fer2013s_placeholders_and_only_them(public_test_faces):
    """PublicTest holds a blank image, a warning sign and a "moved or deleted" notice: no face, no emotion."""
    import random

    from classpulse_bench.face_layouts import is_placeholder, picker

    placeholders = [index for index, image in enumerate(public_test_faces) if is_placeholder(image)]
    assert placeholders == [222, 1905, 2942]
    pick = picker(public_test_faces, random.Random(0))
    drawn = {pick()[0] for _ in range(20_000)}
    assert drawn.isdisjoint(placeholders) and 512 in drawn  # 512: the face nearest the line (0.59 of one gray level)
