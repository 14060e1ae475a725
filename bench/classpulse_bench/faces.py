"""`python -m classpulse_bench faces`: how well the detector finds faces and how good its crops are, per family of
generated layouts (`face_layouts`: webcams, galleries, rooms, noise, blur, lighting, hard JPEG; seeded) and on the
real photos of faces-wild, for BlazeFace and Haar side by side, and the fer package on the same frames and photos
(`faces_peer`: the issue's own comparison, per family).

Per family, with each frame's camera kind's detector (a webcam is a personal camera, a video call's gallery a
gallery camera): recall and precision of the boxes (`face_matches`; and by IoU >= 0.4 with the drawn FER2013 image),
the detector's CPU ms per frame (a full scan: no tracking), and the emotion model's accuracy on the pipeline's crops of the found faces next to its
accuracy on the same faces' FER2013 crops (the data set's own framing): the gap is what the detector's framing
costs; and recall by the drawn face's side (`recall_by_side`), which tells a family's small faces from its large
ones. On faces-wild: the share of photos with a face found and the model's accuracy on the crop of the largest
face, under the shipped framing and under other candidate framings (zoom about the crop's centre, vertical shift),
which is how the framing was chosen: on the generated families' faces (FER2013 labels) and on faces-wild. `fer_framing` reports where BlazeFace sees the landmarks of FER2013 faces
(median, in 48x48 crop pixels): the framing the model was trained on; `real_face_framing`, where a real face's
landmarks must land for its crop to be framed as FER2013 framed its faces (FER2013's, less the move BlazeFace reads
on an enlarged 48x48 crop).
"""

from __future__ import annotations

import csv
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import cv2
import numpy as np

from classpulse_bench import machine
from classpulse_bench.accuracy import matched_guesses
from classpulse_bench.face_layouts import enlarged_on_backdrop, families, family_frames, frame_crop
from classpulse_bench.report import Section
from classpulse_core.labels import EMOTIONS
from classpulse_core.schemas import CameraKind
from classpulse_core.share_correction import ShareCorrection, mean_probabilities
from classpulse_demo.haar_check import MIN_IOU, iou
from classpulse_detector.blazeface import ALIGN_LANDMARKS, FER_FRAMING, Framing, alignment
from classpulse_detector.faces import landmarks_of

REPO_ROOT = Path(__file__).resolve().parents[2]
FACES_WILD = REPO_ROOT.parent / "shared" / "data" / "faces-wild"
MODEL_DIR = max(
    (path for path in (REPO_ROOT / "models" / "emotion").iterdir() if path.name.isdigit()), key=lambda path: int(path.name)
)
"""The served model: the latest version, as the model server picks it."""
ZOOMS = (0.85, 0.92, 1.0, 1.08, 1.16)
SHIFTS = (-3.0, 0.0, 3.0)
FER_FRAMING_SCALE = 4
"""FER2013 faces are enlarged this much (to 192 px) to find their landmarks."""


@dataclass
class FacesBenchResult:
    context: dict = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)


SIDE_BINS = (0, 30, 45, 60, 90, 10_000)
"""Drawn face sides (frame px, as the detector sees the frame) that recall is split by: where a family's misses are
(docs/face-detection.md, "What the galleries' and blurred galleries' misses are": galleries miss their largest
faces, rooms their smallest)."""


def recall_by_side(faces: list[tuple[int, bool]]) -> dict[str, float | int | None]:
    """Faces drawn and the share found per SIDE_BINS bin, from (side, found) of each drawn face."""
    figures: dict[str, float | int | None] = {}
    for low, high in zip(SIDE_BINS, SIDE_BINS[1:], strict=False):
        found = [hit for side, hit in faces if low <= side < high]
        name = f"{low}_{high}" if high < SIDE_BINS[-1] else f"{low}_up"
        figures[f"faces_{name}"] = len(found)
        figures[f"recall_{name}"] = round(sum(found) / len(found), 4) if found else None
    return figures


def _detectors(names: list[str]) -> dict[str, dict[str, object]]:
    """Per name, one finder per camera kind, as the detector service builds them (a webcam is a personal camera)."""
    from classpulse_detector.settings import DetectorSettings

    return {
        name: {kind: settings.face_finder(kind) for kind in get_args(CameraKind)}
        for name in names
        for settings in [DetectorSettings(face_detector=name, personal_face_detector=name, gallery_face_detector=name)]
    }


