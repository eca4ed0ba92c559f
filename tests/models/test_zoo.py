"""Every zoo model builds, runs forward and backward on a small input; registry behaviour."""

import inspect
from functools import partial

import pytest
import torch
from torch import nn

from pocketbnn.cost.profile import profile
from pocketbnn.models import get_model, get_model_builder, list_models, register_model
from pocketbnn.models.alexnet import final_map_size
from pocketbnn.models.pokebnn import PokeBNN


def _small_input_size(name: str) -> int:
    """32 px, or the smallest AlexNet input whose final map is 1x1 (57 px)."""
    return 57 if "input_size" in inspect.signature(get_model_builder(name)).parameters else 32


# Quantizing tens of millions of latent weights takes seconds per pass on a CPU (and the meta
# device is slower still for a training step), so PokeBNN trains here at 0.5x; every width,
# 1.4x's tiling deviation included, runs forward on the meta device in the Table 2 tests
# (tests/cost), and the tiling rule itself is tested in test_blocks.py.
_TRAINED = [n for n in list_models() if not n.startswith("pokebnn-")] + ["pokebnn-0.5x"]


@pytest.mark.parametrize("name", _TRAINED)
def test_forward_backward_on_a_small_input(name):
    size = _small_input_size(name)
    config = {"num_classes": 10, "in_channels": 2}
    if size != 32:
        config["input_size"] = size
    torch.manual_seed(0)
    model = get_model(name, **config).train()
    x = torch.randn(2, 2, size, size, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.square().mean().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("build", [partial(PokeBNN, 0.25), partial(get_model, "quicknet-small"),
                                   partial(get_model, "reactnet-a")],
                         ids=["pokebnn-0.25x", "quicknet-small", "reactnet-a"])
def test_meta_device_profile_equals_real_profile(build):
    real = profile(build(), (3, 32, 32))
    with torch.device("meta"):
        meta = profile(build(), (3, 32, 32))
    assert real.to_dict() == meta.to_dict()


def test_unknown_name_lists_registered_models():
    with pytest.raises(ValueError, match="unknown model 'resnet-1000'.*pokebnn-1.0x.*quicknet-small"):
        get_model("resnet-1000")


def test_registering_a_name_twice_fails():
    with pytest.raises(ValueError, match="already registered"):
        register_model("quicknet", lambda **kw: nn.Identity())


def test_every_published_pokebnn_width_is_registered():
    assert {f"pokebnn-{w}x" for w in (0.5, 0.75, 1.0, 1.25, 1.4, 1.5, 1.75, 2.0)} <= set(list_models())


def test_builders_are_keyword_only():
    for name in list_models():
        params = inspect.signature(get_model_builder(name)).parameters.values()
        keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
        assert all(p.kind in keyword for p in params), name


def test_alexnet_final_map():
    assert final_map_size(224) == 6 and final_map_size(57) == 1
    with pytest.raises(ValueError, match="smallest is 57"):
        final_map_size(56)
