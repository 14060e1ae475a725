"""Dataset statistics behind the data report: class balance, duplicates and near-blank images (pure numpy)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .fer_csv import FerData
from .labels import NUM_CLASSES

HASH_GRID = 8  # average hash over an 8x8 downscale (6x6-pixel blocks of the 48x48 face)
NEAR_DUPLICATE_MAX_MEAN_ABS_DIFF = 12.0  # gray levels, averaged over the 48x48 pixels
NEAR_BLANK_MAX_STD = 8.0  # gray levels: flat images with no visible face


def class_counts(data: FerData) -> dict[str, np.ndarray]:
    """Rows per emotion for each Usage split, in order of first appearance."""
    return {usage: np.bincount(data.split(usage).labels, minlength=NUM_CLASSES) for usage in data.usages}


def imbalance_ratio(counts: np.ndarray) -> float:
    """Largest class over smallest non-empty class."""
    present = counts[counts > 0]
    return float(present.max() / present.min()) if len(present) else 0.0


def _groups_of_equal_keys(keys: list[bytes]) -> list[np.ndarray]:
    members: dict[bytes, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        members[key].append(index)
    return [np.array(group) for group in members.values() if len(group) > 1]


def exact_duplicate_groups(images: np.ndarray) -> list[np.ndarray]:
    """Row indices of images whose 2,304 pixels are byte-for-byte identical (groups of 2 or more)."""
    return _groups_of_equal_keys([hashlib.sha1(image.tobytes(), usedforsecurity=False).digest() for image in images])


def average_hashes(images: np.ndarray) -> list[bytes]:
    """64-bit average hash: 8x8 block means, one bit per block brighter than the image's mean."""
    n, side = len(images), images.shape[1]
    block = side // HASH_GRID
    small = images.reshape(n, HASH_GRID, block, HASH_GRID, block).mean(axis=(2, 4))
    bits = small > small.mean(axis=(1, 2), keepdims=True)
    return [np.packbits(b).tobytes() for b in bits]


def near_duplicate_groups(
    images: np.ndarray, max_mean_abs_diff: float = NEAR_DUPLICATE_MAX_MEAN_ABS_DIFF
) -> list[np.ndarray]:
    """Groups of near-identical images (exact copies included).

    Candidates share an average hash; within a candidate set, images join the first image ("anchor") whose mean
    absolute pixel difference to them is below max_mean_abs_diff, so re-encoded or slightly re-cropped copies
    group together while faces that merely look alike at 8x8 do not.
    """
    groups = []
    for candidates in _groups_of_equal_keys(average_hashes(images)):
        remaining = list(candidates)
        while len(remaining) > 1:
            anchor = images[remaining[0]].astype(np.float32)
            diffs = np.array([np.abs(images[i].astype(np.float32) - anchor).mean() for i in remaining])
            close = diffs < max_mean_abs_diff
            if close.sum() > 1:
                groups.append(np.array(remaining)[close])
            remaining = [i for i, c in zip(remaining, close, strict=True) if not c]
    return groups


def redundant_rows(groups: list[np.ndarray]) -> int:
    """Rows beyond the first of each group: what deduplication would remove."""
    return int(sum(len(g) - 1 for g in groups))


def near_blank_rows(images: np.ndarray, max_std: float = NEAR_BLANK_MAX_STD) -> np.ndarray:
    """Indices of images whose pixel standard deviation is below max_std."""
    return np.flatnonzero(images.reshape(len(images), -1).std(axis=1) < max_std)


@dataclass(frozen=True)
class GroupSummary:
    groups: list[np.ndarray]
    redundant: int
    across_splits: int  # groups with members in more than one Usage split (train/test leakage)
    conflicting_labels: int  # groups whose members carry different emotions

    @classmethod
    def of(cls, groups: list[np.ndarray], data: FerData) -> GroupSummary:
        return cls(
            groups=groups,
            redundant=redundant_rows(groups),
            across_splits=sum(len(set(data.usage[g])) > 1 for g in groups),
            conflicting_labels=sum(len(set(data.labels[g])) > 1 for g in groups),
        )
