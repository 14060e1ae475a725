"""python -m classpulse_reliability {faults,load,flood}: the fault drills' report, a load run's report, or ingest's
memory under a flood of uploads (a section of the reliability report)."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

from classpulse_reliability import flood, load
from classpulse_reliability.drills import DETERMINISTIC_DETECTOR, FAULTS, run_drill
from classpulse_reliability.isolated import running_isolated_stack
from classpulse_reliability.report import identical, markdown
from classpulse_reliability.workload import sample_class_workload


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classpulse_reliability", description=__doc__)
    parser.add_argument("--offset", type=int, default=None, help="port offset of the isolated stack (default: a free one)")
    commands = parser.add_subparsers(dest="command", required=True)
    faults = commands.add_parser("faults", help="a clean run and one run per fault; writes the report table")
    faults.add_argument("--out", type=Path, default=Path("docs/reliability-report.md"))
    faults.add_argument("--seed", type=int, default=None, help="seed of the random fault moments")
    faults.add_argument("--rate", type=float, default=6.0, help="frames published per second")
    faults.add_argument("--seconds", type=float, default=12.0, help="length of the sample class video")
    faults.add_argument("--only", default=None, help="run only the faults whose name contains this text")
    load.add_arguments(commands.add_parser("load", help="simulated classes for a while; writes the load report"))
    flood.add_arguments(commands.add_parser("flood", help="200 uploads at once, bombs and frames; ingest's memory"))
    return parser.parse_args(argv)


def _faults(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    workload = sample_class_workload(seconds=args.seconds, fps=4, students=6)
    chosen = [fault for fault in FAULTS if args.only is None or args.only in fault.name]
    os.environ.update(DETERMINISTIC_DETECTOR)
    with running_isolated_stack(args.offset) as stack:
        results = [run_drill(stack, workload, None, args.rate, random.Random(seed))]
        for fault in chosen:
            results.append(run_drill(stack, workload, fault, args.rate, random.Random(f"{seed}-{fault.name}")))
    command = "python -m classpulse_reliability faults" + (f" --only {args.only!r}" if args.only else "")
    report = markdown(results, seed, args.rate, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n" + flood.kept_section(args.out))
    print(report)
    print(f"written to {args.out}")
    return 0 if all(identical(run, results[0]) for run in results[1:]) else 1


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    code = {"faults": _faults, "load": load.main, "flood": flood.main}[args.command](args)
    print(f"done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
