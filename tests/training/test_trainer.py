import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from pocketbnn.optimizers import Bop, CaseOptimizer
from pocketbnn.quantizers import EmaMaxBound, IntQuantizer, MaxAbsWeightBound
from pocketbnn.layers import QuantConv2d
from pocketbnn.training.checkpoint import load_checkpoint, load_model
from pocketbnn.training.data import load_dataset
from pocketbnn.training.logs import read_log
from pocketbnn.models.quicknet_mini import quicknet_mini
from pocketbnn.training.schedules import cosine_with_warmup
from pocketbnn.training.trainer import TrainConfig, Trainer

TINY = {"widths": (8, 16), "blocks": (1, 1), "stem_pool": False}


def _data():
    return load_dataset("synthetic", num_classes=4, size=8, train_size=256, test_size=64)


def _trainer(out_dir=None, seed_model=0, **config):
    torch.manual_seed(seed_model)
    model = quicknet_mini(num_classes=4, **TINY)
    defaults = dict(epochs=2, batch_size=64, lr=1e-2, binary_lr=1e-2, progress=False, log_every=2)
    return Trainer(model, _data(), TrainConfig(**{**defaults, **config}), out_dir=out_dir,
                   model_spec={"name": "quicknet-mini", "kwargs": {"num_classes": 4, **TINY}})


def test_adam_on_binary_weights_sgd_on_the_rest():
    trainer = _trainer(binary_optimizer="adam", optimizer="sgd", binary_lr=0.01, lr=0.1)
    binary, rest = trainer.optimizer.optimizers
    assert isinstance(trainer.optimizer, CaseOptimizer)
    assert isinstance(binary, torch.optim.Adam) and isinstance(rest, torch.optim.SGD)
    binary_ids = {id(m.weight) for m in trainer.model.modules() if isinstance(m, QuantConv2d)}
    assert {id(p) for p in binary.param_groups[0]["params"]} == binary_ids
    assert len(rest.param_groups[0]["params"]) == len(list(trainer.model.parameters())) - len(binary_ids)
    assert rest.param_groups[0]["momentum"] == 0.9


def test_crop_padding_follows_the_dataset_unless_configured():
    assert _trainer().augment.crop_padding == _data().crop_padding == 0
    assert _trainer(crop_padding=2).augment.crop_padding == 2


def test_bop_keeps_binary_weights_at_plus_minus_one():
    trainer = _trainer(binary_optimizer="bop", bop_gamma=1e-2, bop_threshold=0.0)
    assert isinstance(trainer.optimizer.optimizers[0], Bop)
    trainer.fit(stop_at_step=1)
    for module in trainer.model.modules():
        if isinstance(module, QuantConv2d):
            assert set(module.weight.unique().tolist()) <= {-1.0, 1.0}


def test_learning_rates_follow_the_schedule_from_their_own_base():
    trainer = _trainer(binary_lr=0.01, lr=0.1, schedule="cosine", warmup_epochs=1.0)
    factor = cosine_with_warmup(trainer.total_steps, trainer.steps_per_epoch)
    for stop in (1, 4, 6):
        trainer.fit(stop_at_step=stop)
        binary, rest = trainer.optimizer.optimizers
        assert binary.param_groups[0]["lr"] == pytest.approx(0.01 * factor(stop))
        assert rest.param_groups[0]["lr"] == pytest.approx(0.1 * factor(stop))


def test_weight_decay_adds_l2_of_kernels_only():
    trainer = _trainer(weight_decay=0.5, weight_decay_rule="float_kernels")
    decayed = {id(p) for p in trainer.decayed}
    assert all(p.ndim > 1 for p in trainer.decayed)
    assert not any(id(m.weight) in decayed for m in trainer.model.modules() if isinstance(m, QuantConv2d))


