"""The demo's training-side steps and the state the steps share (:class:`DemoRun`)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pocketbnn.training.augment import Augment
from pocketbnn.training.config import TrainConfig
from pocketbnn.training.data import DataSplits
from pocketbnn.training.logs import read_log
from pocketbnn.models.quicknet_mini import quicknet_mini
from pocketbnn.training.report import plot_layer_cost, plot_training_curves
from pocketbnn.training.trainer import Trainer

__all__ = ["DemoRun", "Recipe", "Section", "cost_step", "train_step"]


@dataclass(frozen=True)
class Recipe:
    """A model and its training hyper-parameters for one dataset."""

    model_kwargs: dict[str, Any]
    config: TrainConfig


@dataclass
class DemoRun:
    """What the steps share: the inputs, and what earlier steps produced."""

    out_dir: Path
    data: DataSplits
    recipe: Recipe
    progress: bool
    started: float = field(default_factory=time.perf_counter)
    model: torch.nn.Module | None = None
    augment: Augment | None = None
    engine: Any = None
    result: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


Section = tuple[str, str]


def train_step(run: DemoRun) -> Section:
    """Train the recipe's model with checkpoints and logs under ``out_dir/run``."""
    kwargs = {"num_classes": run.data.num_classes, "in_channels": run.data.train.shape[0], **run.recipe.model_kwargs}
    config = dataclasses.replace(run.recipe.config, progress=run.progress)
    torch.manual_seed(config.seed)
    run.model = quicknet_mini(**kwargs)
    trainer = Trainer(run.model, run.data, config, out_dir=run.out_dir / "run", resume=False,
                      model_spec={"name": "quicknet-mini", "kwargs": kwargs})
    print(f"training quicknet_mini {kwargs} on {run.data.name} "
          f"({len(run.data.train)} train / {len(run.data.test)} test images), {config.epochs} epochs")
    run.augment = trainer.augment
    run.result = trainer.fit()
    records = read_log(run.out_dir / "run" / "log.jsonl")
    crop, flip = trainer.augment.crop_padding, trainer.augment.flip
    augmentation = ", ".join([*(["horizontal flips"] if flip else []),
                              *([f"random crops with {crop}-pixel padding"] if crop else [])]) or "none"
    plot_training_curves(records, run.out_dir / "training_curves.png")
    acc = run.result["test_accuracy"]
    print(f"test accuracy {acc:.4f} after {run.result['steps']} steps ({run.result['seconds']:.0f} s)")
    run.summary.update(dataset=run.data.name, model="quicknet-mini", model_kwargs=kwargs,
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
{config.warmup_epochs} warm-up epochs; augmentation: {augmentation}.

**Test accuracy: {acc:.2%}** ({run.result['steps']} steps, {run.result['seconds']:.0f} s of training).

![training curves](training_curves.png)

| epoch | test accuracy | test loss | seconds |
|---|---|---|---|
{epochs}

Checkpoint: `run/checkpoint.pt`; log: `run/log.jsonl`.
"""
    return "Training", body


def cost_step(run: DemoRun) -> Section:
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
