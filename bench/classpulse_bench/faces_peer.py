"""The fer package (`FER().detect_emotions`, its defaults: Haar cascade and mini-Xception) on the faces bench's own
frames and photos, beside ClassPulse: what a user who picked the simplest peer would read on the same classes.

Per family: the frames `family_frames` draws for the seed (as ingest publishes them: downscaled, through JPEG), given
to fer as BGR; recall and precision by the same matching as ClassPulse's (`faces.face_matches`); fer's accuracy on
the faces it found and on every face shown (a missed face counts as wrong: what a class's numbers are made of); the
emotion shares read from every face it found (the mean of its probabilities, as the raw mean of ClassPulse's) against
those of the faces shown, and over the issue's mixes made of its found faces (`faces.mix_distances`, raw: fer has no
correction). On faces-wild: the share of photos with a face found and its accuracy on the largest face.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from classpulse_bench.face_layouts import family_frames
from classpulse_bench.faces import MIX_CLASSES, face_matches, mix_distances, shares_off
from classpulse_bench.peers import FerFace
from classpulse_core.labels import EMOTIONS

FaceReader = Callable[[np.ndarray], list[FerFace]]


def family_row(read: FaceReader, images: np.ndarray, labels: np.ndarray, family: str, frames: int, seed: int) -> dict:
    """fer's figures on the `frames` frames of `family` for `seed`: the frames ClassPulse's row is measured on."""
    labelled = detected = 0
    found, found_labels, every, shown, cpu_s = [], [], [], [], 0.0
    for frame in family_frames(images, family, frames, seed):
        bgr = cv2.cvtColor(frame.gray, cv2.COLOR_GRAY2BGR)
        started = time.process_time()
        faces = read(bgr)
        cpu_s += time.process_time() - started
        labelled, detected = labelled + len(frame.faces), detected + len(faces)
        every.extend(probabilities for _, probabilities in faces)
        shown.extend(int(labels[face.index]) for face in frame.faces)
        for truth, match in face_matches([face.box for face in frame.faces], [box for box, _ in faces]).items():
            found.append(faces[match][1])
            found_labels.append(int(labels[frame.faces[truth].index]))
    probabilities = np.array(found).reshape(-1, len(EMOTIONS))
    right = int((probabilities.argmax(1) == np.array(found_labels, dtype=int)).sum())
    return {
        "frames": frames,
        "faces": labelled,
        "recall": round(len(found) / max(labelled, 1), 4),
        "precision": round(len(found) / max(detected, 1), 4),
        "cpu_ms_per_frame": round(1000 * cpu_s / frames, 1),
        "accuracy_found_faces": round(right / max(len(found), 1), 4),
        "accuracy_faces_shown": round(right / max(labelled, 1), 4),
        **(shares_off(np.mean(every, axis=0), shown, None) if every and shown else {"shares_tvd_raw": None}),
        **mix_distances(
            None, probabilities, np.array(found_labels, dtype=int), MIX_CLASSES, random.Random(f"{seed}:{family}:mixes")
        ),
    }


def wild_row(read: FaceReader, photos: list[tuple[Path, int]]) -> dict:
    """The share of faces-wild's `photos` (path, label) fer finds a face in, and its accuracy on the largest face."""
    found = right = 0
    cpu_s = 0.0
    for path, label in photos:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        started = time.process_time()
        faces = read(bgr)
        cpu_s += time.process_time() - started
        if faces:
            found += 1
            _, probabilities = max(faces, key=lambda face: face[0][2] * face[0][3])
            right += int(np.argmax(probabilities)) == label
    return {
        "photos": len(photos),
        "found": round(found / max(len(photos), 1), 4),
        "cpu_ms_per_photo": round(1000 * cpu_s / max(len(photos), 1), 1),
        "accuracy_largest_face": round(right / max(found, 1), 4),
        "accuracy_every_photo": round(right / max(len(photos), 1), 4),
    }
