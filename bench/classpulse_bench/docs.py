"""`python -m classpulse_bench docs`: the tables of docs/performance.md, regenerated from the committed results
(bench/results/latest.json between `<!-- bench-tables:... -->`, model-latest.json between `<!-- model-tables:... -->`),
so the document always shows the figures of the files it links to (tests/unit/test_bench_report.py checks it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from classpulse_bench.report import Section, format_value

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "docs" / "performance.md"
RESULTS = REPO / "bench" / "results"
REGIONS = {"bench-tables": "latest.json", "model-tables": "model-latest.json"}


def sections_of(document: dict) -> list[Section]:
    """The sections of a results file (as_document's layout) back as Section objects."""
    sections = []
    for table in document["tables"]:
        section = Section(table["title"], note=table["note"])
        for row in table["rows"]:
            figures = dict(row)
            section.add(figures.pop("name"), **figures)
        sections.append(section)
    return sections


def markdown(sections: list[Section]) -> str:
    blocks = []
    for section in sections:
        if not section.rows:
            continue
        columns = section.columns
        note = f" ({section.note})" if section.note else ""
        lines = [
            f"**{section.title}**{note}",
            "",
            "| | " + " | ".join(column.replace("_", " ") for column in columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for row in section.rows:
            cells = (format_value(row.figures.get(column)) for column in columns)
            lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def rendered(text: str, results: Path = RESULTS) -> str:
    """`text` with every marked region replaced by the tables of its results file."""
    for region, name in REGIONS.items():
        tables = markdown(sections_of(json.loads((results / name).read_text())))
        pattern = re.compile(rf"(<!-- {region}:start -->\n).*?(\n<!-- {region}:end -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"{DOCUMENT.name} has no <!-- {region}:start/end --> markers")
        text = pattern.sub(lambda match, tables=tables: match[1] + tables + match[2], text)
    return text


def main() -> int:
    DOCUMENT.write_text(rendered(DOCUMENT.read_text()))
    print(f"wrote the tables of {DOCUMENT.relative_to(REPO)}")
    return 0
