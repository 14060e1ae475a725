"""python -m classpulse_reliability {faults,load,flood,soak,hostile}: the fault drills' report, a load run's report,
ingest's memory under a flood of uploads, every process's memory over a soak, or the outcomes of hostile inputs
(sections of the reliability report)."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

from classpulse_reliability import flood, hostile, load, sections, soak
from classpulse_reliability.drills import DETERMINISTIC_DETECTOR, FAULTS, ONE_CLASS, PROFILES, run_drill
from classpulse_reliability.isolated import running_isolated_stack
from classpulse_reliability.report import LOAD_SECTION, identical, markdown


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classpulse_reliability", description=__doc__)
    parser.add_argument("--offset", type=int, default=None, help="port offset of the isolated stack (default: a free one)")
    commands = parser.add_subparsers(dest="command", required=True)
    faults = commands.add_parser("faults", help="a clean run and one run per fault; writes the report table")
    faults.add_argument("--out", type=Path, default=Path("docs/reliability-report.md"))
    faults.add_argument("--seed", type=int, default=None, help="seed of the random fault moments")
    faults.add_argument(
        "--profile", choices=sorted(PROFILES), default=ONE_CLASS.name,
        help="one class (the report's top) or the full load: 8 classes x 6 students x 2 fps for 2 min (its section)",
    )
    faults.add_argument("--only", default=None, help="run only the faults whose name contains this text")
    load.add_arguments(commands.add_parser("load", help="simulated classes for a while; writes the load report"))
    flood.add_arguments(commands.add_parser("flood", help="200 uploads at once, bombs and frames; ingest's memory"))
    soak.add_arguments(commands.add_parser("soak", help="the maximum throughput, then half of it for a while; memory"))
    hostile.add_arguments(commands.add_parser("hostile", help="issue 21's hostile inputs, each a number of times; outcomes"))
    return parser.parse_args(argv)


def _faults(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    profile = PROFILES[args.profile]
    workload = profile.workload()
    chosen = [fault for fault in FAULTS if args.only is None or args.only in fault.name]
    command = "python -m classpulse_reliability faults"
    command += f" --profile {profile.name}" if profile != ONE_CLASS else ""
    command += f" --only {args.only!r}" if args.only else ""
    os.environ.update(DETERMINISTIC_DETECTOR)
    results = []
    with running_isolated_stack(args.offset) as stack:
        for fault in (None, *chosen):
            rng = random.Random(f"{seed}-{fault.name}" if fault else seed)
            results.append(run_drill(stack, profile, fault, rng, workload))
            # Written after every run: a long series stopped halfway still leaves the runs it made.
            report = markdown(results, seed, profile, command)
            if profile == ONE_CLASS:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(report + "\n" + sections.kept_sections(args.out))
            else:
                sections.write_section(args.out, LOAD_SECTION, report)
    print(report)
    print(f"written to {args.out}")
    return 0 if all(identical(run, results[0]) for run in results[1:]) else 1


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    code = {"faults": _faults, "load": load.main, "flood": flood.main, "soak": soak.main, "hostile": hostile.main}[args.command](args)
    print(f"done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
