"""The hyper-parameters of a training run (no torch import: the CLI builds its flags from it)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "write_config"]


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (all JSON-serialisable; saved in the checkpoint).

    Attributes:
        epochs: passes over the training set; each has ``len(train) // batch_size`` steps.
        batch_size: the global batch (split over ``torchrun`` processes).
        seed: data order, augmentation and the global RNGs derive from it.
        deterministic: ``torch.use_deterministic_algorithms(True)``.
        binary_optimizer: ``"adam"`` (latent weights, QuickNet) or ``"bop"`` for binary weights.
        binary_lr: Adam's base rate on binary weights.
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``) for all other parameters.
        lr: base rate of ``optimizer``.
        momentum: SGD momentum.
        betas: Adam's (b1, b2); PokeBNN uses (0.9, 0.99).
        bop_threshold, bop_gamma: Bop's tau and gamma.
        schedule: ``"cosine"`` (with linear warm-up), ``"linear"`` (to zero) or ``"constant"``,
            applied per step to every learning rate.
        warmup_epochs: length of the linear warm-up.
        weight_decay: L2 coefficient lambda (``lambda / 2 * sum w^2`` added to the loss).
        weight_decay_rule: which parameters decay: ``"kernels"``, ``"float_kernels"``, ``"none"``.
        distill_weight: alpha of ``alpha * KD + (1 - alpha) * CE`` when there is a teacher.
        temperature: distillation temperature T.
        distill_loss: ``"soft_ce"`` or ``"kl"``.
        weight_quant_start_epoch: PokeBNN phase 2: ``IntQuantizer`` weight quantization is
            switched on from this epoch (0: from the start).
        bound_calibration_step: PokeBNN: the step at which every ``EmaMaxBound`` writes its
            calibrated bound and freezes it (``None``: each bound's own ``calibrate_at_step``).
        crop_padding: padding of the random-crop augmentation (``None``: the dataset's own; 0: no
            crop, which converges faster in short runs).
        eval_batch_size: batch size of evaluation.
        checkpoint_every: also checkpoint every this many steps (0: only at epoch ends).
        log_every: steps between training log records.
        progress: show a progress bar (main process only).
    """

    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    deterministic: bool = False
    binary_optimizer: str = "adam"
    binary_lr: float = 1e-3
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    bop_threshold: float = 1e-8
    bop_gamma: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    weight_decay_rule: str = "kernels"
    distill_weight: float = 1.0
    temperature: float = 1.0
    distill_loss: str = "soft_ce"
    weight_quant_start_epoch: int = 0
    bound_calibration_step: int | None = None
    crop_padding: int | None = None
    eval_batch_size: int = 500
    checkpoint_every: int = 0
    log_every: int = 50
    progress: bool = True

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = dict(values)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)


def write_config(path: Path, config: TrainConfig, **extra: Any) -> None:
    """The run's config as indented JSON (for people; the checkpoint holds the same)."""
    path.write_text(json.dumps({**extra, "config": dataclasses.asdict(config)}, indent=2) + "\n")
