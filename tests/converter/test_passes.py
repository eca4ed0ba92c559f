"""Each converter pass on a small graph: the expected ops come out and the function is kept."""

import numpy as np
import pytest
import torch
from torch import nn

from convert_helpers import assert_matches, run_engine, torch_output
from pocketbnn import converter, engine, quantizers
from pocketbnn.converter import passes
from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.engine.graph import Graph, InputSpec, Node
from pocketbnn.engine.ops.base import int4_codes


def _binary_conv(cin, cout, **kwargs):
    kwargs.setdefault("padding", "same")
    kwargs.setdefault("pad_value", 1.0)
    return QuantConv2d(cin, cout, 3, bias=False, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                       weight_constraint="weight_clip", **kwargs)


def _randomize_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))  # negative gammas too
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


def _ops(graph):
    return [n.op for n in graph.nodes]


def _check(model, x, expected_ops):
    graph = converter.convert(model, x)
    assert _ops(graph) == expected_ops
    assert_matches(run_engine(graph, x), torch_output(model, x))
    return graph


def test_lowering_alone_is_float_and_exact():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(_binary_conv(8, 16), nn.BatchNorm2d(16)))
    x = torch.randn(2, 8, 6, 6)
    graph = converter.lower(model, x)
    assert _ops(graph) == ["sign", "pad", "conv2d", "scale_shift"]
    assert_matches(run_engine(graph, x), torch_output(model, x))


def test_binarize_packs_weights_32x_smaller_and_folds_bn():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(_binary_conv(64, 64), nn.BatchNorm2d(64)))
    x = torch.randn(2, 64, 7, 7)
    graph = _check(model, x, ["quantize", "bconv2d"])
    conv = graph.nodes[1]
    assert conv.params["weights"].dtype == np.uint64 and conv.params["weights"].nbytes * 32 == 64 * 64 * 9 * 4
    assert conv.attrs["pad_value"] == 1 and conv.attrs["pads"] == [1, 1, 1, 1]


def test_zero_padding_is_kept_as_zero_padding():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(_binary_conv(16, 8, pad_value=0.0, stride=2), nn.BatchNorm2d(8)))
    x = torch.randn(2, 16, 8, 8)
    graph = _check(model, x, ["quantize", "bconv2d"])
    assert graph.nodes[1].attrs["pad_value"] == 0 and graph.nodes[1].attrs["pads"] == [0, 1, 0, 1]


def test_relu_before_bn_fuses_into_the_clamp():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(_binary_conv(8, 8), nn.ReLU(), nn.BatchNorm2d(8)))
    graph = _check(model, torch.randn(2, 8, 5, 5), ["quantize", "bconv2d"])
    assert graph.nodes[1].attrs["clamp"] == [0, 2**31 - 1]


def test_binarizer_after_bconv_gives_packed_output_with_thresholds():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(_binary_conv(8, 70), nn.BatchNorm2d(70), _binary_conv(70, 8)))
    graph = _check(model, torch.randn(2, 8, 6, 6), ["quantize", "bconv2d", "bconv2d"])
    first = graph.nodes[1]
    assert first.attrs["output"] == "packed" and first.params["thresholds"].dtype == np.int32
    assert "multiplier" not in first.params


def test_maxpool_then_binarizer_becomes_binary_maxpool():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), _binary_conv(8, 8)))
    _check(model, torch.randn(2, 3, 9, 9), ["conv2d", "quantize", "bmaxpool2d", "bconv2d"])


def test_binary_dense_and_magnitude_aware_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), QuantLinear(48, 10, input_quantizer="ste_sign",
                                                   weight_quantizer=quantizers.MagnitudeAwareSign(),
                                                   weight_constraint="weight_clip"))
    _check(model, torch.randn(3, 3, 4, 4), ["flatten", "quantize", "bconv2d"])


def test_non_binary_weights_stay_float():
    model = nn.Sequential(QuantConv2d(4, 4, 3, input_quantizer="ste_sign", bias=False))
    _check(model, torch.randn(1, 4, 5, 5), ["sign", "conv2d"])