def _trackers(name: str) -> dict:
    """One tracking detector per camera kind, as the detector service runs them on every frame."""
    from classpulse_detector.settings import DetectorSettings

    return DetectorSettings(face_detector=name, personal_face_detector=name, gallery_face_detector=name).tracking_detectors()


TRACKED_FRAME_MS = 500
"""Frames of a tracked layout are this far apart in capture time: ingest's default sampling of a live class (2/s)."""


def _tracked_figures(trackers, source: tuple[str, str], frame, frames: int, noise: np.random.Generator) -> tuple[int, int, float]:
    """The layout followed for `frames` frames as the service does (a new source: the first frame is a deep scan),
    each frame after the first with a webcam's noise, flicker and shake added: (faces matched, detections, CPU s)."""
    from classpulse_reliability.workload import webcam_like_frame

    tracker = trackers[frame.camera_kind]
    matched = detected = 0
    cpu_s = 0.0
    truth = [face.box for face in frame.faces]
    for number in range(frames):
        gray = frame.gray if number == 0 else webcam_like_frame(frame.gray, noise)
        started = time.process_time()
        boxes = tracker.detect(source, number + 1, number * TRACKED_FRAME_MS, gray)
        tracker.detector.crop(gray, boxes)
        cpu_s += time.process_time() - started
        matched, detected = matched + len(face_matches(truth, boxes)), detected + len(boxes)
    return matched, detected, cpu_s


CENTRE_SHARE = 0.25
"""A detection centred within this share of the drawn face's side of its centre..."""
SIDE_RANGE = (0.45, 1.5)
"""...and of a side within this range of the drawn face's is that face; so is one overlapping the drawn FER2013
image by IoU >= MIN_IOU (the IoU figures' rule)."""


def face_matches(truth: list[tuple[int, int, int, int]], boxes: list) -> dict[int, int]:
    """Drawn face index -> index of the detection that found it, one-to-one, nearest centres first.

    A drawn face's true box is its whole FER2013 image, and FER2013 frames its faces loosely or tightly (a face fills
    50 to 100% of its crop) and not always at its centre: a detector's box around the face itself can overlap a loose
    crop by IoU < 0.4 while finding exactly that face (accuracy.matched_guesses, kept for the IoU figures), and a box
    around a face that lies off its image's centre, or around a tight crop's face and its halo, can be centred over a
    quarter of the side away, or be over 1.5 times it, while overlapping that image by IoU 0.4-0.5 and no other face
    (docs/face-detection.md, "Is the bench's matching fair?": 15 such boxes on seed 41's 24 frames a family, each
    counted as a missed face and a false one). A detection is that face when either rule says so: centred on the
    drawn face at about its size (what a count of faces needs), or overlapping the drawn image by IoU >= MIN_IOU. A
    part of a face (an eye, a chin) meets neither, and a second box on a found face stays a false face (one-to-one)."""
    candidates = []
    for ti, (tx, ty, tw, th) in enumerate(truth):
        for di, (x, y, w, h) in enumerate(boxes):
            offset = max(abs(x + w / 2 - tx - tw / 2), abs(y + h / 2 - ty - th / 2)) / tw
            centred = offset <= CENTRE_SHARE and SIDE_RANGE[0] <= max(w, h) / tw <= SIDE_RANGE[1]
            if centred or iou((tx, ty, tw, th), (x, y, w, h)) >= MIN_IOU:
                candidates.append((offset, ti, di))
    pairs: dict[int, int] = {}
    for _, ti, di in sorted(candidates):
        if ti not in pairs and di not in pairs.values():
            pairs[ti] = di
    return pairs


def _framed_accuracies(predict, detector, faces: list[tuple[np.ndarray, object]], truths: list[int]) -> dict[str, float]:
    """The model's accuracy on `detector`'s crops of `faces` ((gray, box)) under each candidate framing."""
    return {
        f"zoom {zoom:.2f}, shift {shift:+.0f}": _accuracy(
            predict, [detector.crop_one(gray, box, detector.framing.zoomed(zoom, shift)) for gray, box in faces], truths
        )
        for zoom in ZOOMS
        for shift in SHIFTS
    }


