"""`python -m classpulse_bench faces`: how well the detector finds faces and how good its crops are, per family of
generated layouts (`face_layouts`: webcams, galleries, rooms, noise, blur, lighting, hard JPEG; seeded) and on the
real photos of faces-wild, for BlazeFace and Haar side by side.

Per family: recall and precision of the boxes (IoU >= 0.4 with the drawn face), the detector's CPU ms per frame
(a full scan: no tracking), and the emotion model's accuracy on the pipeline's crops of the found faces next to its
accuracy on the same faces' FER2013 crops (the data set's own framing): the gap is what the detector's framing
costs. On faces-wild: the share of photos with a face found and the model's accuracy on the crop of the largest
face, under the shipped framing and under other candidate framings (zoom about the crop's centre, vertical shift),
which is how the framing was chosen. `fer_framing` reports where BlazeFace sees the landmarks of FER2013 faces
(median, in 48x48 crop pixels): the framing the model was trained on.
"""

from __future__ import annotations

import csv
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from classpulse_bench import machine
from classpulse_bench.accuracy import matched_guesses
from classpulse_bench.face_layouts import HALO_RATIO, paste_turned, background, families, family_frame
from classpulse_bench.report import Section

REPO_ROOT = Path(__file__).resolve().parents[2]
FACES_WILD = REPO_ROOT.parent / "shared" / "data" / "faces-wild"
MODEL_DIR = REPO_ROOT / "models" / "emotion" / "6"
ZOOMS = (0.85, 0.92, 1.0, 1.08, 1.16)
SHIFTS = (-3.0, 0.0, 3.0)
FER_FRAMING_SCALE = 4
"""FER2013 faces are enlarged this much (to 192 px) to find their landmarks."""


@dataclass
class FacesBenchResult:
    context: dict = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)


def _detectors(names: list[str]) -> dict[str, object]:
    from classpulse_detector.settings import DetectorSettings

    return {name: DetectorSettings(face_detector=name).face_finder() for name in names}


def _accuracy(predict, crops: list[np.ndarray], labels: list[int]) -> float:
    if not crops:
        return 0.0
    probabilities = predict(np.stack(crops)[..., None])
    return round(float((probabilities.argmax(1) == np.array(labels)).mean()), 4)


def _family_rows(detector, predict, images, labels, family: str, frames: int, seed: int) -> dict:
    rng = random.Random(f"{seed}:{family}")

    def pick() -> tuple[int, np.ndarray]:
        index = rng.randrange(len(images))
        return index, images[index]

    labelled = detected = 0
    pipeline_crops, data_crops, truths, cpu_s = [], [], [], 0.0
    for number in range(frames):
        frame = family_frame(family, number, rng, pick)
        started = time.process_time()
        boxes = detector.detect(frame.gray)
        crops = np.frombuffer(detector.crop(frame.gray, boxes), np.uint8).reshape(-1, 48, 48)
        cpu_s += time.process_time() - started
        labelled, detected = labelled + len(frame.faces), detected + len(boxes)
        for truth, found in matched_guesses([face.box for face in frame.faces], boxes).items():
            index = frame.faces[truth].index
            pipeline_crops.append(crops[found])
            data_crops.append(images[index])
            truths.append(int(labels[index]))
    return {
        "frames": frames,
        "faces": labelled,
        "recall": round(len(truths) / max(labelled, 1), 4),
        "precision": round(len(truths) / max(detected, 1), 4),
        "cpu_ms_per_frame": round(1000 * cpu_s / frames, 1),
        "accuracy_pipeline_crops": _accuracy(predict, pipeline_crops, truths),
        "accuracy_data_set_crops": _accuracy(predict, data_crops, truths),
    }


def _wild_photos(sample: int, seed: int) -> list[tuple[Path, int]]:
    with open(FACES_WILD / "labels.csv", newline="") as stream:
        rows = [(FACES_WILD / "images" / row["file"], int(row["emotion"])) for row in csv.DictReader(stream)]
    return random.Random(seed).sample(rows, min(sample, len(rows))) if sample else rows


