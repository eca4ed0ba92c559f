"""``pocketbnn demo``: from data to a trained binary network, its cost, and a report.

The demo is a list of steps (:data:`STEPS`), each a function of the shared :class:`DemoRun` that
returns a report section (or ``None``). Today they are: train (and evaluate) the model, measure
its cost, and state what is pending. Converting the model, checking the engine's predictions
against torch and benchmarking the two are further steps to append once the converter and engine
are ready; the report says they are pending rather than pretending.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pocketbnn.training.config import TrainConfig
from pocketbnn.training.data import DataSplits, load_dataset
from pocketbnn.training.logs import read_log
from pocketbnn.training.models import quicknet_mini
from pocketbnn.training.report import plot_layer_cost, plot_training_curves, write_markdown
from pocketbnn.training.trainer import Trainer

__all__ = ["DemoRun", "RECIPES", "STEPS", "Recipe", "run_demo"]


@dataclass(frozen=True)
class Recipe:
    """A model and its training hyper-parameters for one dataset."""

    model_kwargs: dict[str, Any]
    config: TrainConfig


# Chosen to finish in under 10 minutes on 2 CPU cores (see docs/training.md for the measurements).
RECIPES: dict[str, Recipe] = {
    "fashion_mnist": Recipe(
        {"widths": (32, 64), "blocks": (2, 2), "stem_pool": True},
        TrainConfig(epochs=4, batch_size=128, lr=2e-3, binary_lr=2e-3, schedule="cosine", warmup_epochs=0.2,
                    log_every=50),
    ),
    "digits": Recipe(
        {"widths": (32, 64), "blocks": (1, 1), "stem_pool": False},
        TrainConfig(epochs=30, batch_size=64, lr=3e-3, binary_lr=3e-3, schedule="cosine", warmup_epochs=1.0,
                    log_every=10),
    ),
}


def _recipe_for(data: DataSplits) -> Recipe:
    if data.name in RECIPES:
        return RECIPES[data.name]
    base = RECIPES["fashion_mnist"]
    return Recipe({**base.model_kwargs, "stem_pool": data.train.shape[1] >= 16}, base.config)


@dataclass
class DemoRun:
    """What the steps share: the inputs, and what earlier steps produced."""

    out_dir: Path
    data: DataSplits
    recipe: Recipe
    progress: bool
    started: float = field(default_factory=time.perf_counter)
    model: torch.nn.Module | None = None
    result: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


Section = tuple[str, str]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads"


def train_step(run: DemoRun) -> Section:
    """Train the recipe's model with checkpoints and logs under ``out_dir/run``."""
    kwargs = {"num_classes": run.data.num_classes, "in_channels": run.data.train.shape[0], **run.recipe.model_kwargs}
    config = dataclasses.replace(run.recipe.config, progress=run.progress)
    torch.manual_seed(config.seed)
    run.model = quicknet_mini(**kwargs)
    trainer = Trainer(run.model, run.data, config, out_dir=run.out_dir / "run", resume=False,
                      model_spec={"name": "quicknet_mini", "kwargs": kwargs})
    print(f"training quicknet_mini {kwargs} on {run.data.name} "
          f"({len(run.data.train)} train / {len(run.data.test)} test images), {config.epochs} epochs")
    run.result = trainer.fit()
    records = read_log(run.out_dir / "run" / "log.jsonl")
    plot_training_curves(records, run.out_dir / "training_curves.png")
    acc = run.result["test_accuracy"]
    print(f"test accuracy {acc:.4f} after {run.result['steps']} steps ({run.result['seconds']:.0f} s)")
    run.summary.update(dataset=run.data.name, model="quicknet_mini", model_kwargs=kwargs,
                       config=dataclasses.asdict(config), test_accuracy=acc, train_seconds=run.result["seconds"],
                       steps=run.result["steps"])
    epochs = "\n".join(f"| {r['epoch'] + 1} | {r['test_accuracy']:.4f} | {r['test_loss']:.4f} | {r['time']:.0f} |"
                       for r in records if r["event"] == "eval")
    body = f"""
Model `quicknet_mini` ({', '.join(f'{k}={v}' for k, v in kwargs.items())}): float 3x3 stem, then
residual blocks whose 3x3 convs binarize inputs and weights (`SteSign(1.25)`, `WeightClip(1.25)`,
one-padding), float 1x1 transitions and a float classifier.

Trained on **{run.data.name}** ({len(run.data.train)} training / {len(run.data.test)} test images) for
{config.epochs} epochs of batch {config.batch_size}: Adam on the latent binary weights (lr {config.binary_lr})
and {config.optimizer} on the rest (lr {config.lr}), {config.schedule} schedule with
{config.warmup_epochs} warm-up epochs.

**Test accuracy: {acc:.2%}** ({run.result['steps']} steps, {run.result['seconds']:.0f} s of training).

![training curves](training_curves.png)

| epoch | test accuracy | test loss | seconds |
|---|---|---|---|
{epochs}

Checkpoint: `run/checkpoint.pt`; log: `run/log.jsonl`.
"""
    return "Training", body