def _accuracy(predict, crops: list[np.ndarray], labels: list[int]) -> float:
    if not crops:
        return 0.0
    probabilities = predict(np.stack(crops)[..., None])
    return round(float((probabilities.argmax(1) == np.array(labels)).mean()), 4)


def _family_rows(
    finders, trackers, tracked_frames: int, predict, correction_without, images, labels, family: str, frames: int,
    seed: int, landmarked: list, sides: list,
) -> dict:
    """One family's row; the matched faces that carry landmarks are added to `landmarked` ((gray, box), label), and
    every drawn face's (side, found) to `sides`."""
    labelled = detected = iou_matched = 0
    pipeline_crops, frame_crops, data_crops, truths, cpu_s = [], [], [], [], 0.0
    every_crop, shown = [], []  # what the class shares are read from, and what they should say (PublicTest indices)
    noise = np.random.default_rng(seed)
    tracked = [0, 0, 0.0]  # faces matched, detections, CPU s
    for number, frame in enumerate(family_frames(images, family, frames, seed)):
        if tracked_frames:
            figures = _tracked_figures(trackers, (family, str(number)), frame, tracked_frames, noise)
            tracked = [total + part for total, part in zip(tracked, figures, strict=True)]
        detector = finders[frame.camera_kind]
        started = time.process_time()
        boxes = detector.detect(frame.gray)
        crops = np.frombuffer(detector.crop(frame.gray, boxes), np.uint8).reshape(-1, 48, 48)
        cpu_s += time.process_time() - started
        labelled, detected = labelled + len(frame.faces), detected + len(boxes)
        every_crop.extend(crops)
        shown.extend(face.index for face in frame.faces)
        iou_matched += len(matched_guesses([face.box for face in frame.faces], boxes))
        pairs = face_matches([face.box for face in frame.faces], boxes)
        sides.extend((max(face.box[2:]), number in pairs) for number, face in enumerate(frame.faces))
        for truth, found in pairs.items():
            index = frame.faces[truth].index
            pipeline_crops.append(crops[found])
            frame_crops.append(frame_crop(frame.gray, frame.faces[truth]))
            data_crops.append(images[index])
            truths.append(int(labels[index]))
            if getattr(boxes[found], "landmarks", None) is not None:
                landmarked.append(((frame.gray, boxes[found]), int(labels[index])))
    correction = correction_without(shown)  # the family's faces never inform the M its shares are corrected with
    found, as_data_set = (predict(np.stack(crops)[..., None]) if crops else np.zeros((0, len(EMOTIONS)))
                          for crops in (pipeline_crops, data_crops))
    truth_shown = [int(labels[index]) for index in shown]
    right, right_as_data_set = ((read.argmax(1) == np.array(truths, dtype=int)).sum() for read in (found, as_data_set))
    return {
        "frames": frames,
        "faces": labelled,
        "recall": round(len(truths) / max(labelled, 1), 4),
        "precision": round(len(truths) / max(detected, 1), 4),
        "recall_iou": round(iou_matched / max(labelled, 1), 4),
        "precision_iou": round(iou_matched / max(detected, 1), 4),
        "cpu_ms_per_frame": round(1000 * cpu_s / frames, 1),
        **({
            "recall_tracked": round(tracked[0] / max(labelled * tracked_frames, 1), 4),
            "precision_tracked": round(tracked[0] / max(tracked[1], 1), 4),
            "cpu_ms_per_frame_tracked": round(1000 * tracked[2] / (frames * tracked_frames), 1),
        } if tracked_frames else {}),
        "accuracy_pipeline_crops": round(int(right) / max(len(truths), 1), 4),
        # Every face shown, a missed one counted wrong: what a class's numbers are made of (the fer package's row beside).
        "accuracy_faces_shown": round(int(right) / max(labelled, 1), 4),
        # The same faces cut from the frame at their true place and FER2013's framing: what the frame itself (its size,
        # blur, noise, JPEG, light) leaves of the face, apart from what detection and alignment lose.
        "accuracy_frame_crops": _accuracy(predict, frame_crops, truths),
        "accuracy_data_set_crops": round(int(right_as_data_set) / max(len(truths), 1), 4),
        **share_distances(predict, correction, every_crop, truth_shown),
        # The same class read without detection errors (the found faces only) and without the pipeline's crops (the
        # faces shown, as FER2013 crops): what detection and what the crops add to the sampling floor.
        **_renamed(share_distances(predict, correction, pipeline_crops, truths), "_found_faces"),
        **_renamed(share_distances(predict, correction, [images[index] for index in shown], truth_shown), "_data_set_crops"),
        **mix_distances(correction, found, np.array(truths, dtype=int), MIX_CLASSES, random.Random(f"{seed}:{family}:mixes"),
                        as_data_set),
    }


