"""models/emotion/<integer version>/ directories, the layout TF Serving watches."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models" / "emotion"


def version_dirs(base: Path = MODELS_DIR) -> list[Path]:
    """Integer-named subdirectories, oldest version first."""
    if not base.exists():
        return []
    return sorted((p for p in base.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def latest_version_dir(base: Path = MODELS_DIR) -> Path:
    versions = version_dirs(base)
    if not versions:
        raise FileNotFoundError(f"no exported model under {base}; run `python -m classpulse_training export` first")
    return versions[-1]


def next_version(base: Path = MODELS_DIR) -> int:
    versions = version_dirs(base)
    return int(versions[-1].name) + 1 if versions else 1


STAGING_PREFIX = ".writing-"
SET_ASIDE = "replaced"
"""A replaced version's folder, in the staging folder, between the two renames."""


@contextmanager
def staged_version(version_dir: Path, *, replacing: bool = False) -> Iterator[Path]:
    """A folder named as `version_dir`, in a hidden one beside it, moved into place in one rename once everything is
    written in it. TF Serving watches the base path: a version folder written in place is loaded as soon as it
    appears, its variables maybe half-written, its warm-up requests not yet there; and a write that fails halfway
    would leave a version to be served. Names that are not integers are no versions to it.

    `replacing`: the folder starts as a copy of the existing `version_dir`, and takes its place: the two swapped in one
    step where the system can (Linux), else the old one renamed aside and the new one into place, so a server looking
    at the base path sees the old version whole or the new one whole (with two renames, for the moment between them,
    none), never one half-written. Without it, a `version_dir` that exists is an error: versions are immutable once
    served."""
    version_dir.parent.mkdir(parents=True, exist_ok=True)
    _put_back_set_aside(version_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{version_dir.name}-", dir=version_dir.parent))
    set_aside = staging / SET_ASIDE
    try:
        staged = staging / version_dir.name
        if replacing:
            shutil.copytree(version_dir, staged)
        else:
            staged.mkdir()
        yield staged
        if not replacing and version_dir.exists():
            raise FileExistsError(f"{version_dir} appeared while it was written; versions are immutable, pick a new one")
        if not replacing:
            staged.rename(version_dir)
        elif not _exchanged(staged, version_dir):  # swapped, the old folder is removed with the staging folder
            version_dir.rename(set_aside)
            staged.rename(version_dir)
    finally:
        # Stopped between the two renames (the second failed, or Ctrl-C came), the old folder is only in the staging
        # folder about to be removed: it goes back first.
        if set_aside.exists() and not version_dir.exists():
            set_aside.rename(version_dir)
        shutil.rmtree(staging)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchanged(first: Path, second: Path) -> bool:
    """Swaps two folders in one step (Linux's renameat2 with RENAME_EXCHANGE); False, nothing changed, where the C
    library or the filesystem cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(first), None, str(second))


def _put_back_set_aside(version_dir: Path) -> None:
    """A run killed between its two renames (no cleanup ran) left `version_dir` set aside in its staging folder,
    where no model server looks: it goes back before anything else is written, and that run's staging folder goes."""
    if version_dir.exists():
        return
    left = next(version_dir.parent.glob(f"{STAGING_PREFIX}{version_dir.name}-*/{SET_ASIDE}"), None)
    if left is not None:
        left.rename(version_dir)
        shutil.rmtree(left.parent)
