"""A version folder rewritten in place (staged_version with replacing=True: labels added, warm-up written again) is
never lost: swapped with the old one in one step (Linux), and, where two renames do it, not when the rewrite stops between
them, nor when a killed run left it set aside."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from classpulse_training import versions
from classpulse_training.versions import staged_version

pytestmark = pytest.mark.unit


def _version(base: Path, number: int = 9) -> Path:
    version_dir = base / str(number)
    (version_dir / "variables").mkdir(parents=True)
    (version_dir / "saved_model.pb").write_text("the served graph")
    (version_dir / "variables" / "variables.index").write_text("its weights")
    return version_dir


def _files(version_dir: Path) -> dict[str, str]:
    return {path.relative_to(version_dir).as_posix(): path.read_text() for path in version_dir.rglob("*") if path.is_file()}


@pytest.mark.skipif(sys.platform != "linux", reason="the folders are swapped in one step on Linux (renameat2)")
def test_a_rewritten_version_takes_the_old_ones_place_in_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old folder was renamed aside, then the new one into place: for the moment between the two renames the
    version was gone, and a model server polling then unloaded it (and loaded it again at its next poll). The two are
    now swapped in one step: the version folder is never renamed away."""
    version_dir = _version(tmp_path)
    rename = Path.rename

    def never_away(self: Path, target: Path) -> Path:
        assert self != version_dir, "the version folder was renamed away: for a moment there was none"
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", never_away)
    with staged_version(version_dir, replacing=True) as staged:
        (staged / "saved_model.pb").write_text("the graph with its labels")

    assert _files(version_dir) == {"saved_model.pb": "the graph with its labels", "variables/variables.index": "its weights"}
    assert [path.name for path in tmp_path.iterdir()] == ["9"]


def test_a_rewrite_stopped_between_its_renames_puts_the_version_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the system cannot swap two folders in one step: Ctrl-C lands after the old folder is renamed aside and
    before the new one is renamed into place (or that rename fails): the old folder goes back, and nothing of the
    rewrite is left beside it."""
    monkeypatch.setattr(versions, "_exchanged", lambda first, second: False)
    version_dir = _version(tmp_path)
    before = _files(version_dir)
    rename = Path.rename
    interrupted: list[Path] = []

    def interrupted_into_place(self: Path, target: Path) -> Path:
        if Path(target) == version_dir and not interrupted:
            interrupted.append(self)
            raise KeyboardInterrupt
        return rename(self, target)

    with pytest.raises(KeyboardInterrupt):
        with staged_version(version_dir, replacing=True) as staged:
            (staged / "saved_model.pb").write_text("a graph half-way through its rewrite")
            monkeypatch.setattr(Path, "rename", interrupted_into_place)
    monkeypatch.undo()

    assert interrupted, "the rewrite never reached its renames"
    assert _files(version_dir) == before
    assert [path.name for path in tmp_path.iterdir()] == ["9"]


def test_a_version_a_killed_rewrite_left_set_aside_is_put_back_by_the_next_one(tmp_path: Path) -> None:
    """A run killed between the two renames (SIGKILL, a power cut: no cleanup runs) leaves the version only in its
    hidden staging folder, which no model server reads: the next write of that version puts it back first."""
    version_dir = _version(tmp_path)
    before = _files(version_dir)
    with staged_version(version_dir, replacing=True):
        staging = next(path for path in tmp_path.iterdir() if path.name != "9")
    staging.mkdir()
    version_dir.rename(staging / "replaced")  # what a run killed between its two renames leaves

    with staged_version(version_dir, replacing=True) as staged:
        assert _files(staged) == before
        (staged / "assets.extra").mkdir()
        (staged / "assets.extra" / "tf_serving_warmup_requests").write_text("written again")

    assert _files(version_dir) == {**before, "assets.extra/tf_serving_warmup_requests": "written again"}
    assert [path.name for path in tmp_path.iterdir()] == ["9"]