class _PokeLayer(nn.Module):
    """An int-8 layer as in PokeBNN: calibrated activation bound, max|w| weight bound."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.conv = QuantConv2d(4, 4, 3, padding="same",
                                input_quantizer=IntQuantizer(8, bound=EmaMaxBound(4, calibrate_at_step=10**9)),
                                weight_quantizer=IntQuantizer(8, bound=MaxAbsWeightBound()))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 64, 4))

    def forward(self, x):
        return self.head(self.conv(self.stem(x)))


def test_pokebnn_two_phases():
    torch.manual_seed(0)
    model = _PokeLayer()
    trainer = Trainer(model, _data(), TrainConfig(epochs=3, batch_size=64, progress=False,
                                                  weight_quant_start_epoch=1, bound_calibration_step=5))
    bound = model.conv.input_quantizer.bound
    trainer.fit(stop_at_step=2)                    # epoch 0: latent float weights, no activation bound
    assert not model.conv.weight_quantizer.enabled and bool((bound.bound == -1).all())
    trainer.fit(stop_at_step=5)                    # epoch 1 (steps 4..): weights quantized
    assert model.conv.weight_quantizer.enabled and bool((bound.bound == -1).all())
    trainer.fit(stop_at_step=6)                    # step 5 calibrates the bound from the EMA max
    frozen = bound.bound.clone()
    assert bool((frozen > 0).all())
    torch.testing.assert_close(frozen, torch.maximum(bound.ema_max.abs(), bound.ema_min.abs()), rtol=0.5, atol=0)
    trainer.fit()                                  # ... and it stays frozen
    assert torch.equal(bound.bound, frozen) and not torch.equal(bound.ema_max, frozen)


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


@pytest.mark.parametrize("binary_optimizer", ["adam", "bop"])
def test_resume_continues_exactly(tmp_path, binary_optimizer):
    config = dict(binary_optimizer=binary_optimizer, optimizer="sgd", epochs=3, checkpoint_every=3,
                  warmup_epochs=0.5, weight_decay=1e-3)
    whole = _trainer(tmp_path / "whole", **config)
    whole.fit()
    interrupted = _trainer(tmp_path / "parts", **config)
    interrupted.fit(stop_at_step=5)
    assert load_checkpoint(tmp_path / "parts" / "checkpoint.pt")["step"] == 5
    torch.manual_seed(123)                      # the resumed process starts from other RNG states
    resumed = _trainer(tmp_path / "parts", seed_model=1, **config)
    assert resumed.step == 5
    resumed.fit()
    _assert_same_state(whole.model.state_dict(), resumed.model.state_dict())
    assert _without_time(read_log(tmp_path / "whole" / "log.jsonl")) == _without_time(read_log(tmp_path / "parts" / "log.jsonl"))


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    from test_trainer import _trainer
    from pocketbnn.training import trainer as trainer_module
    save = trainer_module.Trainer.save
    def save_then_die(self):
        save(self)
        if self.step == 7:
            os.kill(os.getpid(), signal.SIGKILL)
    trainer_module.Trainer.save = save_then_die
    torch.set_num_threads(1)
    _trainer({out!r}, epochs=3, checkpoint_every=1).fit()
""")


def test_killed_process_resumes_to_the_same_weights(tmp_path):
    out = tmp_path / "killed"
    script = _KILLED_RUN.format(tests=os.path.dirname(__file__), out=str(out))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 7
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    resumed = _trainer(out, epochs=3, checkpoint_every=1)
    resumed.fit()
    whole = _trainer(tmp_path / "whole", epochs=3, checkpoint_every=1)
    whole.fit()
    _assert_same_state(whole.model.state_dict(), resumed.model.state_dict())


def test_same_seed_same_run_and_model_rebuilds_from_checkpoint(tmp_path):
    a = _trainer(tmp_path / "a", deterministic=True, epochs=6)
    result = a.fit()
    b = _trainer(tmp_path / "b", deterministic=True, epochs=6)
    b.fit()
    _assert_same_state(a.model.state_dict(), b.model.state_dict())
    rebuilt = load_model(tmp_path / "a" / "checkpoint.pt")
    assert rebuilt.training is False
    _assert_same_state(rebuilt.state_dict(), a.model.state_dict())
    assert result["test_accuracy"] > 0.9              # the synthetic classes are easy
    records = read_log(tmp_path / "a" / "log.jsonl")
    assert [r["step"] for r in records if r["event"] == "eval"] == [4, 8, 12, 16, 20, 24]
    assert all(0 <= r["flip_ratio"] <= 1 for r in records if r["event"] == "train")
    assert json.loads(json.dumps(records)) == records


def test_distillation_from_a_teacher_runs_and_logs(tmp_path):
    teacher = _trainer(tmp_path / "teacher", epochs=1)
    teacher.fit()
    torch.manual_seed(0)
    student = Trainer(quicknet_mini(num_classes=4, **TINY), _data(),
                      TrainConfig(epochs=1, batch_size=64, progress=False, temperature=2.0, distill_weight=0.5),
                      teacher=load_model(tmp_path / "teacher" / "checkpoint.pt"))
    assert student.teacher.training is False
    before = [p.clone() for p in student.teacher.parameters()]
    student.fit()
    assert all(torch.equal(p, q) for p, q in zip(before, student.teacher.parameters()))
