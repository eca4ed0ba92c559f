"""Shared blocks against their formulas, and the PokeBNN/QuickNet structure against the spec."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pocketbnn.layers import QuantConv2d
from pocketbnn.models import get_model
from pocketbnn.models.blocks import BlurPool2d, PokeSE, TFSamePool2d, keras_batch_norm, reshape_shortcut, \
    variance_scaling_
from pocketbnn.models.pokebnn import PokeBNN


def test_reshape_shortcut_averages_consecutive_channel_groups():
    r = torch.arange(10.0).view(1, 10, 1, 1)  # 10 -> 4: k = 2, channels 8, 9 dropped
    out = reshape_shortcut(r, torch.zeros(1, 4, 1, 1), "zeropad")
    assert out.flatten().tolist() == [0.5, 2.5, 4.5, 6.5]


def test_reshape_shortcut_tiles_with_remainder_and_zero_pads():
    r = torch.arange(3.0).view(1, 3, 1, 1)
    assert reshape_shortcut(r, torch.zeros(1, 7, 1, 1), "tile").flatten().tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert reshape_shortcut(r, torch.zeros(1, 5, 1, 1), "zeropad").flatten().tolist() == [0, 1, 2, 0, 0]


def test_reshape_shortcut_pools_3x3_stride2_same_with_divisor_9():
    out = reshape_shortcut(torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), "tile")
    # TF SAME on 4 -> 2 pads (0, 1): the bottom-right window has 4 real inputs of 9.
    torch.testing.assert_close(out[0, 0], torch.tensor([[1.0, 6 / 9], [6 / 9, 4 / 9]]))


def test_tf_same_pools():
    x = torch.ones(1, 1, 5, 5)
    # Keras' average pool divides by the real inputs only; Flax's by the window.
    assert torch.equal(TFSamePool2d("avg", 2, 2, count_include_pad=False)(x), torch.ones(1, 1, 3, 3))
    assert TFSamePool2d("avg", 2, 2)(x)[0, 0, 2, 2] == 0.25
    y = -torch.ones(1, 1, 4, 4)
    assert torch.equal(TFSamePool2d("max", 3, 2)(y), -torch.ones(1, 1, 2, 2))  # -inf padding
    with pytest.raises(ValueError):
        TFSamePool2d("min", 2, 2)


def test_blur_pool_is_fixed_normalised_and_halves_after_max_pool():
    pool = BlurPool2d(3)
    assert not pool.blur.weight.requires_grad
    assert torch.allclose(pool.blur.weight.sum((1, 2, 3)), torch.ones(3))
    assert pool(torch.ones(1, 3, 56, 56)).shape == (1, 3, 28, 28)  # 56 -> 55 -> 28
    assert pool(torch.ones(1, 3, 28, 28))[0, 0, 5, 5] == 1.0


def test_poke_se_gate_shape_and_range():
    se = PokeSE(16, 24).eval()
    s = se(torch.randn(3, 16, 5, 5))
    assert s.shape == (3, 24, 1, 1) and (s >= 0).all() and (s <= 1).all()
    assert (se.reduce.in_channels, se.reduce.out_channels) == (16, 2)
    assert se.reduce.weight_precision == se.reduce.input_precision == se.expand.input_precision == 4


def test_variance_scaling_variance_and_truncation():
    torch.manual_seed(0)
    w = variance_scaling_(torch.empty(256, 64, 3, 3), 2.0, "fan_in")
    assert w.var().item() == pytest.approx(2.0 / (64 * 9), rel=0.02)
    assert w.abs().max() <= 2 * (2.0 / (64 * 9)) ** 0.5 / 0.87962566103423978 + 1e-6


def test_keras_batch_norm_momentum_and_frozen_scale():
    bn = keras_batch_norm(4, momentum=0.9, eps=1e-4, scale=False)
    assert bn.momentum == pytest.approx(0.1) and bn.eps == 1e-4
    assert not bn.weight.requires_grad and bn.bias.requires_grad
    assert not keras_batch_norm(4, scale=False, center=False).affine


@pytest.mark.parametrize("width, stage_widths", [(1.0, (64, 128, 256, 512)), (1.4, (89, 179, 358, 716)),
                                                  (0.75, (48, 96, 192, 384))])
def test_pokebnn_channel_table(width, stage_widths):
    with torch.device("meta"):
        model = PokeBNN(width)
    firsts = [model.blocks[i] for i in (0, 3, 7, 13)]
    assert tuple(b.conv2.conv.out_channels for b in firsts) == stage_widths
    assert tuple(b.conv3.conv.out_channels for b in firsts) == tuple(4 * f for f in stage_widths)
    assert [b.conv2.conv.stride for b in firsts] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert model.classifier.in_features == 4 * stage_widths[-1]


def test_pokebnn_precisions():
    with torch.device("meta"):
        model = PokeBNN(0.5)
    convs = [m for m in model.modules() if isinstance(m, QuantConv2d)]
    bits = {(m.weight_precision, m.input_precision) for m in convs}
    assert bits == {(8, 8), (1, 1), (4, 4)}
    assert (model.classifier.weight_precision, model.classifier.input_precision) == (8, 8)
    assert model.stem[3].groups == 32 and model.stem[3].out_channels == 64


def test_quicknet_residual_is_one_padded_binary():
    model = get_model("quicknet-small")
    conv = model.body[0].conv
    assert (conv.weight_precision, conv.input_precision, conv.pad_value) == (1, 1, 1.0)
    assert isinstance(model.stem[4], nn.BatchNorm2d) and not model.stem[4].affine
    x = torch.randn(1, 3, 64, 64)
    # 64 -> 16 (stem) -> 15 -> 8 (section 2 after one transition) -> 7 -> 4 -> 3 -> 2
    assert model.body[:5](model.stem(x)).shape == (1, 64, 8, 8)
    assert F.relu(model.body(model.stem(x))).shape == (1, 512, 2, 2)


def test_quicknet_spatial_path_at_224():
    with torch.device("meta"):
        model = get_model("quicknet")
        x = model.stem(torch.empty(1, 3, 224, 224))
    sizes = [x.shape[-1]]
    for layer in model.body:
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sorted(set(sizes), reverse=True) == [56, 28, 14, 7]  # spec §3.1: 56 -> 55 -> 28 -> ... -> 7
