"""Figures for evaluate/export: confusion matrix and learning curves (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .labels import EMOTIONS  # noqa: E402


def save_confusion_matrix(confusion: np.ndarray, path: Path, title: str) -> Path:
    """Row-normalised colours (recall per true class) with the raw counts written in each cell."""
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if normalised[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def save_learning_curves(history: list[dict], path: Path, val_name: str = "PublicTest") -> Path:
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [h["loss"] for h in history], label="train (augmented, weighted)")
    loss_ax.plot(epochs, [h["val_loss"] for h in history], label=val_name)
    averaged = [h for h in history if "ema_val_loss" in h]
    if averaged:
        loss_ax.plot([h["epoch"] for h in averaged], [h["ema_val_loss"] for h in averaged], label=f"{val_name}, EMA weights")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy (label-smoothed)")
    loss_ax.legend()
    acc_ax.plot(epochs, [h["accuracy"] for h in history], label="train (augmented)")
    acc_ax.plot(epochs, [h["val_accuracy"] for h in history], label=val_name)
    if averaged:
        acc_ax.plot(
            [h["epoch"] for h in averaged], [h["ema_val_accuracy"] for h in averaged], label=f"{val_name}, EMA weights"
        )
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy")
    acc_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def save_all_learning_curves(
    history: list[dict] | dict[str, list[dict]], out_dir: Path, val_name: str = "PublicTest"
) -> list[Path]:
    """learning_curves.png for one network's history; for an ensemble's ({run: history}), one file per network:
    learning_curves.png, learning_curves_1.png, ..."""
    histories = list(history.values()) if isinstance(history, dict) else [history]
    names = ["learning_curves.png", *(f"learning_curves_{i}.png" for i in range(1, len(histories)))]
    return [save_learning_curves(h, out_dir / name, val_name) for h, name in zip(histories, names, strict=True)]
