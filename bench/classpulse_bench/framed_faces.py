"""FER2013's faces framed as the pipeline frames a face, for training (`python -m classpulse_bench framed-faces`).

FER2013 framed each face its own way (some larger, some off centre, some tilted), and a model trained on those crops
reads part of an emotion from that framing, which no crop of a real face has: the detector cuts every face by its
landmarks (docs/face-detection.md, "Which part of FER2013's own framing the landmarks miss"). Here each face is
enlarged inside its halo on a generated backdrop, as the faces bench draws faces into frames, found by the webcam
finder's network in one run on a square around it, and cut by its landmarks with `FER_FRAMING` (on an enlarged
FER2013 crop, what `REAL_FACE_FRAMING` is on a real face). Version 8's network fine-tuned on these faces beside the
originals reads the pipeline's crops of the generated families 1.4-1.8 +- 0.5 points better on the crop replay's
seeds 30-32 and 0.4 +- 0.3 on seeds 19-22: served as version 9 (training/README.md, "Training faces framed as the
pipeline frames them"). The file written is Kaggle's layout, for a training config's
`extra_training_csv`; it holds faces, so it belongs under training/runs/ or another ignored folder, never in git.
With `through_losses` every face is written a second time, drawn through one of the generated families' losses
(`LOSSES`) before it is found and cut as the detector cuts it (a blurred face's crop sharpened): what the pipeline
gives the model from a noisy, blurred, badly lit or hard-JPEG frame.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classpulse_bench.face_layouts import enlarged_on_backdrop, family_loss, jpeg_round_trip
from classpulse_detector.blazeface import FER_FRAMING, BlazeFaceDetector, face_of, weighted_nms

ENLARGED = 2
"""A face is drawn this many times its 48 px: its landmarks are read at the same size in the network's input
whatever the enlarging (the square below), and the halo's blur costs the square of the side."""
SQUARE_FILL = 0.6
"""The face fills this share of the square the network runs on, as a frame's short side fills the network's input at
the pyramid's top level (blazeface.TOP_FILL)."""
MIN_SCORE = 0.3
"""A FER2013 face is there by construction: a low score only says the network is unsure where its landmarks are."""
# Not yet the same reading as FER_FRAMING's: on 300 PublicTest faces the landmarks of this one run at ENLARGED sit
# 0.4-0.6 px right of, and 0.3-0.8 px below, those of the finder's whole pyramid on the face enlarged 4 times
# (`faces.fer_framing`), so these crops are cut about half a pixel off FER_FRAMING's framing. Reading them as
# fer_framing does costs ~8x the time (the 4x halo's blur and the pyramid); the recipe's figures were measured as is.
LOSSES = ("noise", "blur", "lighting", "jpeg")
"""The families' losses (`face_layouts.family_loss`) a face is drawn through with `through_losses`: row i's is the
(i mod 4)th, so each loss gets a quarter of the rows."""
LOSS_SIDES = (32, 160)
"""A face drawn through a loss is drawn this many px wide (log-uniform), as the degraded families' faces are (seed
19's: 5th to 95th percentile 27-205 px, median 70-95): a loss costs a small face most (a blur's sigma, JPEG's
blocks are frame pixels)."""


@dataclass(frozen=True)
class FramedFaces:
    images: np.ndarray
    """[N, 48, 48] uint8: the faces found, cut by their landmarks."""
    rows: np.ndarray
    """[N] the rows of the input they came from."""


def landmark_framed(
    finder: BlazeFaceDetector, face: np.ndarray, seed: int | str, loss: str | None = None
) -> np.ndarray | None:
    """The 48x48 `face` cut as the detector cuts a face it finds (None where its network finds no face); where a
    `loss` is named, drawn LOSS_SIDES wide and through that family's loss and JPEG."""
    rng = random.Random(seed)
    side = face.shape[0] * ENLARGED if loss is None else round(math.exp(rng.uniform(*map(math.log, LOSS_SIDES))))
    gray = enlarged_on_backdrop(rng, face, side)
    if loss is not None:
        gray = jpeg_round_trip(*family_loss(loss, rng, gray))
    half, centre = round(side / SQUARE_FILL / 2), gray.shape[0] // 2
    square = (centre - half, centre - half, 2 * half, 2 * half)
    found = weighted_nms(finder.network.run(gray, square, finder.network.model.side / (2 * half), MIN_SCORE))
    if not len(found.scores):
        return None
    best = int(np.argmax(found.scores))
    return finder.model_crop(gray, face_of(found.boxes[best], found.landmarks[best], gray.shape), FER_FRAMING)


def framed_faces(finder: BlazeFaceDetector, faces: np.ndarray, through_losses: bool = False) -> FramedFaces:
    """Every face of `faces` ([N, 48, 48] uint8) that the network finds, cut by its landmarks (row i's backdrop drawn
    from seed i, so a file is written the same every time), and with `through_losses` once more through its loss of
    LOSSES; blank images are skipped."""
    images, rows = [], []
    for row, face in enumerate(faces):
        if face.std() == 0:
            continue
        drawings: list[tuple[int | str, str | None]] = [(row, None)]
        if through_losses:
            drawings.append((f"{row}:loss", LOSSES[row % len(LOSSES)]))
        for seed, loss in drawings:
            framed = landmark_framed(finder, face, seed, loss)
            if framed is not None:
                images.append(framed)
                rows.append(row)
    return FramedFaces(np.array(images, np.uint8).reshape(-1, *faces.shape[1:3]), np.array(rows, np.int64))


def write_framed_csv(
    csv_path: str | None, out: Path, usage: str = "Training", through_losses: bool = False
) -> tuple[int, int]:
    """The `usage` rows of the FER2013 CSV (default: $FER2013_CSV, then the shared copy) framed by their landmarks
    (`framed_faces`), written to `out` in Kaggle's layout: (rows read, rows written)."""
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_detector.settings import DetectorSettings
    from classpulse_training.fer_csv import load_fer_csv, write_fer_csv

    data = load_fer_csv(resolve_fer_csv(csv_path)).split(usage)
    finder = DetectorSettings(personal_face_detector="blazeface").face_finder("personal")
    framed = framed_faces(finder, data.images[..., 0], through_losses)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_fer_csv(out, framed.images, data.labels[framed.rows], [usage] * len(framed.rows))
    return len(data), len(framed.rows)
