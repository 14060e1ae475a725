"""Issue #10: a data report for a Kaggle-format FER2013 CSV (report.md plus figures), robust to broken rows."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .data_stats import (  # noqa: E402
    NEAR_BLANK_MAX_STD,
    NEAR_DUPLICATE_MAX_MEAN_ABS_DIFF,
    GroupSummary,
    class_counts,
    exact_duplicate_groups,
    imbalance_ratio,
    near_blank_rows,
    near_duplicate_groups,
)
from .fer_csv import FerData, RowProblem, check_fer_csv  # noqa: E402
from .labels import EMOTIONS  # noqa: E402

REPORT_FILE = "report.md"
FIGURES = {
    "class_counts": "class_counts.png",
    "samples": "sample_faces.png",
    "mean_faces": "mean_faces.png",
    "histograms": "intensity_histograms.png",
    "duplicates": "duplicate_examples.png",
    "near_blank": "near_blank_examples.png",
}
SAMPLES_PER_EMOTION = 8
EXAMPLES_SHOWN = 6
PROBLEMS_LISTED = 20


@dataclass(frozen=True)
class DataReport:
    path: Path
    data: FerData  # the valid rows
    problems: list[RowProblem]
    counts: dict[str, np.ndarray]
    exact: GroupSummary
    near: GroupSummary
    near_blank: np.ndarray
    figures: list[Path]


def _save(fig, path: Path, dpi: int = 72) -> Path:
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _face(ax, image: np.ndarray, title: str = "") -> None:
    ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=7)


def plot_class_counts(counts: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(len(counts), 1)
    for k, (usage, c) in enumerate(counts.items()):
        ax.bar(np.arange(len(EMOTIONS)) + k * width, c, width, label=f"{usage} (imbalance {imbalance_ratio(c):.1f}x)")
    ax.set_xticks(np.arange(len(EMOTIONS)) + width * (len(counts) - 1) / 2, EMOTIONS)
    ax.set_ylabel("rows")
    ax.set_title("Rows per emotion and Usage split")
    if counts:
        ax.legend(fontsize=8)
    else:
        _note(ax, "no valid rows")
    fig.tight_layout()
    return _save(fig, path)


def plot_samples(data: FerData, path: Path, rng: np.random.Generator) -> Path:
    fig, axes = plt.subplots(len(EMOTIONS), SAMPLES_PER_EMOTION, figsize=(SAMPLES_PER_EMOTION * 0.8, len(EMOTIONS) * 0.9))
    for e, emotion in enumerate(EMOTIONS):
        rows = np.flatnonzero(data.labels == e)
        chosen = rng.choice(rows, min(len(rows), SAMPLES_PER_EMOTION), replace=False) if len(rows) else []
        for k, ax in enumerate(axes[e]):
            if k < len(chosen):
                _face(ax, data.images[chosen[k]])
            else:
                ax.set_axis_off()
        axes[e][0].text(-0.15, 0.5, emotion, transform=axes[e][0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle("Random faces per emotion", fontsize=9)
    fig.subplots_adjust(left=0.13, right=0.99, top=0.94, bottom=0.01, wspace=0.05, hspace=0.08)
    return _save(fig, path)


def plot_mean_faces(data: FerData, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(EMOTIONS), figsize=(len(EMOTIONS) * 1.1, 1.5))
    for e, (emotion, ax) in enumerate(zip(EMOTIONS, axes, strict=True)):
        faces = data.images[data.labels == e]
        if len(faces):
            _face(ax, faces.mean(axis=0), f"{emotion}\n(n={len(faces)})")
        else:
            _note(ax, f"{emotion}\nnone")
    fig.tight_layout()
    return _save(fig, path)


def plot_histograms(data: FerData, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for usage in data.usages:
        pixels = data.split(usage).images.reshape(-1)
        ax.plot(np.bincount(pixels, minlength=256) / max(len(pixels), 1), label=usage, linewidth=1)
    ax.set_xlabel("pixel intensity")
    ax.set_ylabel("share of pixels")
    ax.set_title("Pixel intensity per Usage split")
    if data.usages:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _describe(data: FerData, row: int) -> str:
    return f"line {data.lines[row]}\n{EMOTIONS[data.labels[row]]}, {data.usage[row]}"


def _most_telling_first(data: FerData, groups: list[np.ndarray]) -> list[np.ndarray]:
    """Copies with conflicting labels first, then copies across splits, then the rest (stable within each)."""
    return sorted(groups, key=lambda g: (len(set(data.labels[g])) == 1, len(set(data.usage[g])) == 1))


def plot_duplicate_examples(data: FerData, groups: list[np.ndarray], path: Path) -> Path:
    shown = _most_telling_first(data, groups)[:EXAMPLES_SHOWN]
    fig, axes = plt.subplots(2, max(len(shown), 1), figsize=(max(len(shown), 1) * 1.3, 3.8), squeeze=False)
    for k, group in enumerate(shown):
        for r in range(2):
            _face(axes[r][k], data.images[group[r]], _describe(data, group[r]))
    if not shown:
        _note(axes[0][0], "no near-duplicates")
        axes[1][0].set_axis_off()
    fig.suptitle("Near-duplicate pairs (one pair per column)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)


def plot_near_blank_examples(data: FerData, rows: np.ndarray, path: Path) -> Path:
    shown = rows[:EXAMPLES_SHOWN]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(max(len(shown), 1) * 1.3, 1.8), squeeze=False)
    for ax, row in zip(axes[0], shown, strict=False):  # one empty axis when no image is shown
        _face(ax, data.images[row], f"{_describe(data, row)}\nstd {data.images[row].std():.1f}")
    if not len(shown):
        _note(axes[0][0], "no near-blank images")
    fig.tight_layout()
    return _save(fig, path)


def problem_kind(message: str) -> str:
    """Collapse a problem message to its kind ("expected N pixels, found N") for the summary table."""
    return re.sub(r"'[^']*'", "'...'", re.sub(r"-?\d+", "N", message))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "n/a"


def render_markdown(report: DataReport) -> str:
    n = len(report.data)
    exact, near, blank = report.exact, report.near, report.near_blank
    blank_lines = ", ".join(str(line) for line in report.data.lines[blank[:20]]) or "none"
    lines = [
        f"# FER2013 data report: `{report.path.name}`",
        "",
        f"Source: `{report.path}`. Generated by `python -m classpulse_training data-report`.",
        "",
        f"{n} valid rows, {len(report.problems)} invalid rows (see [Validation](#validation)).",
        "",
        "## Class balance",
        "",
        "| Usage | " + " | ".join(EMOTIONS) + " | total | imbalance (largest/smallest) |",
        "|---|" + "---:|" * (len(EMOTIONS) + 2),
    ]
    for usage, c in report.counts.items():
        cells = " | ".join(str(int(v)) for v in c)
        lines.append(f"| {usage} | {cells} | {int(c.sum())} | {imbalance_ratio(c):.1f}x |")
    lines += [
        "",
        f"![class counts]({FIGURES['class_counts']})",
        "",
        "## Faces",
        "",
        f"Random faces per emotion (seeded): ![samples]({FIGURES['samples']})",
        "",
        f"Mean face per emotion: ![mean faces]({FIGURES['mean_faces']})",
        "",
        f"Pixel intensity per split: ![histograms]({FIGURES['histograms']})",
        "",
        "## Duplicates",
        "",
        "* **Exact duplicates**: identical 2,304 pixel values (SHA-1 of the pixel bytes): "
        f"{len(exact.groups)} groups, {exact.redundant} redundant rows ({_percent(exact.redundant, n)} of rows).",
        "* **Near-duplicates** (exact ones included): same 64-bit average hash of the 8x8 downscale *and* mean absolute "
        f"pixel difference below {NEAR_DUPLICATE_MAX_MEAN_ABS_DIFF:g} gray levels: {len(near.groups)} groups, "
        f"{near.redundant} redundant rows ({_percent(near.redundant, n)} of rows).",
        f"* Near-duplicate groups spanning more than one Usage split (train/test leakage): {near.across_splits}.",
        f"* Near-duplicate groups whose copies carry different emotions (label noise): {near.conflicting_labels}.",
        "",
        f"![duplicate examples]({FIGURES['duplicates']})",
        "",
        "## Near-blank images",
        "",
        f"Pixel standard deviation below {NEAR_BLANK_MAX_STD:g} gray levels (no visible face): {len(blank)} rows "
        f"({_percent(len(blank), n)}), lines {blank_lines}.",
        "",
        f"![near-blank examples]({FIGURES['near_blank']})",
        "",
        "## Validation",
        "",
    ]
    if not report.problems:
        lines.append("Every row passed validation.")
    else:
        kinds = Counter(problem_kind(p.message) for p in report.problems)
        lines += ["| problem | rows |", "|---|---:|"] + [f"| {kind} | {count} |" for kind, count in kinds.most_common()]
        shown = min(PROBLEMS_LISTED, len(report.problems))
        lines += ["", f"First {shown} of {len(report.problems)}:", "", "| line | problem |", "|---:|---|"]
        lines += [f"| {p.line} | {p.message} |" for p in report.problems[:PROBLEMS_LISTED]]
    return "\n".join(lines) + "\n"


def build_data_report(csv: str | Path, out_dir: str | Path, seed: int = 0) -> DataReport:
    """Write out_dir/report.md and its figures; invalid rows are summarised, never fatal."""
    csv, out_dir = Path(csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checked = check_fer_csv(csv)
    data = checked.data
    rng = np.random.default_rng(seed)
    near_groups = near_duplicate_groups(data.images)
    near_blank = near_blank_rows(data.images)
    figures = [
        plot_class_counts(class_counts(data), out_dir / FIGURES["class_counts"]),
        plot_samples(data, out_dir / FIGURES["samples"], rng),
        plot_mean_faces(data, out_dir / FIGURES["mean_faces"]),
        plot_histograms(data, out_dir / FIGURES["histograms"]),
        plot_duplicate_examples(data, near_groups, out_dir / FIGURES["duplicates"]),
        plot_near_blank_examples(data, near_blank, out_dir / FIGURES["near_blank"]),
    ]
    report = DataReport(
        path=csv,
        data=data,
        problems=checked.problems,
        counts=class_counts(data),
        exact=GroupSummary.of(exact_duplicate_groups(data.images), data),
        near=GroupSummary.of(near_groups, data),
        near_blank=near_blank,
        figures=figures,
    )
    (out_dir / REPORT_FILE).write_text(render_markdown(report))
    return report