def _renamed(figures: dict[str, float | None], suffix: str) -> dict[str, float | None]:
    return {f"{name}{suffix}": value for name, value in figures.items()}


def share_distances(predict, correction, crops: list[np.ndarray], shown: list[int]) -> dict[str, float | None]:
    """Total-variation distance between the emotion shares of the faces shown (`shown`: their labels) and the shares
    read from every crop the pipeline cut (false faces included, missed ones absent, as the aggregator sees them): the
    raw mean of the probabilities, and the corrected shares the API shows (classpulse_core.share_correction)."""
    if not crops or not shown:
        return {"shares_tvd_raw": None, "shares_tvd_corrected": None}
    return shares_off(predict(np.stack(crops)[..., None]).mean(0), shown, correction)


def shares_off(means: np.ndarray, shown: list[int], correction: ShareCorrection | None) -> dict[str, float]:
    """Total-variation distance from the mean probabilities `means` read off a class to the shares of the faces
    `shown` (their labels): raw, and corrected unless `correction` is None (a system that shows the raw mean)."""
    truth = np.bincount(shown, minlength=len(EMOTIONS)) / len(shown)
    figures = {"shares_tvd_raw": round(float(np.abs(means - truth).sum() / 2), 4)}
    if correction is not None:
        figures["shares_tvd_corrected"] = round(float(np.abs(correction.correct(means)[0] - truth).sum() / 2), 4)
    return figures


MIX_CLASSES = 200
"""Generated classes per mix in `mix_distances`."""


