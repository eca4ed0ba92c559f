"""DDP on CPU (gloo, 2 processes) performs the same updates as one process with the same global
batch. The model has no BatchNorm: BN normalises with per-rank batch statistics, so with it the
two runs differ by design (``nn.SyncBatchNorm`` would restore equality, but runs only on GPUs)."""

import dataclasses
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d
from pocketbnn.quantizers import SteSign
from pocketbnn.training.data import load_dataset
from pocketbnn.training.trainer import TrainConfig, Trainer

CONFIG = dict(epochs=2, batch_size=32, binary_lr=1e-2, optimizer="sgd", lr=0.05, warmup_epochs=0.5,
              weight_decay=1e-3, progress=False, log_every=1)


def _model():
    torch.manual_seed(0)
    binary = QuantConv2d(6, 6, 3, padding="same", pad_value=1.0, bias=False, input_quantizer=SteSign(1.25),
                         weight_quantizer=SteSign(1.25), weight_constraint=WeightClip(1.25))
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), binary, nn.ReLU(), nn.Flatten(), nn.Linear(6 * 64, 4))


def _data():
    data = load_dataset("synthetic", num_classes=4, size=8, train_size=128, test_size=40)
    return dataclasses.replace(data, crop_padding=1, flip=True)     # exercise sharded augmentation


def _train(out_dir: str) -> Trainer:
    torch.set_num_threads(1)
    trainer = Trainer(_model(), _data(), TrainConfig(**CONFIG), out_dir=out_dir)
    trainer.result = trainer.fit()
    return trainer


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        trainer = _train(out_dir)
        torch.save({"state": trainer.model.state_dict(), "result": trainer.result, "shard": (trainer.shard.start, trainer.shard.stop)},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    single = _train(str(tmp_path / "single"))
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in range(2)]
    # Each rank computed on its own half of every global batch of 32.
    assert [r["shard"] for r in ranks] == [(0, 16), (16, 32)]
    for rank in ranks:
        for key, value in single.model.state_dict().items():
            torch.testing.assert_close(rank["state"][key], value, rtol=1e-4, atol=1e-5, msg=key)
        # Evaluation is sharded over ranks and all-reduced: every rank sees the full test set.
        assert rank["result"]["test_accuracy"] == single.result["test_accuracy"]
        assert abs(rank["result"]["test_loss"] - single.result["test_loss"]) < 1e-4
    # Only rank 0 writes the checkpoint and log.
    assert (tmp_path / "ddp" / "checkpoint.pt").is_file()
    assert (tmp_path / "ddp" / "log.jsonl").read_text().count("\n") == (tmp_path / "single" / "log.jsonl").read_text().count("\n")