def _wild_rows(detector, predict, photos) -> tuple[dict, dict[str, float]]:
    """The found share and accuracy on faces-wild, and (for a landmark detector) the accuracy per framing."""
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
    row = {
        "photos": len(photos),
        "found": round(found / max(len(photos), 1), 4),
        "cpu_ms_per_photo": round(1000 * cpu_s / max(len(photos), 1), 1),
        "accuracy_pipeline_crops": _accuracy(predict, crops, truths),
    }
    by_framing = {}
    if hasattr(detector, "framing"):
        from classpulse_detector.blazeface import aligned_crop
        from classpulse_detector.faces import landmarks_of

        for zoom in ZOOMS:
            for shift in SHIFTS:
                framing = detector.framing.zoomed(zoom, shift)
                framed = [aligned_crop(gray, landmarks_of(box), framing) for gray, box in faces]
                by_framing[f"zoom {zoom:.2f}, shift {shift:+.0f}"] = _accuracy(predict, framed, truths)
    return row, by_framing


def fer_framing(detector, images: np.ndarray, count: int, seed: int) -> dict:
    """Median landmarks (right eye, left eye, nose tip, mouth) of FER2013 faces in their own 48x48 crops, found by
    `detector` on each face enlarged FER_FRAMING_SCALE times inside its halo on a plain backdrop."""
    from classpulse_detector.blazeface import ALIGN_LANDMARKS
    from classpulse_detector.faces import landmarks_of

    rng = random.Random(seed)
    side = 48 * FER_FRAMING_SCALE
    extent = round(side * (1 + 2 * HALO_RATIO)) * 2
    points = []
    for index in rng.sample(range(len(images)), count):
        canvas = background(rng, extent, extent)
        paste_turned(canvas, images[index], (extent // 2, extent // 2), side, 0.0)
        boxes = detector.detect(np.clip(canvas.round(), 0, 255).astype(np.uint8))
        if boxes:
            best = max(boxes, key=lambda box: box[2] * box[3])
            points.append((landmarks_of(best)[:ALIGN_LANDMARKS] - (extent // 2 - side // 2)) / FER_FRAMING_SCALE)
    median = np.median(np.array(points), axis=0).round(1)
    return {"faces": count, "found": len(points), "landmarks_48px": median.tolist()}


def run_faces_bench(
    csv_path: str | None, detectors: list[str], frames: int, wild_sample: int, seed: int
) -> FacesBenchResult:
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv
    from classpulse_training.serving import SINGLE_PASS_SIGNATURE, load_signature, predict_probabilities

    data = load_fer_csv(resolve_fer_csv(csv_path)).split("PublicTest")
    images, labels = data.images[..., 0], data.labels
    signature = load_signature(MODEL_DIR, SINGLE_PASS_SIGNATURE)

    def predict(crops: np.ndarray) -> np.ndarray:
        return predict_probabilities(signature, crops)

    result = FacesBenchResult(context={
        "machine": machine.describe(), "seed": seed, "frames_per_family": frames, "model": str(MODEL_DIR.name),
        "public_test_accuracy_single_pass": _accuracy(predict, list(images), list(labels)),
    })
    layouts = Section(
        "Faces by family of generated layouts",
        note="recall/precision: IoU >= 0.4 with the drawn face; accuracies: on the found faces, the pipeline's crops "
        "vs the same faces' FER2013 crops; cpu: one full scan (no tracking)",
    )
    wild = Section("faces-wild (real photos)", note="found: photos with a face; accuracy: crop of the largest face")
    framing = Section("faces-wild accuracy by framing", note="zoom about the crop's centre, shift down in crop px")
    for name, detector in _detectors(detectors).items():
        for family in families():
            layouts.add(f"{name}: {family}", **_family_rows(detector, predict, images, labels, family, frames, seed))
        if (FACES_WILD / "labels.csv").is_file():
            row, by_framing = _wild_rows(detector, predict, _wild_photos(wild_sample, seed))
            wild.add(name, **row)
            for candidate, accuracy in by_framing.items():
                framing.add(f"{name}: {candidate}", accuracy=accuracy)
        else:
            wild.add(f"{name}: skipped, {FACES_WILD} is absent")
        if hasattr(detector, "framing"):
            result.context[f"fer_framing_{name}"] = fer_framing(detector, images, 300, seed)
    result.sections = [layouts, wild, framing]
    return result
