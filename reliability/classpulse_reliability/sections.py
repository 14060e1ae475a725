"""Named sections of the reliability report (`<!-- name -->` ... `<!-- /name -->`): each command rewrites its own
and keeps the others', so the report is the sum of the commands last run."""

from __future__ import annotations

import re
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def replace_section(report: str, name: str, section: str) -> str:
    """`report` with its section `name` replaced by `section` (which holds the markers; added at the end if new)."""
    start_marker, end_marker = markers(name)
    start, end = report.find(start_marker), report.find(end_marker)
    if start < 0 or end < 0:
        return report.rstrip("\n") + "\n\n" + section
    return report[:start] + section.rstrip("\n") + report[end + len(end_marker) :]


def write_section(path: Path, name: str, section: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(path.read_text() if path.exists() else "", name, section))


def kept_sections(path: Path) -> str:
    """Every named section of the report at `path`, in order, or nothing."""
    text = path.read_text() if path.exists() else ""
    found = re.finditer(r"<!-- ([a-z0-9-]+) -->.*?<!-- /\1 -->", text, flags=re.DOTALL)
    return "".join(match.group(0) + "\n\n" for match in found)


def wrap(name: str, lines: list[str]) -> str:
    start_marker, end_marker = markers(name)
    return "\n".join([start_marker, *lines, end_marker, ""])
