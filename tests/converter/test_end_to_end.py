"""Zoo models end to end: a few training steps (non-trivial BN statistics, calibrated int bounds),
convert, run on the engine, compare with torch in eval mode.

Ties: a value that is binarized decides a whole ±1 input. When it is within float rounding of
0, torch's float conv/BN and the engine's folded integer arithmetic may land on different sides
and the outputs differ by one flipped input (which side torch lands on depends on its float
kernels, so on the CPU: AVX-512 and AVX2 machines differ). ``test_ties_are_rare`` bounds how
often a pre-binarization value is that close to 0; sign(0) = +1 on both sides. An image whose
torch forward pass holds such a tie is compared loosely (``TIED_REL`` of the output scale: one
flipped input moves the output a little, a wrong kernel moves it a lot); every other image must
match to 1e-4.
"""

import numpy as np
import pytest
import torch

from convert_helpers import assert_matches, run_engine, torch_output
from pocketbnn import converter, models, quantizers

ZOO = {"quicknet-small": 32, "quicknet": 32, "quicknet-large": 64, "birealnet-18": 32, "reactnet-a": 32,
       "pokebnn-0.5x": 32, "real-to-binary-net": 32, "xnornet": 224, "binary-alexnet": 224}
# Tolerance, as a fraction of the output scale, for an image whose torch pass holds a tie.
TIED_REL = 0.1


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
    got, want = run_engine(graph, x), torch_output(model, x)
    tied = _tied_images(model, x)
    assert_matches(got, want, rel=np.where(tied, TIED_REL, 1e-4))


def _binarizer_inputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every 1-bit input quantizer in one eval forward pass of ``model`` on ``x``."""
    inputs, hooks = [], []
    for m in model.modules():
        q = getattr(m, "input_quantizer", None)
        if q is not None and getattr(q, "precision", 32) == 1:
            hooks.append(m.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach())))
    try:
        torch_output(model, x)
    finally:
        for h in hooks:
            h.remove()
    return inputs


def _tied_images(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Per image of ``x``: does a binarized value of its forward pass lie within float rounding
    of 0 (see ``_near_zero``)?"""
    tied = np.zeros(len(x), dtype=bool)
    for v in _binarizer_inputs(model, x):
        tied |= _near_zero(v).flatten(1).any(dim=1).numpy()
    return tied


def test_tied_images_are_found():
    """The tie detector flags an image exactly when one of its binarized values is a tie."""
    from torch import nn
    from pocketbnn.layers import QuantConv2d
    conv = QuantConv2d(1, 8, 1, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                      weight_constraint="weight_clip", bias=False)
    x = torch.ones(3, 1, 2, 2)
    x[1, 0, 1, 1] = 1e-9  # a tie in image 1 only
    x[2, 0, 0, 0] = 0.0   # an exact zero is not a tie: sign(0) = +1 everywhere
    assert _tied_images(nn.Sequential(conv), x).tolist() == [False, True, False]


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
    fractions = [_near_zero(v).float().mean().item() for v in _binarizer_inputs(model, torch.randn(2, 3, 32, 32))]
    assert sum(fractions) / len(fractions) < 1e-3


def _near_zero(x: torch.Tensor) -> torch.Tensor:
    """Which values of ``x`` (N, C, ...) are within float32 rounding (1e-6 of their channel's
    RMS over the batch) of 0 but not 0. Exact zeros (ReLU, padding) binarize to +1 on both
    sides; a channel is its own scale (a near-dead channel of values ~1e-8 is not a tie: its
    values are computed to full relative precision on both sides)."""
    channels = x.transpose(0, 1).flatten(1)
    rms = channels.square().mean(dim=1, keepdim=True).sqrt()
    return ((channels != 0) & (channels.abs() < 1e-6 * rms)).reshape(x.transpose(0, 1).shape).transpose(0, 1)
