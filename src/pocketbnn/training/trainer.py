"""The training loop: optimizer routing, schedules, distillation, PokeBNN phases, checkpoints.

One optimizer step consumes one global batch; batch ``b`` of epoch ``e`` holds the samples at
positions ``[b B, (b+1) B)`` of a permutation drawn from ``(seed, e)``, augmented with choices
drawn from ``(seed, e, b)``. The whole run is therefore a function of the seed and the step
count: a run resumed from a checkpoint, or spread over ``torchrun`` processes, performs the same
updates as one uninterrupted process (see :mod:`pocketbnn.training.distributed`).

Per step::

    logits = model(x)                                  # DDP-wrapped under torchrun
    loss = distillation_loss(logits, y, teacher(x)) + l2_penalty(decayed kernels)
    loss.backward(); optimizer.step(); apply_constraints(model); lr_schedulers.step()
"""

from __future__ import annotations

import dataclasses
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from pocketbnn import quantizers
from pocketbnn.constraints import apply_constraints
from pocketbnn.metrics import ModelFlipRatio
from pocketbnn.optimizers import Bop, CaseOptimizer, binary_parameters, is_binary_weight
from pocketbnn.training.augment import Augment, channel_stats
from pocketbnn.training.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from pocketbnn.training.config import TrainConfig
from pocketbnn.training.data import DataSplits, ImageSet
from pocketbnn.training.distributed import Distributed, init_distributed
from pocketbnn.training.logs import JsonLinesLog
from pocketbnn.training.losses import decay_parameters, distillation_loss, l2_penalty
from pocketbnn.training.schedules import get_schedule

__all__ = ["TrainConfig", "Trainer", "augment_for", "evaluate"]

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