def test_int8_weights_are_stored_quantized():
    q = quantizers.IntQuantizer(8, bound=quantizers.MaxAbsWeightBound())
    model = nn.Sequential(QuantConv2d(3, 8, 3, weight_quantizer=q), nn.BatchNorm2d(8))
    _randomize_bn(model)
    graph = _check(model, torch.randn(2, 3, 6, 6), ["conv2d"])
    assert graph.nodes[0].params["weights"].dtype == np.int8
    assert np.abs(graph.nodes[0].params["weights"]).max() == 127


@pytest.mark.parametrize("out_channels", [7, 8])
def test_int4_weights_are_stored_two_per_byte(out_channels):
    """PokeBNN's 4-bit layers: codes two per byte (half the bytes of int8), the engine's output
    unchanged; an odd channel count leaves half of the last byte empty."""
    q = quantizers.IntQuantizer(4, bound=quantizers.MaxAbsWeightBound())
    model = nn.Sequential(QuantConv2d(3, out_channels, 3, weight_quantizer=q), nn.BatchNorm2d(out_channels))
    _randomize_bn(model)
    graph = _check(model, torch.randn(2, 3, 6, 6), ["conv2d"])
    params = graph.nodes[0].params
    assert params["weights"].dtype == np.uint8
    assert params["weights"].shape == (3, 3, 3, (out_channels + 1) // 2)
    assert params["weights_scale"].shape == (out_channels,)
    codes = int4_codes(params["weights"], out_channels)
    assert np.abs(codes).max() == 7


def test_each_pass_keeps_the_function():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(nn.Conv2d(3, 64, 3), nn.MaxPool2d(2), _binary_conv(64, 64), nn.ReLU(),
                                        nn.BatchNorm2d(64), _binary_conv(64, 64), nn.BatchNorm2d(64)))
    x = torch.randn(2, 3, 11, 11)
    want = torch_output(model, x)
    graph = converter.lower(model, x)
    for name, run_pass in passes.PIPELINE:
        graph = run_pass(graph)
        assert_matches(run_engine(graph, x), want), name


def test_unsupported_op_names_op_and_module_path():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 3, 1), nn.GELU())

        def forward(self, x):
            return self.body(x)

    with pytest.raises(converter.ConversionError, match=r"GELU at body\.1"):
        converter.convert(Odd(), torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("map_op", ["channel_tile", "channel_zeropad"])
@pytest.mark.parametrize("pool", [
    ("avgpool2d", {"kernel": [3, 3], "stride": [2, 2], "pads": [0, 1, 0, 1], "count_include_pad": True}),
    ("avgpool2d", {"kernel": [3, 3], "stride": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": False}),
    ("maxpool2d", {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 1, 0, 1]}),
])
def test_widening_channel_map_moves_after_the_pool_bit_exactly(map_op, pool):
    def graph(out_channels):
        return Graph([InputSpec("x", (2, 7, 7, 6))],
                     [Node("map", map_op, ["x"], ["y"], {"out_channels": out_channels}),
                      Node("pool", pool[0], ["y"], ["z"], dict(pool[1])),
                      Node("act", "relu", ["z"], ["out"])], ["out"])

    x = np.random.default_rng(0).standard_normal((2, 7, 7, 6)).astype(np.float32)
    for out_channels, moved in ((16, True), (6, False)):  # 6 -> 6: an identity, nothing to gain
        want = engine.Interpreter(graph(out_channels)).run(x)
        g = passes.pool_before_channel_map(graph(out_channels))
        assert _ops(g) == ([pool[0], map_op, "relu"] if moved else [map_op, pool[0], "relu"])
        np.testing.assert_array_equal(engine.Interpreter(g).run(x), want)


def test_channel_map_read_twice_stays_before_the_pool():
    g = Graph([InputSpec("x", (1, 4, 4, 2))],
              [Node("map", "channel_tile", ["x"], ["y"], {"out_channels": 8}),
               Node("pool", "maxpool2d", ["y"], ["z"], {"kernel": [2, 2], "stride": [2, 2]})], ["z", "y"])
    assert _ops(passes.pool_before_channel_map(g)) == ["channel_tile", "maxpool2d"]