def cost_step(run: DemoRun) -> Section | None:
    """Print ``pocketbnn.cost.summary`` and plot MACs per layer (skipped without the cost model)."""
    try:
        from pocketbnn.cost import summary
    except ImportError as error:
        return "Cost", f"Skipped: the cost model could not be imported ({error})."
    from rich.console import Console

    cost = summary(run.model, run.data.train.shape, console=Console(width=max(Console().width, 150)))
    plot_layer_cost(cost.layers, run.out_dir / "layer_cost.png")
    macs = " · ".join(f"{key}: {n:,}" for key, n in cost.macs.items())
    run.summary["cost"] = {"macs": cost.macs, "ace": cost.ace, "cpu64": cost.cpu64, "size_mib": cost.size_mib,
                           "binary_mac_fraction": cost.binary_mac_fraction}
    rows = "\n".join(f"| {layer.name} | {layer.kind} | {layer.mac_key} | {layer.macs:,} | {layer.ace:,} |"
                     for layer in cost.layers if layer.macs)
    body = f"""
Per image of {'x'.join(map(str, run.data.train.shape))}: MACs by weight bits x activation bits: {macs};
{cost.binary_mac_fraction:.1%} of MACs binary; ACE {cost.ace:,}; CPU64 {cost.cpu64:,.0f};
kernels {cost.size_mib * 1024:.1f} KiB (definitions: `pocketbnn.cost.profile`).

![MACs per layer](layer_cost.png)

| layer | kind | W x A bits | MACs | ACE |
|---|---|---|---|---|
{rows}
"""
    return "Cost", body


def pending_step(run: DemoRun) -> Section:
    """Say which end-to-end steps are not part of the demo yet."""
    del run
    return "Conversion, engine check and benchmark: pending", """
Not run by this version of the demo: converting the trained model to the engine's bit-packed
format, checking that the engine's predictions agree with torch on the test set, and
benchmarking engine vs torch latency per op. They will be added as demo steps once the converter
and engine are wired in; nothing in this report is measured on the engine.
"""


STEPS: list[Callable[[DemoRun], Section | None]] = [train_step, cost_step, pending_step]


def run_demo(out_dir: str | Path = "pocketbnn-demo", *, dataset: str = "auto", epochs: int | None = None,
             progress: bool = True) -> Path:
    """Run every step of :data:`STEPS`, write ``out_dir/report.md`` (+ plots, ``summary.json``)
    and return the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(dataset)
    recipe = _recipe_for(data)
    if epochs is not None:
        recipe = dataclasses.replace(recipe, config=dataclasses.replace(recipe.config, epochs=epochs))
    run = DemoRun(out_dir, data, recipe, progress)
    sections = [section for step in STEPS if (section := step(run)) is not None]
    seconds = time.perf_counter() - run.started
    command = "pocketbnn demo" + (f" --dataset {dataset}" if dataset != "auto" else "") + (
        f" --epochs {epochs}" if epochs is not None else "")
    sections.insert(0, ("Run", f"""
`{command}` on {_machine()}: {seconds:.0f} s in all.
"""))
    run.summary.update(seconds=seconds, machine=_machine(), command=command)
    (out_dir / "summary.json").write_text(json.dumps(run.summary, indent=2) + "\n")
    report = write_markdown(out_dir / "report.md", f"pocketbnn demo: a binary network on {data.name}", sections)
    print(f"demo finished in {seconds:.0f} s; report: {report.resolve()}")
    return report
