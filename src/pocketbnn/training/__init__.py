"""Training pipeline: data, augmentation, the trainer (schedules, optimizer routing, distillation,
PokeBNN phases, checkpoints, DDP) and the demo. See ``docs/training.md``.

The names below are imported on first use, so ``pocketbnn.training.cli`` (the argument parser)
loads without torch.
"""

import importlib
from typing import Any

_EXPORTS = {
    "DataSplits": "data", "DatasetNotFoundError": "data", "dataset_names": "data", "load_dataset": "data",
    "TrainConfig": "config", "Trainer": "trainer", "evaluate": "trainer",
    "load_checkpoint": "checkpoint", "load_model": "checkpoint", "save_checkpoint": "checkpoint",
    "run_demo": "demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"pocketbnn.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'pocketbnn.training' has no attribute {name!r}")
