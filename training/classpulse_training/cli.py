"""Command line: ``python -m classpulse_training {train,evaluate,export,quantification,restore-run,add-labels,data-report}``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .class_mixes import CLASSES_PER_MIX
from .versions import REPO_ROOT

# Quiet TensorFlow's C++ start-up chatter before it is imported (lazily, by the command handlers).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_RUNS_DIR = REPO_ROOT / "training" / "runs"
CONFIGS_DIR = REPO_ROOT / "training" / "configs"


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train the emotion CNN (checkpoints every epoch; --resume continues)")
    p.add_argument("--config", type=Path, help="JSON training config (see training/configs/)")
    p.add_argument("--run", required=True, help=f"run name; files go to {DEFAULT_RUNS_DIR}/<run>/")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.add_argument("--csv", help="override config.csv")
    p.add_argument("--epochs", type=int, help="override config.epochs")
    p.add_argument("--seed", type=int, help="override config.seed")
    p.add_argument("--batch-size", type=int, help="override config.batch_size")
    p.add_argument("--limit-train-rows", type=int, help="override config.limit_train_rows (smoke runs)")
    p.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from .config import load_config
    from .run_files import RunFiles
    from .train import train

    run_dir = args.runs_dir / args.run
    # A resumed run keeps the config it started with, so the LR schedule and data order stay the same.
    config_path = RunFiles(run_dir).config if args.resume and RunFiles(run_dir).config.exists() else args.config
    config = load_config(config_path).with_overrides(
        csv=args.csv, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
        limit_train_rows=args.limit_train_rows,
    )
    if config.extra_training_csv and not Path(config.extra_training_csv).is_file():
        raise SystemExit(
            f"{config.extra_training_csv}, the extra training faces the config names, is missing: write it first with"
            f" `python -m classpulse_bench framed-faces --write-csv {config.extra_training_csv}` (training/README.md,"
            " \"Training faces framed as the pipeline frames them\", says which options each recipe's file takes)"
        )
    from .initial_weights import is_version

    starts = [config.init_from] if config.init_from and not is_version(config.init_from) else []
    for needed in [*config.distillation.teachers, *starts]:
        _finish_needed_run(needed, args.runs_dir, args.csv)
    result = train(config, run_dir, resume=args.resume)
    print(f"best {config.val_usage} accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch}; run in {run_dir}")
    return 0


def _finish_needed_run(name: str, runs_dir: Path, csv: str | None) -> None:
    """A run this one builds on (a distilled run's teacher, a fine-tune's start) trained to its last epoch first
    (started, resumed or left as it is), from its own committed config, so that one `make train` reproduces the whole
    recipe."""
    from .config import load_config
    from .run_files import RunFiles, read_json
    from .train import train

    files = RunFiles(runs_dir / name)
    config_path = files.config if files.config.exists() else CONFIGS_DIR / f"{name}.json"
    if not config_path.exists():
        return  # not one of ours (e.g. restored from a version): the student's run checks that it is complete
    config = load_config(config_path).with_overrides(csv=csv)
    if len(read_json(files.history, [])) >= config.epochs and files.best_weights.exists():
        return
    logging.getLogger(__name__).info("training %s first, as this run builds on it (%s)", name, config_path)
    train(config, files.root, resume=True)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score an exported model on a Kaggle-format CSV through its serving signature")
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--usage", action="append", help="Usage split(s) to score, or 'all' (default: every non-Training split)")
    p.add_argument("--model", type=Path, help="models/emotion/<version> (default: the latest version)")
    p.add_argument("--out", type=Path, help="figure folder (default: training/runs/evaluate/v<version>/)")
    p.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> int:
    import json

    from .evaluate import default_usages, evaluate
    from .fer_csv import load_fer_csv
    from .versions import latest_version_dir

    model_dir = args.model or latest_version_dir()
    data = load_fer_csv(args.csv)
    out_dir = args.out or DEFAULT_RUNS_DIR / "evaluate" / f"v{model_dir.name}"
    tables, summary = evaluate(model_dir, data, args.usage or default_usages(data), out_dir)
    print(tables)
    print(f"figures: {', '.join(summary['figures'])}")
    print(json.dumps({k: v for k, v in summary.items() if k != "figures"}))
    return 0


def _add_quantification(sub) -> None:
    p = sub.add_parser(
        "quantification",
        help="write models/emotion/<v>/quantification.json (what the API corrects class shares with) and its card section",
    )
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--model", type=Path, help="models/emotion/<version> (default: the latest version)")
    p.add_argument("--usage", default="PublicTest", help="held-out split M is measured on (default %(default)s)")
    p.add_argument("--train-usage", default="Training", help="the split the model learnt from, for its class prior")
    p.set_defaults(handler=_run_quantification)


def _run_quantification(args) -> int:
    import json

    from .export import METRICS_FILE
    from .fer_csv import load_fer_csv
    from .model_card import write_model_card
    from .quantification import signature_probabilities, write_quantification
    from .versions import latest_version_dir

    model_dir = args.model or latest_version_dir()
    data = load_fer_csv(args.csv)
    held_out = data.split(args.usage)
    document = write_quantification(
        model_dir, signature_probabilities(model_dir, held_out.images), held_out.labels,
        data.split(args.train_usage).labels, args.usage,
    )
    write_model_card(json.loads((model_dir / METRICS_FILE).read_text()), model_dir)
    print(json.dumps({"model": str(model_dir)} | document["class_mix_check"]["mean"]))
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a run's best checkpoint as models/emotion/<version>/ (SavedModel)")
    p.add_argument("--run", required=True, action="append",
                   help="training run name under --runs-dir; twice or more: export the runs' networks as one ensemble")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    p.add_argument("--version", type=int, help="version number (default: one above the latest)")
    p.add_argument("--models-dir", type=Path, help="default: models/emotion/")
    p.add_argument("--csv", help="selection data (default: the run's config.csv)")
    p.add_argument("--flip", choices=("auto", "on", "off"), default="auto",
                   help="test-time flip averaging; auto = on only if it gains at least --min-flip-gain accuracy")
    p.add_argument("--min-flip-gain", type=float, default=0.005)
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16"), default="float32",
                   help="arithmetic inside the SavedModel: float32 runs on every CPU, and TF Serving computes it in "
                   "bfloat16 where that pays (--mixed_precision=bfloat16: ~2.5x with AMX or on AMD Zen 4); bfloat16 bakes "
                   "bfloat16 in everywhere, 1.7-1.8x slower on a CPU with AVX512-BF16 but no AMX")
    p.add_argument("--bn-stats", choices=("auto", "training", "kept"), default="auto",
                   help="batch-norm statistics: re-estimated on the un-augmented training faces (training), as training "
                        "left them (kept), or re-estimated and kept only if the selection accuracy does not drop (auto)")
    p.add_argument("--speed-seconds", type=float, default=3.0, help="time spent measuring faces/s for metrics.json")
    p.add_argument("--classes-per-mix", type=int, default=CLASSES_PER_MIX,
                   help="generated classes per mix and window of the model card's class-share check (quantification.json)")
    p.set_defaults(handler=_run_export)


def _run_export(args) -> int:
    import json

    from .export import export
    from .versions import MODELS_DIR, next_version

    models_dir = args.models_dir or MODELS_DIR
    version = args.version or next_version(models_dir)
    metrics = export(
        [args.runs_dir / run for run in args.run], models_dir / str(version),
        csv=args.csv, flip=args.flip, min_flip_gain=args.min_flip_gain,
        compute_dtype=args.compute_dtype, batchnorm=args.bn_stats, speed_seconds=args.speed_seconds,
        classes_per_mix=args.classes_per_mix,
    )
    headline = ("model_version", "accuracy", "macro_f1", "calibration", "cost", "speed_faces_per_s")
    print(json.dumps({k: metrics[k] for k in headline}))
    return 0


def _add_restore_run(sub) -> None:
    p = sub.add_parser("restore-run", help="rebuild a run's folder (config, history, best weights) from an exported version")
    p.add_argument("--model", required=True, type=Path, help="models/emotion/<version> of one network")
    p.add_argument("--run", required=True, help=f"run name; files go to {DEFAULT_RUNS_DIR}/<run>/")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    p.set_defaults(handler=_run_restore_run)


def _run_restore_run(args) -> int:
    from .restore import restore_run

    files = restore_run(args.model, args.runs_dir / args.run)
    print(f"run {args.run} restored from {args.model} into {files.root}; export it with --run {args.run}")
    return 0


def _add_label_signature(sub) -> None:
    p = sub.add_parser("add-labels", help="add the signature naming the outputs to a version exported without it")
    p.add_argument("--model", required=True, type=Path, help="models/emotion/<version>")
    p.set_defaults(handler=_run_add_label_signature)


def _run_add_label_signature(args) -> int:
    from .serving import add_label_signature

    add_label_signature(args.model)
    print(f"{args.model}: signature naming the outputs added")
    return 0


def _add_warmup(sub) -> None:
    p = sub.add_parser("warmup", help="write a version's TF Serving warm-up requests again, as the export writes them")
    p.add_argument("--model", required=True, type=Path, help="models/emotion/<version>")
    p.set_defaults(handler=_run_warmup)


def _run_warmup(args) -> int:
    from .versions import staged_version
    from .warmup import write_warmup_requests

    with staged_version(args.model, replacing=True) as staged:
        path = write_warmup_requests(staged).relative_to(staged)
    print(f"{args.model / path}: {(args.model / path).stat().st_size} bytes of warm-up requests")
    return 0


def _add_data_report(sub) -> None:
    p = sub.add_parser("data-report", help="write DIR/report.md with class balance, faces, duplicates, blanks, bad rows")
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0, help="which random sample faces are shown")
    p.set_defaults(handler=_run_data_report)


def _run_data_report(args) -> int:
    from .data_report import REPORT_FILE, build_data_report

    report = build_data_report(args.csv, args.out, seed=args.seed)
    print(f"{args.out / REPORT_FILE}: {len(report.data)} valid rows, {len(report.problems)} invalid, "
          f"{report.near.redundant} near-duplicate rows, {len(report.near_blank)} near-blank")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classpulse_training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_quantification(sub)
    _add_restore_run(sub)
    _add_label_signature(sub)
    _add_warmup(sub)
    _add_data_report(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)
