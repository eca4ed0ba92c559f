import pytest
import torch

from pocketbnn.layers import QuantConv2d
from pocketbnn.models import get_model
from pocketbnn.models.quicknet_mini import quicknet_mini, quicknet_mini_float


@pytest.mark.parametrize("kwargs, shape", [
    ({"head": "flatten", "input_size": 28}, (1, 28, 28)),
    ({"head": "pool"}, (1, 28, 28)),
    ({"stem_pool": False, "blocks": (1, 1)}, (1, 8, 8)),
    ({"in_channels": 3, "head": "flatten", "input_size": 32, "widths": (8, 16, 32), "blocks": (1, 1, 1)}, (3, 32, 32)),
])
def test_output_shape(kwargs, shape):
    model = quicknet_mini(num_classes=7, **kwargs).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_every_block_conv_is_binary_and_one_padded_and_the_twin_is_float():
    binary = [m for m in quicknet_mini().modules() if isinstance(m, QuantConv2d)]
    assert len(binary) == 4
    assert all(m.input_precision == m.weight_precision == 1 and m.pad_value == 1.0 for m in binary)
    assert all(m.kernel_size == (3, 3) for m in binary)
    twins = [m for m in quicknet_mini_float().modules() if isinstance(m, QuantConv2d)]
    assert all(m.input_precision == m.weight_precision == 32 for m in twins)


def test_first_binary_conv_sees_both_signs():
    # The stem ends in BN (not ReLU), so the first block's sign quantizer gets -1 and +1.
    model = quicknet_mini().train()
    seen = []
    model[1].conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model(torch.randn(8, 1, 28, 28))
    assert (seen[0] < 0).any() and (seen[0] > 0).any()


def test_registered_in_the_zoo_and_bad_head():
    assert isinstance(get_model("quicknet-mini", num_classes=3), torch.nn.Module)
    with pytest.raises(ValueError, match="head"):
        quicknet_mini(head="dense")
