"""python -m classpulse_devstack {install,up,down,status} [--only NAMES]"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from classpulse_devstack.components import Component
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.install import install
from classpulse_devstack.stack import ComponentStatus, Stack


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classpulse_devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "install", help="fetch Kafka, redis-stack's OpenSSL 1.1, Prometheus and the Redis exporter (idempotent)"
    )
    for name, help_text in (
        ("up", "start the stack in the background and wait until each component is ready"),
        ("down", "stop the stack cleanly, in reverse order"),
        ("status", "show each component's pid, state and address"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--only",
            metavar="NAMES",
            help="comma-separated components or groups (infra, model, services), e.g. infra or kafka,redis",
        )
    return parser.parse_args(argv)


def _status_table(statuses: list[ComponentStatus]) -> str:
    rows = [("COMPONENT", "PID", "STATE", "ADDRESS", "LOG")]
    rows += [(s.name, str(s.pid or "-"), s.state, s.address, str(s.log_path)) for s in statuses]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _up(stack: Stack, selected: list[Component]) -> None:
    started_at = time.monotonic()
    started = stack.up(selected)
    print(f"up in {time.monotonic() - started_at:.1f} s; started now: {', '.join(started) or 'nothing'}\n")
    print(_status_table(stack.status(selected)))
    by_name = {component.name: component for component in selected}
    if "prometheus" in by_name:
        print(f"\nPrometheus: {by_name['prometheus'].address} (targets: /targets, alerts: /alerts)")
    if "api" in by_name:
        print(f"API docs: {by_name['api'].address}/docs")
    print(f"Logs: {stack.config.logs_dir}/<component>.log")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # kafka-python logs every refused connection while the broker starts; those are expected, not news.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    config = DevstackConfig.from_env()
    try:
        if args.command == "install":
            started_at = time.monotonic()
            install(config)
            print(f"install done in {time.monotonic() - started_at:.1f} s")
            return 0
        stack = Stack(config)
        selected = stack.select(args.only)
        if args.command == "up":
            _up(stack, selected)
        elif args.command == "down":
            stopped = stack.down(selected)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        else:
            print(_status_table(stack.status(selected)))
    except (RuntimeError, ValueError) as error:  # install, start and selection errors; their messages say it all
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
