"""Every committed training config loads, and a distilled one is reproducible by `make train` alone."""

from pathlib import Path

import pytest

from classpulse_training.cli import CONFIGS_DIR, REPO_ROOT
from classpulse_training.config import load_config
from classpulse_training.model import build_model, count_macs

pytestmark = pytest.mark.unit

CONFIGS = sorted(CONFIGS_DIR.glob("*.json"))
SERVED_MACS_CAP = 60_000_000  # issue 20: at most 120 MFLOPs a face through the signature the classifier calls


def test_configs_are_found():
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads(path: Path):
    config = load_config(path)
    assert config.epochs > 0 and config.train_usage != config.val_usage


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if load_config(p).distillation.enabled], ids=lambda p: p.stem
)
def test_a_distilled_config_names_committed_teachers_and_fits_the_served_cost(path: Path):
    config = load_config(path)
    for teacher in config.distillation.teachers:
        assert (CONFIGS_DIR / f"{teacher}.json").exists(), f"{path.name}: teacher {teacher} has no committed config"
        assert not load_config(CONFIGS_DIR / f"{teacher}.json").distillation.enabled  # no chains of students
    assert count_macs(build_model(config.model)) <= SERVED_MACS_CAP


@pytest.mark.parametrize("path", [p for p in CONFIGS if load_config(p).init_from], ids=lambda p: p.stem)
def test_a_fine_tune_starts_from_a_committed_run_or_version_of_the_same_network(path: Path):
    from classpulse_training.initial_weights import is_version, source_dir
    from classpulse_training.versions import REPO_ROOT

    config = load_config(path)
    if is_version(config.init_from):
        assert (source_dir(config.init_from, REPO_ROOT) / "metrics.json").exists(), f"{path.name}: no such version"
        return
    start = CONFIGS_DIR / f"{config.init_from}.json"
    assert start.exists(), f"{path.name}: start run {config.init_from} has no committed config"
    assert load_config(start).model == config.model


@pytest.mark.parametrize("path", [p for p in CONFIGS if load_config(p).extra_training_csv], ids=lambda p: p.stem)
def test_extra_training_faces_are_read_from_an_ignored_folder(path: Path):
    """The extra rows are faces (classpulse_bench.framed_faces): the project ships code, not faces."""
    import subprocess

    extra = load_config(path).extra_training_csv
    assert not Path(extra).is_absolute() and extra.startswith("training/runs/")
    ignored = subprocess.run(["git", "check-ignore", "-q", extra], cwd=REPO_ROOT, check=False)
    assert ignored.returncode == 0, f"{path.name}: {extra} would be committed"


def test_a_committed_versions_card_says_which_extra_rows_it_learnt_from():
    import json

    from classpulse_training.model_card import render_model_card

    models = REPO_ROOT / "models" / "emotion"
    cards = {}
    for version in ("8", "9"):
        metrics = models / version / "metrics.json"
        if not metrics.is_file():
            pytest.skip(f"version {version} is not exported under {models}")
        cards[version] = render_model_card(json.loads(metrics.read_text()))
    assert "framed again as the detector frames a face" not in cards["8"]  # FER2013's rows alone
    assert "fer2013-framed-training.csv.gz`: the same faces framed again" in cards["9"]


def test_training_refuses_a_config_whose_extra_faces_are_missing_and_names_the_command(tmp_path):
    import json

    from classpulse_training.cli import main

    config = json.loads((CONFIGS_DIR / "emotion-v9-framed.json").read_text())
    missing = tmp_path / "runs" / "framed.csv.gz"
    (tmp_path / "config.json").write_text(json.dumps({**config, "extra_training_csv": str(missing)}))
    with pytest.raises(SystemExit) as refused:
        main(["train", "--config", str(tmp_path / "config.json"), "--run", "r", "--runs-dir", str(tmp_path / "runs")])
    assert f"python -m classpulse_bench framed-faces --write-csv {missing}" in str(refused.value)
    assert not (tmp_path / "runs" / "r").exists()  # refused before a run folder is made
