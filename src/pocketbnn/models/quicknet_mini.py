"""Small QuickNet-style networks for small images: the demo's model and its float teacher.

The architecture follows QuickNet (spec §3.1) scaled down for 8x8 to 32x32 inputs::

    stem:        conv 3x3 (float) -> BN -> ReLU [-> max-pool 2x2] -> conv 1x1 (float) -> BN
    per section: transition (not before the first): ReLU -> max-pool 2x2 -> conv 1x1 (float) -> BN
                 blocks x n: x + BN(ReLU(QuantConv2d 3x3(x)))   (binary, one-padded)
    head:        ReLU -> global average pool (or flatten) -> linear (float)

In every block conv the input and the weights are binarized with ``SteSign(1.25)``, the latent
weights clipped by ``WeightClip(1.25)``, and the input padded with +1 (one-padding, free in the
engine). The stem ends in BN, as QuickNet's does: a stem ending in ReLU would feed the first
binary conv only non-negative values, which binarize to all +1. QuickNet's stride-2 stem convs
and anti-aliased (blur) pooling are replaced by a 2x2 max-pool, which costs little at these sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d
from pocketbnn.models._api import register_model
from pocketbnn.quantizers import SteSign

__all__ = ["QuickNetMini", "quicknet-mini", "quicknet-mini-float"]


class _Block(nn.Module):
    """QuickNet residual block: $y = x + \\mathrm{BN}(\\mathrm{ReLU}(\\mathrm{conv}(x)))$."""

    def __init__(self, channels: int, binary: bool) -> None:
        super().__init__()
        quantization = dict(input_quantizer=SteSign(1.25), weight_quantizer=SteSign(1.25),
                            weight_constraint=WeightClip(1.25), pad_value=1.0) if binary else {}
        self.conv = QuantConv2d(channels, channels, 3, padding="same", bias=False, **quantization)
        self.bn = nn.BatchNorm2d(channels, momentum=0.1, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bn(self.conv(x).relu())


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels))


class QuickNetMini(nn.Sequential):
    """QuickNet-style network for small images (see module docstring).

    Args:
        num_classes: classifier outputs.
        in_channels: image channels.
        widths: channels of each section.
        blocks: residual blocks per section.
        binary: binarize the block convs (False: the same network in float, e.g. a teacher).
        stem_pool: halve the resolution after the stem (for 28x28 and larger inputs).
        head: ``"pool"``: QuickNet's global average pool before the classifier; ``"flatten"``:
            the classifier sees the whole final map (``widths[-1] * s * s`` inputs for an
            ``s x s`` map), which keeps the coarse layout small images need, at a small share of
            the MACs.
        input_size: image side, needed by ``head="flatten"`` to size the classifier.
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (32, 64),
                 blocks: Sequence[int] = (2, 2), binary: bool = True, stem_pool: bool = True, head: str = "pool",
                 input_size: int = 28) -> None:
        if len(widths) != len(blocks):
            raise ValueError(f"widths {tuple(widths)} and blocks {tuple(blocks)} differ in length")
        w = widths[0]
        stem = [nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                *([nn.MaxPool2d(2)] if stem_pool else []), nn.Conv2d(w, w, 1, bias=False), nn.BatchNorm2d(w)]
        layers = [nn.Sequential(*stem)]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            if i:
                layers.append(_transition(widths[i - 1], width))
            layers += [_Block(width, binary) for _ in range(count)]
        if head == "pool":
            layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes)]
        elif head == "flatten":
            side = input_size // 2 ** (int(stem_pool) + len(widths) - 1)
            layers += [nn.ReLU(), nn.Flatten(), nn.Linear(widths[-1] * side * side, num_classes)]
        else:
            raise ValueError(f"head must be 'pool' or 'flatten', got {head!r}")
        super().__init__(*layers)


def quicknet_mini(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> QuickNetMini:
    """Binary :class:`QuickNetMini` (the demo's model)."""
    return QuickNetMini(num_classes=num_classes, in_channels=in_channels, binary=True, **kwargs)


def quicknet_mini_float(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> QuickNetMini:
    """Float :class:`QuickNetMini`: the same layers without quantizers (a distillation teacher)."""
    return QuickNetMini(num_classes=num_classes, in_channels=in_channels, binary=False, **kwargs)


register_model("quicknet-mini", quicknet_mini)
register_model("quicknet-mini-float", quicknet_mini_float)
