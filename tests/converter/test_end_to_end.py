"""Zoo models end to end: a few training steps (non-trivial BN statistics, calibrated int bounds),
convert, run on the engine, compare with torch in eval mode.

Ties: a value that is binarized decides a whole ±1 input. When it is within float rounding of
0, torch's float conv/BN and the engine's folded integer arithmetic may land on different sides
and the outputs differ by one flipped input. ``test_ties_are_rare`` bounds how often a
pre-binarization value is that close to 0; sign(0) = +1 on both sides.
"""

import numpy as np
import pytest
import torch

from convert_helpers import assert_matches, run_engine, torch_output
from pocketbnn import converter, models, quantizers

ZOO = {"quicknet-small": 32, "quicknet": 32, "quicknet-large": 64, "birealnet-18": 32, "reactnet-a": 32,
       "pokebnn-0.5x": 32, "real-to-binary-net": 32, "xnornet": 224, "binary-alexnet": 224}


def _trained(name: str, size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = models.get_model(name, num_classes=10, in_channels=3)
    quantizers.set_bound_step(model, 0)
    for module in model.modules():  # calibrate PokeBNN's int bounds on the first step
        if isinstance(module, quantizers.EmaMaxBound):
            module.calibrate_at_step = 0
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    model.train()
    for _ in range(2):
        loss = model(torch.randn(2, 3, size, size)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # BN statistics of the trained weights (cumulative average), so deep residual stacks stay finite in eval.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        for _ in range(3):
            model(torch.randn(2, 3, size, size))
    return model.eval()


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_matches_torch(name):
    size = ZOO[name]
    model = _trained(name, size)
    x = torch.randn(2, 3, size, size)
    graph = converter.convert(model, x)
    assert any(n.op == "bconv2d" for n in graph.nodes)
    assert not any(n.op == "sign" for n in graph.nodes), "every binarizer feeds a binary op"
    assert_matches(run_engine(graph, x), torch_output(model, x))


def test_small_model_from_the_issue():
    torch.manual_seed(0)
    from torch import nn
    from pocketbnn.layers import QuantConv2d
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
        QuantConv2d(64, 64, 3, padding="same", pad_value=1.0, input_quantizer="ste_sign",
                    weight_quantizer="ste_sign", weight_constraint="weight_clip", bias=False),
        nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 8 * 8, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(3):
        loss = model(torch.randn(8, 3, 16, 16)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x = torch.randn(4, 3, 16, 16)
    assert_matches(run_engine(converter.convert(model, x), x), torch_output(model, x))


@pytest.mark.parametrize("name", ["quicknet", "pokebnn-0.5x"])
def test_ties_are_rare(name):
    model = _trained(name, 32)
    inputs = []
    for m in model.modules():
        q = getattr(m, "input_quantizer", None)
        if q is not None and getattr(q, "precision", 32) == 1:
            m.register_forward_pre_hook(lambda mod, args: inputs.append(_near_zero(args[0].detach())))
    torch_output(model, torch.randn(2, 3, 32, 32))
    assert sum(inputs) / len(inputs) < 1e-3


def _near_zero(x: torch.Tensor) -> float:
    """Fraction of values within float32 rounding (1e-6 of their channel's RMS) of 0 but not 0.
    Exact zeros (ReLU, padding) binarize to +1 on both sides; a channel is its own scale (a
    near-dead channel of values ~1e-8 is not a tie: its values are computed to full relative
    precision on both sides)."""
    channels = x.transpose(0, 1).flatten(1)
    rms = channels.square().mean(dim=1, keepdim=True).sqrt()
    return ((channels != 0) & (channels.abs() < 1e-6 * rms)).float().mean().item()
