"""Finding and sampling Kaggle's FER2013 CSV (`emotion,pixels,Usage`, one 48x48 gray face per row).

The CSV is ~300 MB uncompressed, so it is read as a stream and only the rows of the Usage asked for are kept (the
faces themselves drawn from them by reservoir sampling per emotion, reproducible for a given seed). Those rows stay
in memory for the next draw from the same file and Usage (PublicTest: 3,589 rows, ~30 MB): decompressing the CSV
takes seconds, and a process that draws several times (a lesson per class, the test session) reads it once.
"""

from __future__ import annotations

import csv
import functools
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classpulse_core.labels import EMOTIONS
from classpulse_training.fer_csv import open_fer_text

FACE_SIDE = 48

FER_CSV_ENV = "FER2013_CSV"
_REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the shared workspace keeps the data set, next to the repository checkout.
DEFAULT_FER_CSV = _REPO_ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"

_KAGGLE_FER2013 = (
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data"
)


class FerCsvNotFoundError(FileNotFoundError):
    """No FER2013 CSV where we looked; the message says where to get one."""


@dataclass(frozen=True, eq=False)  # pixel arrays make field-wise equality meaningless
class FerFace:
    csv_line: int  # 1-based line number in the CSV (the header is line 1)
    emotion: str
    pixels: np.ndarray  # uint8, shape (48, 48)


def resolve_fer_csv(explicit: str | os.PathLike | None = None) -> Path:
    """The CSV to read: `explicit`, else $FER2013_CSV, else the shared copy next to the repository."""
    if explicit is not None:
        candidate, source = Path(explicit), "--csv"
    elif os.environ.get(FER_CSV_ENV):
        candidate, source = Path(os.environ[FER_CSV_ENV]), f"${FER_CSV_ENV}"
    elif DEFAULT_FER_CSV.is_file():
        return DEFAULT_FER_CSV
    else:
        raise FerCsvNotFoundError(_missing_csv_message(f"no --csv given, ${FER_CSV_ENV} unset, no {DEFAULT_FER_CSV}"))
    if not candidate.is_file():
        raise FerCsvNotFoundError(_missing_csv_message(f"{source} points to {candidate}, which is not a file"))
    return candidate


def _missing_csv_message(reason: str) -> str:
    return (
        f"FER2013 CSV not found ({reason}). Download fer2013.csv from Kaggle ({_KAGGLE_FER2013}), "
        f"plain or gzipped, and pass it with --csv PATH or set {FER_CSV_ENV}=PATH."
    )


def sample_faces(
    csv_path: Path, needed: Mapping[str, int], usage: str, rng: random.Random
) -> dict[str, list[FerFace]]:
    """Up to needed[emotion] faces per emotion, drawn uniformly from the rows whose Usage is `usage`.

    An emotion with fewer matching rows than needed gets all of them; one with none is an error, since the
    class script cannot show it.
    """
    kept: dict[str, list[tuple[int, str]]] = {emotion: [] for emotion, count in needed.items() if count > 0}
    seen = dict.fromkeys(kept, 0)
    for line, emotion, pixels in _usage_rows(csv_path, usage):
        if emotion not in kept:
            continue
        seen[emotion] += 1
        reservoir, capacity = kept[emotion], needed[emotion]
        if len(reservoir) < capacity:
            reservoir.append((line, pixels))
        else:
            slot = rng.randrange(seen[emotion])
            if slot < capacity:
                reservoir[slot] = (line, pixels)
    missing = sorted(emotion for emotion, reservoir in kept.items() if not reservoir)
    if missing:
        raise ValueError(f"{csv_path} has no {usage} rows for emotion(s) {', '.join(missing)}")
    return {
        emotion: [FerFace(line, emotion, _parse_pixels(pixels, line)) for line, pixels in sorted(reservoir)]
        for emotion, reservoir in kept.items()
    }


def _usage_rows(csv_path: Path, usage: str) -> tuple[tuple[int, str, str], ...]:
    """The rows of `usage` (_rows), read once per version of the file: a file rewritten in place is read again."""
    stat = csv_path.stat()
    return _read_usage_rows(csv_path.resolve(), usage, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)  # one file and Usage at a time: what a process draws from, and a bounded memory
def _read_usage_rows(csv_path: Path, usage: str, _mtime_ns: int, _size: int) -> tuple[tuple[int, str, str], ...]:
    return tuple(_rows(csv_path, usage))


def _rows(csv_path: Path, usage: str) -> Iterator[tuple[int, str, str]]:
    """(line number, emotion name, raw pixel string) of each row with the given Usage; pixels are parsed later."""
    with open_fer_text(csv_path) as stream:
        reader = csv.DictReader(stream)
        missing_columns = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing_columns:
            raise ValueError(f"{csv_path} lacks column(s) {sorted(missing_columns)}; is it Kaggle's fer2013.csv?")
        for row in reader:
            if row["Usage"] == usage:
                yield reader.line_num, EMOTIONS[int(row["emotion"])], row["pixels"]


def _parse_pixels(pixels: str, line: int) -> np.ndarray:
    values = np.array(pixels.split(), dtype=np.uint8)
    if values.size != FACE_SIDE * FACE_SIDE:
        raise ValueError(f"CSV line {line}: expected {FACE_SIDE * FACE_SIDE} pixels, got {values.size}")
    return values.reshape(FACE_SIDE, FACE_SIDE)
