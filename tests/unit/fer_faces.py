"""FER2013 PublicTest faces for the detector's unit tests, which draw their frames at run time; the test is skipped
where the data set is absent."""

from __future__ import annotations

import random

import numpy as np
import pytest


def public_test_faces(counts: dict[str, int], seed: int) -> list[np.ndarray]:
    """Faces (48x48 gray) sampled per emotion from PublicTest, in `counts`' order."""
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv, sample_faces

    try:
        csv_path = resolve_fer_csv(None)
    except FerCsvNotFoundError as exc:
        pytest.skip(f"the frames are drawn from FER2013 faces: {exc}")
    picked = sample_faces(csv_path, counts, "PublicTest", random.Random(seed))
    return [face.pixels for group in picked.values() for face in group]
