"""Training pipeline: data, augmentation, the trainer (schedules, optimizer routing, distillation,
PokeBNN phases, checkpoints, DDP) and the demo. See ``docs/training.md``."""

from pocketbnn.training.checkpoint import load_checkpoint, load_model, save_checkpoint
from pocketbnn.training.data import DataSplits, DatasetNotFoundError, dataset_names, load_dataset
from pocketbnn.training.models import build_model, quicknet_mini, quicknet_mini_float
from pocketbnn.training.trainer import TrainConfig, Trainer, evaluate

__all__ = [
    "DataSplits",
    "DatasetNotFoundError",
    "TrainConfig",
    "Trainer",
    "build_model",
    "dataset_names",
    "evaluate",
    "load_checkpoint",
    "load_dataset",
    "load_model",
    "quicknet_mini",
    "quicknet_mini_float",
    "save_checkpoint",
]
