import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from pocketbnn import constraints
from pocketbnn.layers import (
    QuantConv1d,
    QuantConv2d,
    QuantDepthwiseConv2d,
    QuantLinear,
    quantized_layers,
    quantized_state_dict,
    same_padding,
)
from pocketbnn.quantizers import SteSign


def _sign(x):
    return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))


# (quantized layer, float twin, input shape, constructor kwargs)
LAYER_TABLE = [
    (QuantConv1d, nn.Conv1d, (2, 4, 11), dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1)),
    (QuantConv2d, nn.Conv2d, (2, 4, 9, 7), dict(in_channels=4, out_channels=6, kernel_size=3, padding=1)),
    (QuantConv2d, nn.Conv2d, (2, 4, 9, 7), dict(in_channels=4, out_channels=6, kernel_size=(3, 1), dilation=2, groups=2)),
    (QuantConv2d, nn.Conv2d, (1, 6, 8, 8), dict(in_channels=6, out_channels=3, kernel_size=1, bias=False)),
    (QuantLinear, nn.Linear, (5, 12), dict(in_features=12, out_features=7)),
]


@pytest.mark.parametrize("quant_cls, float_cls, shape, kwargs", LAYER_TABLE)
def test_without_quantizers_equals_torch_layer(quant_cls, float_cls, shape, kwargs):
    torch.manual_seed(0)
    quant, ref = quant_cls(**kwargs), float_cls(**kwargs)
    ref.load_state_dict(quant.state_dict())
    x = torch.randn(shape)
    torch.testing.assert_close(quant(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("quant_cls, float_cls, shape, kwargs", LAYER_TABLE)
def test_binary_layer_equals_float_layer_on_signs(quant_cls, float_cls, shape, kwargs):
    torch.manual_seed(1)
    quant = quant_cls(**kwargs, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                      weight_constraint="weight_clip")
    ref = float_cls(**kwargs)
    state = quant.state_dict()
    state["weight"] = _sign(state["weight"])
    ref.load_state_dict(state)
    x = torch.randn(shape)
    x.view(-1)[::5] = 0.0  # sign(0) = +1
    torch.testing.assert_close(quant(x), ref(_sign(x)))


def test_depthwise_is_grouped_conv_with_multiplier():
    torch.manual_seed(2)
    layer = QuantDepthwiseConv2d(4, 3, padding=1, depth_multiplier=2, bias=False)
    assert layer.groups == 4 and layer.out_channels == 8
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, padding=1, groups=4))


@given(size=st.integers(1, 20), kernel=st.integers(1, 5), stride=st.integers(1, 3), dilation=st.integers(1, 2))
def test_same_padding_gives_ceil_output_and_puts_extra_after(size, kernel, stride, dilation):
    before, after = same_padding(size, kernel, stride, dilation)
    assert after - before in (0, 1)
    out = (size + before + after - (kernel - 1) * dilation - 1) // stride + 1
    assert out == -(-size // stride)


def test_same_padding_is_asymmetric_at_stride_two_on_even_input():
    layer = QuantConv2d(3, 5, 3, stride=2, padding="same", bias=False)
    x = torch.randn(2, 3, 8, 8)
    assert layer.padding_amounts((8, 8)) == [(0, 1), (0, 1)]
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), layer.weight, stride=2)
    torch.testing.assert_close(layer(x), expected)
    assert layer(x).shape[-2:] == (4, 4)


@pytest.mark.parametrize("stride", [1, 2])
def test_one_padding_pads_the_quantized_input_with_ones(stride):
    torch.manual_seed(3)
    layer = QuantConv2d(4, 6, 3, stride=stride, padding="same", pad_value=1.0,
                        input_quantizer=SteSign(), weight_quantizer=SteSign(),
                        weight_constraint=constraints.WeightClip())
    x = torch.randn(2, 4, 7, 8)
    pads = [v for pair in reversed(layer.padding_amounts((7, 8))) for v in pair]
    expected = F.conv2d(F.pad(_sign(x), pads, value=1.0), _sign(layer.weight), layer.bias, stride=stride)
    torch.testing.assert_close(layer(x), expected)


def test_explicit_integer_padding_with_pad_value():
    layer = QuantConv1d(2, 3, 3, padding=2, pad_value=-1.0, bias=False)
    x = torch.randn(1, 2, 5)
    expected = F.conv1d(F.pad(x, (2, 2), value=-1.0), layer.weight)
    torch.testing.assert_close(layer(x), expected)


def test_gradient_reaches_latent_weights_and_inputs():
    layer = QuantConv2d(3, 4, 3, padding="same", input_quantizer="ste_sign",
                        weight_quantizer="ste_sign", weight_constraint="weight_clip")
    x = (torch.rand(2, 3, 5, 5) - 0.5).requires_grad_()
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_weight_clip_is_applied_by_apply_constraints():
    model = nn.Sequential(
        QuantConv2d(2, 2, 1, weight_quantizer="ste_sign", weight_constraint=constraints.WeightClip(0.5)),
        nn.Conv2d(2, 2, 1),
    )
    with torch.no_grad():
        model[0].weight.fill_(3.0)
        model[1].weight.fill_(3.0)
    constraints.apply_constraints(model)
    assert torch.all(model[0].weight == 0.5)
    assert torch.all(model[1].weight == 3.0)


def test_precisions_and_quantized_state_dict():
    model = nn.Sequential(QuantLinear(4, 3, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                                      weight_constraint="weight_clip"), nn.Linear(3, 2))
    assert [name for name, _ in quantized_layers(model)] == ["0"]
    assert model[0].input_precision == 1 and model[0].weight_precision == 1
    state = quantized_state_dict(model)
    assert set(state["0.weight"].unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(state["1.weight"], model[1].weight.detach())
    assert not torch.equal(model[0].weight, state["0.weight"])  # latent weights untouched


def test_binary_weights_without_constraint_warn():
    with pytest.warns(UserWarning, match="no weight_constraint"):
        QuantConv2d(2, 2, 3, weight_quantizer="ste_sign")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        QuantConv2d(2, 2, 3, weight_quantizer="ste_sign", weight_constraint="weight_clip")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: QuantConv2d(2, 2, 3, padding="full"), "padding must be"),
        (lambda: QuantConv2d(2, 2, 3, input_quantizer="no_such_quantizer"), "unknown quantizer"),
        (lambda: QuantConv2d(2, 2, 3, weight_constraint="no_such"), "unknown constraint"),
        (lambda: constraints.WeightClip(0.0), "positive"),
    ],
)
def test_bad_configuration_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()
