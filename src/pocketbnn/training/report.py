"""The demo's report: PNG plots (matplotlib, headless) and a markdown summary that links them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_layer_cost", "plot_op_latency", "plot_training_curves", "write_markdown"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Loss and accuracy against step: training (per log interval) and test (per epoch)."""
    plt = _pyplot()
    train = [r for r in records if r["event"] == "train"]
    test = [r for r in records if r["event"] == "eval"]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    loss_ax.plot([r["step"] for r in test], [r["test_loss"] for r in test], "o-", label="test")
    acc_ax.plot([r["step"] for r in train], [r["accuracy"] for r in train], label="train")
    acc_ax.plot([r["step"] for r in test], [r["test_accuracy"] for r in test], "o-", label="test")
    loss_ax.set(xlabel="step", ylabel="cross-entropy", title="loss")
    acc_ax.set(xlabel="step", ylabel="top-1 accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_layer_cost(layers: Sequence[Any], path: Path) -> Path:
    """MACs per layer (log scale), coloured by operand precision ``WxA``, with ACE share."""
    plt = _pyplot()
    counted = [layer for layer in layers if layer.macs]
    keys = sorted({layer.mac_key for layer in counted}, key=lambda k: [int(v) for v in k.split("x")])
    colors = dict(zip(keys, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(counted) + 1.5))
    y = range(len(counted))
    ax.barh(y, [layer.macs for layer in counted], color=[colors[layer.mac_key] for layer in counted])
    ax.set_yticks(list(y), [layer.name for layer in counted], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlabel="MACs per image (log scale)", title="MACs per layer by precision (weight bits x activation bits)")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in keys], labels=keys, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_op_latency(ms_by_op: dict[str, float], path: Path) -> Path:
    """The engine's milliseconds per op type, largest first."""
    plt = _pyplot()
    ops = list(ms_by_op)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(ops) + 1.5))
    ax.barh(range(len(ops)), [ms_by_op[op] for op in ops], color="tab:blue")
    ax.set_yticks(range(len(ops)), ops)
    ax.invert_yaxis()
    ax.set(xlabel="milliseconds per image (median)", title="engine latency by op type")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_markdown(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """``# title`` then one ``## heading`` per (heading, body) section."""
    text = f"# {title}\n\n" + "\n".join(f"## {heading}\n\n{body.strip()}\n" for heading, body in sections)
    path.write_text(text)
    return path
