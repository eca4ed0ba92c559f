from functools import partial

import pytest
import torch
from torch import nn

from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.metrics import FlipRatio, ModelFlipRatio
from pocketbnn.optimizers import Bop, CaseOptimizer, is_binary_weight
from pocketbnn.quantizers import NoOp, SteSign


def _results(metric, sequence):
    out = []
    for values in sequence:
        metric.update(torch.tensor(values))
        out.append(metric.compute())
    return out


def test_flip_ratio_matches_larq_docstring_example():
    assert _results(FlipRatio(), [(1, 1), (2, 2), (1, 2)]) == pytest.approx([0.0, 1.0, 0.75])


def test_flip_ratio_is_mean_of_changed_fractions_after_the_first_update():
    sequence = [[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, 1, -1], [-1, -1, 1, 1], [-1, -1, 1, 1]]
    # changed fractions of updates 2..5: 1/4, 0, 3/4, 0
    expected = [0.0, 1 / 4, (1 / 4 + 0) / 2, (1 / 4 + 0 + 3 / 4) / 3, 1.0 / 4]
    assert _results(FlipRatio(), sequence) == pytest.approx(expected)


def test_flip_ratio_casts_to_int8_by_default():
    # 0.2 and 0.7 both truncate to 0: no change seen; comparing floats sees every entry change.
    assert _results(FlipRatio(), [[0.2, 1.0], [0.7, 1.0]])[-1] == 0.0
    assert _results(FlipRatio(torch.float32), [[0.2, 1.0], [0.7, 1.0]])[-1] == pytest.approx(0.5)


def test_flip_ratio_reset_forgets_previous_values():
    metric = FlipRatio()
    _results(metric, [[1, 1], [-1, -1]])
    metric.reset()
    assert _results(metric, [[1, -1], [1, 1]]) == pytest.approx([0.0, 0.5])


def test_flip_ratio_rejects_a_shape_change():
    metric = FlipRatio()
    metric.update(torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        metric.update(torch.ones(4))


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = QuantConv2d(2, 4, 3, bias=False, input_quantizer=SteSign(), weight_quantizer=SteSign(),
                                weight_constraint="weight_clip")
        self.float_conv = QuantConv2d(4, 4, 1)
        self.fc = QuantLinear(4, 3, bias=False, weight_quantizer=NoOp(precision=1))

    def forward(self, x):
        return self.fc(self.float_conv(self.conv(x)).mean((2, 3)))


def test_model_flip_ratio_tracks_deployed_weights_of_binary_layers():
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():
        net.fc.weight.copy_(torch.sign(net.fc.weight))  # NoOp(1) deploys the weight as it is
    flips = ModelFlipRatio(net)
    assert set(flips.metrics) == {"conv", "fc"}
    flips.update()
    with torch.no_grad():
        net.conv.weight.mul_(0.5)  # latent weights move, their signs (the deployed weights) do not
        net.fc.weight[0].neg_()  # one of three output rows flips
    flips.update()
    assert flips.compute() == pytest.approx({"conv": 0.0, "fc": 1 / 3})
    flips.reset()
    assert flips.compute() == {"conv": 0.0, "fc": 0.0}


def test_model_flip_ratio_during_bop_training_counts_bop_flips():
    torch.manual_seed(0)
    net = _Net()
    optimizer = CaseOptimizer(net, (is_binary_weight, partial(Bop, threshold=0.0, gamma=1.0)),
                              default=partial(torch.optim.SGD, lr=0.1))
    flips = ModelFlipRatio(net)
    optimizer.zero_grad()
    net(torch.randn(8, 2, 5, 5)).sum().backward()
    optimizer.step()  # binarizes: from here on the deployed fc weights are Bop's ±1 values
    flips.update()
    before = net.fc.weight.detach().clone()
    optimizer.zero_grad()
    net(-torch.randn(8, 2, 5, 5)).sum().backward()
    optimizer.step()
    flips.update()
    changed = (net.fc.weight != before).float().mean().item()
    assert changed > 0
    assert flips.compute()["fc"] == pytest.approx(changed)


def test_model_flip_ratio_needs_a_binary_layer():
    with pytest.raises(ValueError, match="no binary layer"):
        ModelFlipRatio(nn.Sequential(nn.Linear(2, 2)))
