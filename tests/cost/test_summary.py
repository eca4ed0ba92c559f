"""The cost model on a hand-checked three-layer model, the rendered tables and the CLI."""

import json

import pytest
import torch
from rich.console import Console
from torch import nn

from pocketbnn import quantizers
from pocketbnn.cli import main
from pocketbnn.constraints import WeightClip
from pocketbnn.cost import summary
from pocketbnn.cost.profile import profile
from pocketbnn.layers import QuantConv2d, QuantLinear


def three_layer_model() -> nn.Module:
    """float conv -> BN (no affine) -> binary grouped stride-2 conv -> 8-bit-weight x 4-bit-input dense."""
    return nn.Sequential(
        QuantConv2d(3, 8, 3, padding="same", bias=False),
        nn.BatchNorm2d(8, affine=False),
        QuantConv2d(8, 16, 3, stride=2, padding="same", groups=2, bias=False,
                    input_quantizer="ste_sign", weight_quantizer="ste_sign", weight_constraint=WeightClip()),
        nn.Flatten(),
        QuantLinear(16 * 4 * 4, 10,
                    input_quantizer=quantizers.IntQuantizer(4, bound=1.0),
                    weight_quantizer=quantizers.IntQuantizer(8, bound=quantizers.MaxAbsWeightBound())),
    )


# Hand computation for a 3x8x8 input:
#   conv1: 8x8 outputs x (3*3*3) x 8           = 13,824 MACs at 32x32; ACE x 16*16; CPU64 x 1
#   conv2: 4x4 outputs x (3*3*8/2) x 16        =  9,216 MACs at 1x1;   ACE x 1;     CPU64 / 64
#   dense: 256 x 10                            =  2,560 MACs at 8x4;   ACE x 8*4;   CPU64 / 8
CONV1, CONV2, DENSE = 13_824, 9_216, 2_560


def test_hand_computed_counts():
    cost = profile(three_layer_model(), (3, 8, 8))
    assert cost.macs == {"1x1": CONV2, "8x4": DENSE, "32x32": CONV1}
    assert cost.ace == CONV1 * 256 + CONV2 * 1 + DENSE * 32 == 3_630_080
    assert cost.cpu64 == CONV1 + CONV2 / 64 + DENSE / 8 == 14_288
    # params: 216 + BN 2*8 + 16*4*9 + (2560 + 10); the BN without affine has nothing trainable
    assert cost.params == 216 + 16 + 576 + 2570
    assert cost.trainable_params == 216 + 576 + 2570
    # kernels: 216 float32 + 576 binary + 2560 8-bit; memory adds BN (2*8*32) and the bias (10*32)
    assert cost.kernel_bits == 216 * 32 + 576 + 2560 * 8
    assert cost.memory_bits == cost.kernel_bits + 16 * 32 + 10 * 32
    assert cost.size_mib == cost.kernel_bits / 8 / 2**20
    assert cost.binary_mac_fraction == CONV2 / (CONV1 + CONV2 + DENSE)
    assert cost.compression_ratio == cost.params * 32 / cost.memory_bits


def test_per_layer_records():
    layers = {l.name: l for l in profile(three_layer_model(), (3, 8, 8)).layers}
    assert list(layers) == ["0", "1", "2", "4"]
    assert layers["2"].output_shape == (16, 4, 4)
    assert (layers["2"].weight_bits, layers["2"].input_bits, layers["2"].mac_key) == (1, 1, "1x1")
    assert layers["4"].mac_key == "8x4" and layers["4"].ace == DENSE * 32
    assert layers["1"].macs == 0 and layers["1"].mac_key is None


def test_fp_bits_32_charges_float_operands_1024():
    cost = profile(three_layer_model(), (3, 8, 8), fp_bits=32)
    assert cost.ace == CONV1 * 1024 + CONV2 + DENSE * 32


def test_include_per_channel_switches_size_to_all_parameters():
    cost = profile(three_layer_model(), (3, 8, 8), include_per_channel=True)
    assert cost.size_mib == cost.memory_bits / 8 / 2**20 > cost.kernel_bits / 8 / 2**20


def test_macs_sum_over_repeated_calls():
    conv = QuantConv2d(4, 4, 1, bias=False)
    model = nn.Sequential(conv, conv)
    assert profile(model, (4, 5, 5)).macs == {"32x32": 2 * 16 * 25}


def test_profile_leaves_training_mode_and_buffers_alone():
    model = three_layer_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile(model, (3, 8, 8))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kwargs", [{}, {"input_size": (3, 8, 8), "example": torch.zeros(1, 3, 8, 8)},
                                    {"example": torch.zeros(2, 3, 8, 8)}])
def test_bad_inputs_raise(kwargs):
    with pytest.raises(ValueError):
        profile(three_layer_model(), **kwargs)


def test_summary_prints_tables_with_units():
    console = Console(record=True, width=200)
    cost = summary(three_layer_model(), (3, 8, 8), console=console)
    text = console.export_text()
    for label in ("Layers", "MACs by precision", "MiB = 2^20 B", "ACE (float = 16x16 bits)", "CPU64",
                  "Ratio of MACs that are binary", "32x32", "8x4", "3,630,080"):
        assert label in text
    assert cost.ace == 3_630_080


def test_cli_json_has_stable_keys(capsys):
    assert main(["summary", "quicknet-small", "--input-size", "32", "--num-classes", "7", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert {"params", "size_mib", "macs", "ace", "cpu64"} <= set(record)
    assert set(record["macs"]) == {"1x1", "32x32"}
    assert record["layers"][-1]["output_shape"] == [7]


def test_cli_unknown_model_lists_names(capsys):
    assert main(["summary", "no-such-net"]) == 2
    err = capsys.readouterr().err
    assert "no-such-net" in err and "pokebnn-1.0x" in err and "quicknet" in err


def test_quiet_summary_only_counts(capsys):
    cost = summary(three_layer_model(), (3, 8, 8), quiet=True)
    assert capsys.readouterr().out == "" and cost.ace == 3_630_080


def test_package_level_summary():
    import pocketbnn

    assert pocketbnn.summary is summary
