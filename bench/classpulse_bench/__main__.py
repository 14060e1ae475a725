"""`python -m classpulse_bench [--tiny] [--out DIR]` (make bench), `python -m classpulse_bench model` and
`python -m classpulse_bench shares` (make bench-model: class shares read from generated classes), and
`python -m classpulse_bench faces` (face finding and crops per family of generated layouts, and on faces-wild),
`python -m classpulse_bench tracking` (following faces between full scans on a video of moving faces),
`python -m classpulse_bench verifier` (trains BlazeFace's face / not-face verifier and writes its weights),
`python -m classpulse_bench replay` (records every BlazeFace candidate of the faces bench's frames for a seed, to
compare the rules that decide which are faces: classpulse_bench.candidate_replay),
`python -m classpulse_bench crops` (the model's accuracy on the found faces cut by candidate crop methods:
classpulse_bench.crop_replay), `python -m classpulse_bench framed-faces --write-csv FILE` (FER2013's Training faces
framed by their landmarks as the detector frames a face, for a training config's `extra_training_csv`:
classpulse_bench.framed_faces):
tables on stdout, results as JSON under --out, and every figure as one JSON line printed last.
`python -m classpulse_bench docs` copies the committed results' tables into docs/performance.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classpulse_bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "command", nargs="?", choices=(
            "pipeline", "model", "shares", "faces", "tracking", "verifier", "replay", "crops", "framed-faces", "docs",
        ),
        default="pipeline",
        help="docs: rewrite docs/performance.md's tables from the committed results; verifier: train the face verifier",
    )
    parser.add_argument("--tiny", action="store_true", help="every phase, as short as possible (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where results go (default %(default)s)")
    parser.add_argument(
        "--csv", help="FER2013 CSV for `model`, `shares` and `framed-faces` (default: $FER2013_CSV, then the shared copy)"
    )
    parser.add_argument(
        "--write-throughput", type=Path, metavar="FILE",
        help="also update the capacity guide's per-replica throughputs (deploy/k8s/throughput.json) from the drains",
    )
    parser.add_argument("--detectors", default="blazeface,haar", help="`faces`: the detectors compared (%(default)s)")
    parser.add_argument(
        "--peers", default="fer", help="`faces`: peers measured on the same frames and photos (%(default)s; '' for none)"
    )
    parser.add_argument(
        "--frames", type=int, default=30, help="`faces`, `replay`: generated frames per family; `tracking`: video frames (%(default)s)"
    )
    parser.add_argument(
        "--wild-sample", type=int, default=0, help="`faces`, `replay`: faces-wild photos drawn (seeded; default 0: all)"
    )
    parser.add_argument(
        "--tracked-frames", type=int, default=6,
        help="`faces`: each layout also followed for this many frames by the service's tracking detector (0: not)",
    )
    parser.add_argument(
        "--model", type=Path, help="`faces`: the model version read (models/emotion/<v>; default: the latest, as served)"
    )
    parser.add_argument(
        "--families", help="`faces`: comma-separated families of generated layouts measured (default: all)"
    )
    parser.add_argument(
        "--seed", type=int, default=19, help="`faces`, `tracking`, `replay`: seed of the layouts and samples (%(default)s)"
    )
    parser.add_argument(
        "--seeds", default="20,21,19", help="`crops`: seeds of the faces bench's frames recorded (%(default)s)"
    )
    parser.add_argument(
        "--write-csv", type=Path, metavar="FILE",
        help="`framed-faces`: the CSV written (Kaggle's layout; it holds faces: under training/runs/, never in git)",
    )
    parser.add_argument(
        "--through-losses", action="store_true",
        help="`framed-faces`: each face written once more through a generated family's loss (noise, blur, lighting,"
        " hard JPEG)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    from classpulse_core.logs import configure_logging

    configure_logging("bench", args.log_level)
    from classpulse_bench import output

    started = time.monotonic()
    if args.command == "docs":
        from classpulse_bench.docs import main as write_docs

        return write_docs()
    if args.command == "verifier":
        from classpulse_bench.verifier_training import train_verifier

        trained = train_verifier(args.csv)
        print(
            f"{trained.path}: {trained.faces} faces, {trained.not_faces} not faces, training accuracy "
            f"{trained.accuracy}; pin WEIGHTS_SHA256 = \"{trained.sha256}\" in classpulse_detector/verifier.py"
        )
        return 0
    if args.command == "framed-faces":
        from classpulse_bench.framed_faces import write_framed_csv

        if args.write_csv is None:
            raise SystemExit("framed-faces needs --write-csv FILE")
        read, written = write_framed_csv(args.csv, args.write_csv, through_losses=args.through_losses)
        print(f"{args.write_csv}: {written} faces framed by their landmarks from {read} Training rows")
        return 0
    if args.command == "replay":
        from classpulse_bench.candidate_replay import record_seed

        print(record_seed(args.csv, args.seed, args.frames, args.wild_sample, args.out))
        return 0
    if args.command == "model":
        from classpulse_bench.model_bench import run_model_bench

        result = run_model_bench(args.csv, tiny=args.tiny)
        prefix = "model-"
    elif args.command == "faces":
        from classpulse_bench.faces import MODEL_DIR, run_faces_bench

        result = run_faces_bench(
            args.csv, args.detectors.split(","), args.frames, args.wild_sample, args.seed, args.tracked_frames,
            args.model or MODEL_DIR, args.families.split(",") if args.families else None,
            [peer for peer in args.peers.split(",") if peer],
        )
        prefix = "faces-"
    elif args.command == "crops":
        from classpulse_bench.crop_replay import run_crops_bench
        from classpulse_bench.faces import MODEL_DIR

        result = run_crops_bench(
            args.csv, [int(seed) for seed in args.seeds.split(",")], args.frames, args.wild_sample, args.model or MODEL_DIR,
        )
        prefix = "crops-"
    elif args.command == "tracking":
        from classpulse_bench.tracking_bench import run_tracking_bench

        result = run_tracking_bench(args.csv, args.frames, args.seed)
        prefix = "tracking-"
    elif args.command == "shares":
        from classpulse_bench.shares_bench import run_shares_bench

        result = run_shares_bench(args.csv, tiny=args.tiny)
        prefix = "shares-"
    else:
        from classpulse_bench.config import BenchConfig
        from classpulse_bench.run import run_bench

        result = run_bench(BenchConfig.tiny() if args.tiny else BenchConfig())
        prefix = ""
        if args.write_throughput:
            from classpulse_bench.capacity import write_throughput

            write_throughput(args.write_throughput, result.context["capacity_throughput"])
    result.context["bench_seconds"] = round(time.monotonic() - started, 1)
    output.publish(result, args.out, prefix, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
