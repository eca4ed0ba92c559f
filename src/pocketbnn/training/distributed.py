"""Data-parallel training on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

Each optimizer step consumes one *global* batch of ``B`` samples. Rank ``r`` of ``W`` takes the
contiguous slice ``[r B/W, (r+1) B/W)``, computes the mean loss over it, and DDP averages the
gradients over ranks, which is the gradient of the mean loss over the whole global batch: with
no batch-dependent layers the result equals one process running batch ``B``. (BatchNorm
normalises with per-rank statistics; convert it with ``nn.SyncBatchNorm`` for exact
equivalence, at the cost of one all-reduce per BN layer.)

Launch::

    torchrun --nproc-per-node 2 -m pocketbnn.cli train ...   # gloo on CPU, nccl on GPUs
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Distributed", "init_distributed"]


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: ``rank`` of ``world_size`` (1 and 0 when not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: int) -> slice:
        """This rank's slice of a global batch of ``global_batch`` samples.

        Raises:
            ValueError: the batch does not split evenly (unequal shards would weight samples
                unequally in the averaged gradient).
        """
        if global_batch % self.world_size:
            raise ValueError(f"global batch {global_batch} does not divide over {self.world_size} processes")
        size = global_batch // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    def sum(self, values: Tensor) -> Tensor:
        """Sum ``values`` over ranks (a copy; identity when not distributed)."""
        values = values.clone()
        if self.enabled:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed(device: torch.device | None = None) -> Distributed:
    """Join the process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ...) with gloo on CPU or nccl on CUDA; a plain process gets ``Distributed()``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return Distributed(dist.get_rank(), dist.get_world_size())
