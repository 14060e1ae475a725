"""Reading and validating Kaggle-format FER2013 CSV files (``emotion,pixels,Usage``), plain or gzipped.

``check_fer_csv`` never raises on bad rows: it returns every valid row plus one ``RowProblem`` per bad row,
so the data report can summarise a broken file. ``load_fer_csv`` is the strict loader built on it.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .labels import IMAGE_SIDE, NUM_CLASSES, PIXELS_PER_IMAGE

EXPECTED_COLUMNS = ("emotion", "pixels", "Usage")
_UNREADABLE = (OSError, EOFError, UnicodeDecodeError, csv.Error)


class FerCsvError(ValueError):
    """The file is not a valid FER2013 CSV; the message names the offending line(s)."""


@dataclass(frozen=True)
class RowProblem:
    line: int  # 1-based line number in the file (the header is line 1)
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class FerData:
    images: np.ndarray  # uint8 [N, 48, 48, 1]
    labels: np.ndarray  # int32 [N], 0..6 in EMOTIONS order
    usage: np.ndarray  # str [N]: Training / PublicTest / PrivateTest
    lines: np.ndarray  # int64 [N], the file line each row came from

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray | slice) -> FerData:
        return FerData(self.images[keep], self.labels[keep], self.usage[keep], self.lines[keep])

    def split(self, usage: str) -> FerData:
        return self.subset(self.usage == usage)

    def with_rows_of(self, other: FerData, usage: str) -> FerData:
        """These rows, then `other`'s rows of `usage` (their `lines` are `other`'s file's)."""
        extra = other.split(usage)
        return FerData(*(np.concatenate([mine, theirs]) for mine, theirs in (
            (self.images, extra.images), (self.labels, extra.labels), (self.usage, extra.usage), (self.lines, extra.lines),
        )))

    @property
    def usages(self) -> list[str]:
        """Usage values in order of first appearance (Training, PublicTest, PrivateTest for the Kaggle file)."""
        _, first = np.unique(self.usage, return_index=True)
        return [str(self.usage[i]) for i in sorted(first)]


@dataclass(frozen=True)
class CheckedCsv:
    data: FerData  # the valid rows only
    problems: list[RowProblem]


_GZIP_MAGIC = b"\x1f\x8b"


def open_fer_text(path: Path) -> io.TextIOBase:
    """Text handle for a plain or gzipped CSV, told apart by content, not name (newline="" as csv requires)."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _parse_row(row: list[str]) -> tuple[int, np.ndarray, str]:
    """Parse one data row; raises ValueError with a human-readable reason."""
    if len(row) != len(EXPECTED_COLUMNS):
        raise ValueError(f"expected {len(EXPECTED_COLUMNS)} fields, found {len(row)}")
    emotion_text, pixel_text, usage = (field.strip() for field in row)
    try:
        label = int(emotion_text)
    except ValueError:
        raise ValueError(f"emotion {emotion_text!r} is not an integer") from None
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"emotion {label} is outside 0-{NUM_CLASSES - 1}")
    tokens = pixel_text.split()
    if len(tokens) != PIXELS_PER_IMAGE:
        raise ValueError(f"expected {PIXELS_PER_IMAGE} pixels, found {len(tokens)}")
    try:
        pixels = np.array(tokens, dtype=np.int32)
    except ValueError:
        bad = next(t for t in tokens if not t.isdigit())
        raise ValueError(f"pixel value {bad!r} is not an integer") from None
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixel values must lie in 0-255")
    if not usage:
        raise ValueError("Usage is empty")
    return label, pixels.astype(np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE, 1), usage


def _readable_rows(reader, problems: list[RowProblem]) -> Iterator[tuple[int, list[str]]]:
    """(line number where the row ends, fields) for every non-blank row, header included.

    An unreadable tail (truncated gzip, undecodable bytes) ends the rows with one problem at the line reached,
    so everything before it is still used.
    """
    try:
        for row in reader:
            if row:  # blank lines carry nothing
                yield reader.line_num, row
    except _UNREADABLE as error:
        problems.append(RowProblem(reader.line_num + 1, f"cannot read further: {error}"))


def _header_problem(header: tuple[int, list[str]] | None) -> RowProblem | None:
    if header is None:
        return None  # an empty file: load_fer_csv reports "no data rows"
    line, row = header
    columns = tuple(c.strip() for c in row)
    if columns != EXPECTED_COLUMNS:
        return RowProblem(line, f"header must be {','.join(EXPECTED_COLUMNS)}, found {','.join(columns)!r}")
    return None


def check_fer_csv(path: str | Path) -> CheckedCsv:
    """Read every row, keeping the valid ones and describing each invalid one by its line number.

    A wrong header is reported as a problem on its line and no rows are read, since columns cannot be trusted.
    """
    labels: list[int] = []
    images: list[np.ndarray] = []
    usages: list[str] = []
    lines: list[int] = []
    problems: list[RowProblem] = []
    with open_fer_text(Path(path)) as handle:
        rows = _readable_rows(csv.reader(handle), problems)
        header_problem = _header_problem(next(rows, None))
        if header_problem:
            problems.append(header_problem)
            rows = iter(())
        for line, row in rows:
            try:
                label, image, usage = _parse_row(row)
            except ValueError as error:
                problems.append(RowProblem(line, str(error)))
                continue
            labels.append(label)
            images.append(image)
            usages.append(usage)
            lines.append(line)
    data = FerData(
        images=np.stack(images) if images else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE, 1), np.uint8),
        labels=np.array(labels, dtype=np.int32),
        usage=np.array(usages, dtype=str),
        lines=np.array(lines, dtype=np.int64),
    )
    return CheckedCsv(data, problems)


def load_fer_csv(path: str | Path, max_reported: int = 10) -> FerData:
    """Load a FER2013 CSV, raising ``FerCsvError`` naming the bad lines if any row is invalid."""
    checked = check_fer_csv(path)
    if checked.problems:
        shown = "; ".join(str(p) for p in checked.problems[:max_reported])
        more = len(checked.problems) - max_reported
        suffix = f" (and {more} more)" if more > 0 else ""
        raise FerCsvError(f"{path}: {len(checked.problems)} invalid row(s): {shown}{suffix}")
    if len(checked.data) == 0:
        raise FerCsvError(f"{path}: no data rows")
    return checked.data


def load_training_csvs(csv: str | Path, extra_training_csv: str | Path | None, train_usage: str) -> FerData:
    """`csv`'s rows, and after them the `train_usage` rows of `extra_training_csv` when one is named: what a run
    trains on and what its export re-estimates the batch-norm statistics on."""
    data = load_fer_csv(csv)
    return data.with_rows_of(load_fer_csv(extra_training_csv), train_usage) if extra_training_csv else data


def write_fer_csv(path: str | Path, images: np.ndarray, labels: np.ndarray, usage: np.ndarray | list[str]) -> Path:
    """Write rows in the Kaggle format (gzipped when the name ends in .gz); the inverse of ``load_fer_csv``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EXPECTED_COLUMNS)
        for image, label, split in zip(images, labels, usage, strict=True):
            writer.writerow([int(label), " ".join(map(str, image.reshape(-1).tolist())), split])
    return path