def augment_for(data: DataSplits, crop_padding: int | None = None, max_samples: int = 10_000) -> Augment:
    """The augmentation that suits ``data``: its flip and crop padding (unless ``crop_padding``
    is given), normalised by channel statistics of (up to ``max_samples``, evenly spaced)
    training images."""
    n = len(data.train)
    indices = torch.arange(0, n, max(1, n // max_samples))[:max_samples]
    mean, std = channel_stats(data.train.batch(indices)[0])
    padding = data.crop_padding if crop_padding is None else crop_padding
    return Augment(mean, std, crop_padding=padding, flip=data.flip)


@torch.no_grad()
def evaluate(model: nn.Module, images: ImageSet, augment: Augment, *, batch_size: int = 500,
             dist: Distributed = Distributed(), device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of ``model`` (in eval mode) on ``images``.

    Under ``torchrun`` each rank evaluates every ``world_size``-th batch and the sums are
    all-reduced, so every rank returns the same numbers.
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    starts = range(dist.rank * batch_size, len(images), batch_size * dist.world_size)
    for start in starts:
        x, y = images.batch(torch.arange(start, min(start + batch_size, len(images))))
        logits = model(augment.eval(x).to(device)).float().cpu()
        totals += torch.tensor([nn.functional.cross_entropy(logits, y, reduction="sum").item(),
                                (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64)
    loss, correct, count = dist.sum(totals).tolist()
    model.train(was_training)
    return {"loss": loss / count, "accuracy": correct / count}


def _batch_seed(seed: int, epoch: int, batch: int = -1) -> int:
    # Distinct, reproducible generator seeds per (seed, epoch[, batch]).
    return ((seed * 1_000_003 + epoch) * 1_000_003 + batch + 1) % (2**63)


class Trainer:
    """Trains ``model`` on ``data`` with ``config``; writes checkpoints and logs to ``out_dir``.

    Under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` (gloo on CPU) and only
    rank 0 writes files. If ``out_dir`` holds a checkpoint and ``resume`` is true, :meth:`fit`
    continues from it exactly: model, optimizer, schedulers, step, RNG states; the log is cut
    back to the checkpoint's step.

    Args:
        model: the network; its binary weights are the ``is_binary_weight`` parameters.
        data: train and test splits.
        config: hyper-parameters.
        out_dir: where ``checkpoint.pt`` and ``log.jsonl`` go (``None``: write nothing).
        teacher: a model to distil from (put in eval mode, never trained).
        model_spec: ``{"name": ..., "kwargs": {...}}`` stored in the checkpoint so that
            :func:`~pocketbnn.training.checkpoint.load_model` can rebuild the model.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        device: where to train.
    """

    def __init__(self, model: nn.Module, data: DataSplits, config: TrainConfig, *,
                 out_dir: str | Path | None = None, teacher: nn.Module | None = None,
                 model_spec: dict[str, Any] | None = None, resume: bool = True,
                 device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.dist = init_distributed(self.device)
        if config.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(config.seed)
        self.data = data
        self.augment = augment_for(data, config.crop_padding)
        self.model = model.to(self.device)
        self.teacher = teacher.to(self.device).eval() if teacher is not None else None
        self.model_spec = model_spec
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.steps_per_epoch = len(data.train) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch size {config.batch_size} exceeds the {len(data.train)} training samples")
        self.total_steps = config.epochs * self.steps_per_epoch
        self.shard = self.dist.shard(config.batch_size)
        self.optimizer, self.schedulers = self._build_optimizer()
        binary = binary_parameters(model)
        self.decayed = decay_parameters(model, config.weight_decay_rule, binary) if config.weight_decay else []
        self.flips = ModelFlipRatio(model) if binary else None
        if config.bound_calibration_step is not None:
            for bound in (m for m in model.modules() if isinstance(m, quantizers.EmaMaxBound)):
                bound.calibrate_at_step = config.bound_calibration_step
        self.step = 0
        self._totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count since the last log
        self.log = JsonLinesLog(self.out_dir / LOG if self.out_dir and self.dist.is_main else None)
        if resume and self.out_dir is not None and (self.out_dir / CHECKPOINT).is_file():
            self._restore(load_checkpoint(self.out_dir / CHECKPOINT))
        self.log.truncate_after(self.step)
        self.net = (DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
                    if self.dist.enabled else self.model)

    # ------------------------------------------------------------------------------ set-up

    def _build_optimizer(self):
        c = self.config
        if c.optimizer == "adam":
            rest = partial(torch.optim.Adam, lr=c.lr, betas=c.betas)
        elif c.optimizer == "sgd":
            rest = partial(torch.optim.SGD, lr=c.lr, momentum=c.momentum)
        else:
            raise ValueError(f"unknown optimizer {c.optimizer!r}; known: adam, sgd")
        if c.binary_optimizer == "adam":
            binary = partial(torch.optim.Adam, lr=c.binary_lr, betas=c.betas)
        elif c.binary_optimizer == "bop":
            binary = partial(Bop, threshold=c.bop_threshold, gamma=c.bop_gamma)
        else:
            raise ValueError(f"unknown binary optimizer {c.binary_optimizer!r}; known: adam, bop")
        if binary_parameters(self.model):
            optimizer = CaseOptimizer(self.model, (is_binary_weight, binary), default=rest)
            inner = optimizer.optimizers
        else:
            optimizer = rest([p for p in self.model.parameters() if p.requires_grad])
            inner = [optimizer]
        factor = get_schedule(c.schedule, self.total_steps, round(c.warmup_epochs * self.steps_per_epoch))
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in inner if "lr" in o.param_groups[0]]
        return optimizer, schedulers

    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "model_spec": self.model_spec,
            "optimizer": self.optimizer.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "step": self.step,
            "train_totals": self._totals.clone(),
            "flip_ratio": {name: (m.previous, m.total, m.count) for name, m in self.flips.metrics.items()}
            if self.flips is not None else {},
            "rng": capture_rng(),
            "config": dataclasses.asdict(self.config),
            "normalization": {"mean": self.augment.mean.tolist(), "std": self.augment.std.tolist()},
            "dataset": self.data.name,
            "classes": list(self.data.classes),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for scheduler, s in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(s)
        self.step = state["step"]
        self._totals = state["train_totals"].clone()
        for name, (previous, total, count) in state["flip_ratio"].items():
            metric = self.flips.metrics[name]
            metric.previous, metric.total, metric.count = previous, total, count
        restore_rng(state["rng"])

    def save(self) -> None:
        """Write ``out_dir/checkpoint.pt`` (rank 0 only; atomic)."""
        if self.out_dir is not None and self.dist.is_main:
            save_checkpoint(self.out_dir / CHECKPOINT, self._state())

    # ---------------------------------------------------------------------------- the loop

    def _global_batch(self, epoch: int, batch: int, order: Tensor) -> tuple[Tensor, Tensor]:
        """This rank's shard of global batch ``batch`` of ``epoch``, augmented."""
        b = self.config.batch_size
        indices = order[batch * b:(batch + 1) * b]
        draw = self.augment.draw(b, torch.Generator().manual_seed(_batch_seed(self.config.seed, epoch, batch)))
        images, labels = self.data.train.batch(indices[self.shard])
        return self.augment.train(images, draw[self.shard]).to(self.device), labels.to(self.device)

    def _train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
        else:
            teacher_logits = None
        logits = self.net(x)
        c = self.config
        loss = distillation_loss(logits, y, teacher_logits, weight=c.distill_weight,
                                 temperature=c.temperature, kind=c.distill_loss)
        if self.decayed:
            loss = loss + l2_penalty(self.decayed, c.weight_decay)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        apply_constraints(self.model)
        for scheduler in self.schedulers:
            scheduler.step()
        return loss.detach(), (logits.argmax(1) == y).sum()

    def _log_train(self, epoch: int, started: float) -> dict[str, Any]:
        loss_sum, correct, count = self.dist.sum(self._totals).tolist()
        record = {"event": "train", "step": self.step, "epoch": epoch, "loss": loss_sum / count,
                  "accuracy": correct / count, "lr": self.schedulers[0].get_last_lr()[0] if self.schedulers else None,
                  "time": time.perf_counter() - started}
        if self.flips is not None:
            ratios = self.flips.compute()
            record["flip_ratio"] = sum(ratios.values()) / len(ratios)
            self.flips.reset()
        self._totals.zero_()
        self.log.write(record)
        return record

    def fit(self, *, stop_at_step: int | None = None) -> dict[str, float]:
        """Train to the end (or until ``stop_at_step``, checkpointing there, e.g. to split a run
        across jobs); returns the final test metrics and timing."""
        from tqdm import tqdm

        c = self.config
        started = time.perf_counter()
        self.model.train()
        last = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        bar = tqdm(total=last, initial=self.step, disable=not (c.progress and self.dist.is_main),
                   unit="step", dynamic_ncols=True)
        metrics: dict[str, float] = {}
        while self.step < last:
            epoch, batch = divmod(self.step, self.steps_per_epoch)
            order = torch.randperm(len(self.data.train), generator=torch.Generator().manual_seed(
                _batch_seed(c.seed, epoch)))
            quantizers.set_weight_quantization(self.model, epoch >= c.weight_quant_start_epoch)
            for batch in range(batch, self.steps_per_epoch):
                if self.step >= last:
                    break
                quantizers.set_bound_step(self.model, self.step)
                x, y = self._global_batch(epoch, batch, order)
                loss, correct = self._train_step(x, y)
                self.step += 1
                if self.flips is not None:
                    self.flips.update()
                self._totals += torch.tensor([loss.item() * len(y), correct.item(), len(y)], dtype=torch.float64)
                bar.update()
                if self.step % c.log_every == 0 or batch == self.steps_per_epoch - 1:
                    record = self._log_train(epoch, started)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
                epoch_end = batch == self.steps_per_epoch - 1
                if epoch_end:
                    metrics = self.evaluate()
                    self.log.write({"event": "eval", "step": self.step, "epoch": epoch,
                                    "test_loss": metrics["loss"], "test_accuracy": metrics["accuracy"],
                                    "time": time.perf_counter() - started})
                    if self.dist.is_main and c.progress:
                        bar.write(f"epoch {epoch + 1}/{c.epochs}: test accuracy {metrics['accuracy']:.4f}, "
                                  f"loss {metrics['loss']:.4f}")
                if epoch_end or self.step == last or (c.checkpoint_every and self.step % c.checkpoint_every == 0):
                    self.save()
        bar.close()
        if not metrics:
            metrics = self.evaluate()
        return {"test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"], "steps": self.step,
                "seconds": time.perf_counter() - started}

    def evaluate(self, images: ImageSet | None = None) -> dict[str, float]:
        """Loss and accuracy on ``images`` (default: the test split)."""
        return evaluate(self.model, images if images is not None else self.data.test, self.augment,
                        batch_size=self.config.eval_batch_size, dist=self.dist, device=self.device)