def mix_distances(
    correction: ShareCorrection | None, probabilities: np.ndarray, labels: np.ndarray, classes: int, rng: random.Random,
    data_set_probabilities: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Mean total-variation distance to the truth, over the issue's mixes (`classpulse_training.class_mixes.MIXES`:
    all neutral, mostly happy, mostly sad, even, the sample class's phases), of classes made of the family's own
    pipeline crops (`probabilities`, `labels`: the found faces, their emotions): 12-30 students a class, one crop each
    drawn with replacement from the crops of the student's emotion; a student whose emotion the family has no crop
    of is left out. Raw mean against the corrected shares, with the standard error of the corrected mean over the
    classes (the raw mean alone where `correction` is None: a system that shows it, as the fer package does). One
    class taken as the family's faces (share_distances) holds the data set's own mix, which the raw mean reads
    without bias by construction (the model learnt that mix): these mixes are the ones a class that differs from it
    shows.

    With `data_set_probabilities` (the same faces read from their FER2013 crops), the very same classes are also read
    from those crops (`_data_set_crops`): the floor that one face a student and M's estimation noise leave, which no
    detector can lower; the corrected figure's excess over it is what the pipeline's crops cost."""
    from classpulse_training.class_mixes import CLASS_SIZES, MIXES, student_emotions, total_variation

    names = ("raw",) if correction is None else (
        "raw", "corrected", "corrected_se", *(("data_set_crops_corrected",) if data_set_probabilities is not None else ())
    )
    by_emotion = [np.flatnonzero(labels == i) for i in range(len(EMOTIONS))]
    if not len(labels):
        return {f"shares_tvd_mixes_{name}": None for name in names}
    draw = np.random.default_rng(rng.randrange(2**32))
    truths, faces = [], []
    for mix in MIXES:
        for _ in range(classes):
            emotions = [e for e in student_emotions(mix, int(draw.integers(CLASS_SIZES[0], CLASS_SIZES[1] + 1)), draw) if len(by_emotion[e])]
            if not emotions:
                continue
            faces.append([draw.choice(by_emotion[e]) for e in emotions])
            truths.append(np.bincount(emotions, minlength=len(EMOTIONS)) / len(emotions))
    truth = np.array(truths)

    def read(source: np.ndarray) -> np.ndarray:
        return np.array([source[shown].mean(axis=0) for shown in faces])

    raw = read(probabilities)
    figures = {"raw": total_variation(raw, truth).mean()}
    if correction is not None:
        corrected = total_variation(correction.correct(raw), truth)
        figures |= {"corrected": corrected.mean(), "corrected_se": corrected.std(ddof=1) / np.sqrt(len(corrected))}
        if data_set_probabilities is not None:
            figures["data_set_crops_corrected"] = total_variation(correction.correct(read(data_set_probabilities)), truth).mean()
    return {f"shares_tvd_mixes_{name}": round(float(value), 4) for name, value in figures.items()}


def _wild_photos(sample: int, seed: int) -> list[tuple[Path, int]]:
    with open(FACES_WILD / "labels.csv", newline="") as stream:
        rows = [(FACES_WILD / "images" / row["file"], int(row["emotion"])) for row in csv.DictReader(stream)]
    return random.Random(seed).sample(rows, min(sample, len(rows))) if sample else rows


def _wild_rows(detector, predict, photos) -> tuple[dict, dict[str, float], list[tuple[np.ndarray, object]]]:
    """The found share and accuracy on faces-wild, (for a landmark detector) the accuracy per framing, and the largest
    face found in each photo ((gray, box))."""
    found, crops, truths, faces, cpu_s = 0, [], [], [], 0.0
    for path, label in photos:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        started = time.process_time()
        boxes = detector.detect(gray)
        cpu_s += time.process_time() - started
        if boxes:
            found += 1
            largest = max(boxes, key=lambda box: box[2] * box[3])
            crops.append(np.frombuffer(detector.crop(gray, [largest]), np.uint8).reshape(48, 48))
            truths.append(label)
            faces.append((gray, largest))
    right = int((predict(np.stack(crops)[..., None]).argmax(1) == np.array(truths)).sum()) if crops else 0
    row = {
        "photos": len(photos),
        "found": round(found / max(len(photos), 1), 4),
        "cpu_ms_per_photo": round(1000 * cpu_s / max(len(photos), 1), 1),
        "accuracy_pipeline_crops": round(right / max(found, 1), 4),
        # A photo without a face found counted wrong (the fer package's row beside).
        "accuracy_every_photo": round(right / max(len(photos), 1), 4),
    }
    by_framing = _framed_accuracies(predict, detector, faces, truths) if hasattr(detector, "framing") else {}
    return row, by_framing, faces


def fer_framing(detector, images: np.ndarray, count: int, seed: int) -> dict:
    """Median landmarks (right eye, left eye, nose tip, mouth) of FER2013 faces in their own 48x48 crops, found by
    `detector` on each face enlarged FER_FRAMING_SCALE times inside its halo on a plain backdrop."""
    rng = random.Random(seed)
    points = [
        found for index in rng.sample(range(len(images)), count)
        if (found := _landmarks_enlarged(detector, images[index], rng)) is not None
    ]
    median = np.median(np.array(points), axis=0).round(1)
    return {"faces": count, "found": len(points), "landmarks_48px": median.tolist()}


def real_face_framing(
    detector, faces: list[tuple[np.ndarray, object]], seed: int, cut_with: Framing | None = None
) -> dict:
    """Where a real face's landmarks must land in its crop for the crop to frame the face as FER2013 framed its own.

    `fer_framing` finds FER2013's landmarks on its 48x48 faces enlarged on a backdrop, and BlazeFace reads such an
    enlarged crop's landmarks a fraction of a pixel off where it reads them on a whole photo of the same face. So each
    real face of `faces` ((gray, box with landmarks): faces-wild's largest faces) is cut with `cut_with` (default
    FER_FRAMING), and its crop enlarged and found again as `fer_framing` does: the mean move of each landmark, in crop
    pixels, is the offset, and FER_FRAMING less the offset is the framing that gives a real face FER2013's own;
    `found_48px` is where the landmarks found again lie on average (FER_FRAMING's, for a framing that does)."""
    rng = random.Random(seed)
    moves, found_again = [], []
    for gray, box in faces:
        landmarks = landmarks_of(box)
        if landmarks is None:
            continue
        cut = alignment(landmarks, cut_with or FER_FRAMING)
        found = _landmarks_enlarged(detector, cut.crop(gray), rng)
        if found is not None:
            moves.append(found - cut.placed(landmarks[:ALIGN_LANDMARKS]))
            found_again.append(found)
    if not moves:
        return {"faces": len(faces), "found_again": 0}
    offset = np.mean(np.array(moves), axis=0)
    return {
        "faces": len(faces), "found_again": len(moves), "offset_48px": offset.round(2).tolist(),
        "offset_se_48px": (np.std(np.array(moves), axis=0, ddof=1) / np.sqrt(len(moves))).round(2).tolist()
        if len(moves) > 1 else None,
        "landmarks_48px": (np.array(FER_FRAMING.points) - offset).round(1).tolist(),
        "found_48px": np.mean(np.array(found_again), axis=0).round(2).tolist(),
    }


def _landmarks_enlarged(detector, image: np.ndarray, rng: random.Random) -> np.ndarray | None:
    """The landmarks (48x48 crop pixels) `detector` finds on a 48x48 face enlarged FER_FRAMING_SCALE times inside
    its halo on a plain backdrop (the largest face), or None."""
    side = 48 * FER_FRAMING_SCALE
    gray = enlarged_on_backdrop(rng, image, side)
    boxes = [box for box in detector.detect(gray) if landmarks_of(box) is not None]
    if not boxes:
        return None
    best = max(boxes, key=lambda box: box[2] * box[3])
    return (landmarks_of(best)[:ALIGN_LANDMARKS] - (gray.shape[0] - side) // 2) / FER_FRAMING_SCALE


def chosen_families(names: list[str] | None) -> list[str]:
    """The families a run measures, in the bench's order: all of them, or the named ones (each family's frames are
    drawn from its own seed, so a family reads the same alone as in a full run)."""
    if not names:
        return families()
    unknown = sorted(set(names) - set(families()))
    if unknown:
        raise ValueError(f"unknown families {unknown}; the families are {families()}")
    return [family for family in families() if family in names]


def run_faces_bench(
    csv_path: str | None, detectors: list[str], frames: int, wild_sample: int, seed: int, tracked_frames: int = 0,
    model_dir: Path = MODEL_DIR, family_names: list[str] | None = None, peers: list[str] | None = None,
) -> FacesBenchResult:
    """`peers`: the peers measured on the same frames and photos ("fer": `faces_peer`; default none)."""
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv
    from classpulse_training.serving import SINGLE_PASS_SIGNATURE, load_signature, predict_probabilities

    data = load_fer_csv(resolve_fer_csv(csv_path)).split("PublicTest")
    images, labels = data.images[..., 0], data.labels
    signature = load_signature(model_dir, SINGLE_PASS_SIGNATURE)

    def predict(crops: np.ndarray) -> np.ndarray:
        return predict_probabilities(signature, crops)

    public_test = predict(images[..., None])

    def correction_without(faces: list[int]) -> ShareCorrection:
        """M as the export fits it (`quantification.json`: the signature's mean probabilities per emotion on PublicTest),
        without `faces`: a family's own faces never inform the M its shares are corrected with."""
        rest = np.setdiff1d(np.arange(len(labels)), faces)
        return ShareCorrection(mean_probabilities(public_test[rest], labels[rest]), f"PublicTest but {len(faces)} faces")

    result = FacesBenchResult(context={
        "machine": machine.describe(), "seed": seed, "frames_per_family": frames, "model": str(model_dir.name),
        "public_test_accuracy_single_pass": round(float((public_test.argmax(1) == labels).mean()), 4),
    })
    layouts = Section(
        "Faces by family of generated layouts",
        note="recall/precision: detection centred on the drawn face at 0.45-1.5 its side, or at IoU >= 0.4 with its "
        "FER2013 image (face_matches); _iou: IoU >= 0.4 alone; accuracies: on the found faces, the pipeline's crops, "
        "the same faces cut from the frame at their true box turned upright (frame_crops: the frame's own losses, none "
        "of detection's or alignment's) and their FER2013 crops; cpu: one full scan (no tracking); _tracked: each layout followed for "
        f"{tracked_frames} frames {TRACKED_FRAME_MS} ms apart by the service's tracking detector (a new source: its "
        "first frame a deep scan), a webcam's noise, flicker and shake on every frame after the first; shares_tvd: the "
        "family's faces as one class (the data set's own mix), total-variation distance of the emotion shares read from "
        "every crop (raw mean; corrected, as the API shows them, with M fitted on PublicTest but the family's faces) to "
        "those of the faces shown; _found_faces: the found faces' crops against their own shares (no missed or false "
        "face); _data_set_crops: the faces shown read from their FER2013 crops (the floor of sampling and M's noise); "
        f"shares_tvd_mixes: the same, mean over {MIX_CLASSES} classes a mix of the issue's mixes made of the family's "
        "found faces' pipeline crops, one a student (_se: standard error over the classes; _data_set_crops: the same "
        "classes read from the faces' FER2013 crops)",
    )
    by_side = Section(
        "Recall by face side",
        note="the drawn faces of each family by side (frame px after ingest's downscale), and the share found "
        "(face_matches, full scans)",
    )
    wild = Section("faces-wild (real photos)", note="found: photos with a face; accuracy: crop of the largest face")
    framing = Section(
        "Accuracy by framing",
        note="aligned crops of the found faces, zoom about the crop's centre, shift down in crop px; generated: all "
        "families' faces (FER2013 PublicTest labels), faces-wild: the largest face of each photo (noisy labels)",
    )
    for name, finders in _detectors(detectors).items():
        landmarked: list = []
        for family in chosen_families(family_names):
            sides: list[tuple[int, bool]] = []
            row = _family_rows(
                finders, _trackers(name), tracked_frames, predict, correction_without, images, labels, family, frames,
                seed, landmarked, sides,
            )
            layouts.add(f"{name}: {family}", **row)
            by_side.add(f"{name}: {family}", **recall_by_side(sides))
        detector = finders["room"]
        by_framing = {"generated": {}, "faces-wild": {}}
        if landmarked and hasattr(detector, "framing"):
            faces, truths = (list(column) for column in zip(*landmarked, strict=True))
            by_framing["generated"] = _framed_accuracies(predict, detector, faces, truths)
        if (FACES_WILD / "labels.csv").is_file():
            row, by_framing["faces-wild"], wild_faces = _wild_rows(detector, predict, _wild_photos(wild_sample, seed))
            wild.add(name, **row)
            if hasattr(detector, "framing"):
                result.context[f"real_face_framing_{name}"] = real_face_framing(detector, wild_faces, seed)
        else:
            wild.add(f"{name}: skipped, {FACES_WILD} is absent")
        for candidate in by_framing["generated"] or by_framing["faces-wild"]:
            framing.add(f"{name}: {candidate}", **{
                source.replace("-", "_"): accuracies[candidate] for source, accuracies in by_framing.items() if accuracies
            })
        if hasattr(detector, "framing"):
            result.context[f"fer_framing_{name}"] = fer_framing(detector, images, 300, seed)
    result.sections = [layouts, by_side, wild, framing, *(
        [_peer_section(images, labels, chosen_families(family_names), frames, wild_sample, seed)] if "fer" in (peers or []) else []
    )]
    return result


def _peer_section(images: np.ndarray, labels: np.ndarray, names: list[str], frames: int, wild_sample: int, seed: int) -> Section:
    """The fer package on the same frames of each family and the same faces-wild photos (`faces_peer`)."""
    from classpulse_bench import faces_peer
    from classpulse_bench.peers import PeerUnavailable, fer_reader

    section = Section(
        "The fer package on the same frames and photos",
        note="FER().detect_emotions with its defaults (Haar, mini-Xception), each frame as BGR; recall/precision by "
        "face_matches, as ClassPulse's; accuracy_found_faces: its most probable emotion on the faces it found; "
        "accuracy_faces_shown: on every face shown, a missed face counted wrong (ClassPulse's accuracy_faces_shown "
        "beside); shares: the mean of its probabilities over every face it found (raw; it has no correction); "
        "faces-wild: photos with a face found, accuracy on the largest face and over every photo",
    )
    try:
        read = fer_reader()
    except PeerUnavailable as exc:
        section.add(f"fer: skipped, {exc}")
        return section
    for family in names:
        section.add(f"fer: {family}", **faces_peer.family_row(read, images, labels, family, frames, seed))
    if (FACES_WILD / "labels.csv").is_file():
        section.add("fer: faces-wild", **faces_peer.wild_row(read, _wild_photos(wild_sample, seed)))
    else:
        section.add(f"fer: faces-wild skipped, {FACES_WILD} is absent")
    return section
