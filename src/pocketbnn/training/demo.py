"""``pocketbnn demo``: from data to a trained binary network, its cost, the engine, and a report.

The demo is a list of steps (:data:`STEPS`), each a function of the shared
:class:`~pocketbnn.training.demo_steps.DemoRun` that returns a report section: train and
evaluate the model, measure its cost, convert it to the engine, check that the engine predicts
like torch on the whole test set, and time both. Adding a step is appending a function.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pocketbnn.training.config import TrainConfig
from pocketbnn.training.data import DataSplits, load_dataset
from pocketbnn.training.demo_engine import benchmark_step, convert_step, engine_check_step
from pocketbnn.training.demo_steps import DemoRun, Recipe, Section, cost_step, train_step
from pocketbnn.training.report import write_markdown

__all__ = ["RECIPES", "STEPS", "Recipe", "run_demo"]


# Chosen to finish in under 10 minutes on 2 CPU cores (see docs/training.md for the measurements).
RECIPES: dict[str, Recipe] = {
    "fashion_mnist": Recipe(
        {"widths": (32, 64), "blocks": (2, 2), "stem_pool": True, "head": "flatten", "input_size": 28},
        TrainConfig(epochs=3, batch_size=128, lr=2e-3, binary_lr=2e-3, schedule="cosine", warmup_epochs=0.2,
                    crop_padding=0, log_every=50),
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
    side = data.train.shape[1]
    return Recipe({**base.model_kwargs, "stem_pool": side >= 16, "input_size": side}, base.config)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {threads} thread{'s' * (threads > 1)}"


STEPS: list[Callable[[DemoRun], Section]] = [
    train_step, cost_step, convert_step, engine_check_step, benchmark_step,
]


def run_demo(out_dir: str | Path = "pocketbnn-demo", *, dataset: str = "auto", epochs: int | None = None,
             progress: bool = True) -> Path:
    """Run every step of :data:`STEPS`, write ``out_dir/report.md`` (+ plots, ``summary.json``)
    and return the report's path."""
    cpu_started = time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(dataset)
    recipe = _recipe_for(data)
    if epochs is not None:
        recipe = dataclasses.replace(recipe, config=dataclasses.replace(recipe.config, epochs=epochs))
    run = DemoRun(out_dir, data, recipe, progress)
    sections = [step(run) for step in STEPS]
    seconds = time.perf_counter() - run.started
    cpu_seconds = time.process_time() - cpu_started
    load = os.getloadavg()[1]
    command = "pocketbnn demo" + (f" --dataset {dataset}" if dataset != "auto" else "") + (
        f" --epochs {epochs}" if epochs is not None else "")
    sections.insert(0, ("Run", f"""
`{command}` on {_machine()}: {seconds:.0f} s in all (wall clock), {cpu_seconds:.0f} s of CPU time
for this process; the machine's 5-minute load average was {load:.1f} at the end (a load above the
number of CPUs means other jobs competed for them, and the wall-clock time grew accordingly).
"""))
    run.summary.update(seconds=seconds, cpu_seconds=cpu_seconds, load_average_5min=load, machine=_machine(),
                       command=command)
    (out_dir / "summary.json").write_text(json.dumps(run.summary, indent=2) + "\n")
    report = write_markdown(out_dir / "report.md", f"pocketbnn demo: a binary network on {data.name}", sections)
    print(f"demo finished in {seconds:.0f} s ({cpu_seconds:.0f} s of CPU time); report: {report.resolve()}")
    return report
