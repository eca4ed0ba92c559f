"""ReActNet-A (Liu et al., ECCV 2020, https://arxiv.org/abs/2003.03488; liuzechun/ReActNet).

MobileNet-v1 layout: a float 3x3/2 conv to 32 channels with BN, 13 binary blocks, global average
pool, float dense with bias. Block (C_in -> C_out, stride s)::

    y = x' + BN(conv3x3_s(RSign(x)))           x' = AvgPool2d(2)(x) if s = 2 else x
    y = RPReLU(y)
    z = BN(conv1x1(RSign(y))) + y              C_out = C_in
    z = BN(conv1x1(RSign(y))) + [y, y]         C_out = 2 C_in
    out = RPReLU(z)

Binary convs: input RSign (learnable threshold, ApproxSign gradient), weights
sign(w) * mean|w| per output channel (clipped STE). The reference's two 1x1 convs of a widening
block (each C_in -> C_in, sharing one RSign, each with its own BN, outputs concatenated) are one
C_in -> 2 C_in conv and one BN here: the same function, MACs and parameters.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
from torch import Tensor

from pocketbnn.activations import LearnableThresholdSign, RPReLU
from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.quantizers import MagnitudeAwareSign

__all__ = ["ReActNetA", "reactnet_a"]

#: Output channels of the stem and the 13 blocks.
_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)


def _binary_conv(cin: int, cout: int, k: int, stride: int = 1) -> QuantConv2d:
    # The reference trains without a weight constraint: latent weights beyond ±1 get no gradient
    # (its clamp-STE), so the layer's "starved weights" warning describes the intended model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return QuantConv2d(cin, cout, k, stride, padding=k // 2, bias=False,
                           input_quantizer=LearnableThresholdSign(cin, quantizer="approx_sign"),
                           weight_quantizer=MagnitudeAwareSign(clip_value=1.0))


class _Block(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv3x3 = _binary_conv(in_channels, in_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.act1 = RPReLU(in_channels)
        self.conv1x1 = _binary_conv(in_channels, out_channels, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = RPReLU(out_channels)
        self.repeat = out_channels // in_channels

    def forward(self, x: Tensor) -> Tensor:
        y = self.act1(self.pool(x) + self.bn1(self.conv3x3(x)))
        return self.act2(self.bn2(self.conv1x1(y)) + y.repeat(1, self.repeat, 1, 1))


class ReActNetA(nn.Module):
    """ReActNet-A (module docstring).

    Args:
        num_classes, in_channels: classifier outputs, image channels.
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(QuantConv2d(in_channels, _CHANNELS[0], 3, 2, padding=1, bias=False),
                                  nn.BatchNorm2d(_CHANNELS[0]))
        self.blocks = nn.Sequential(*(
            _Block(cin, cout, 2 if cout != cin and cout != 64 else 1)
            for cin, cout in zip(_CHANNELS, _CHANNELS[1:])))
        self.classifier = QuantLinear(_CHANNELS[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.blocks(self.stem(x)).mean((2, 3)), 1))


@register_model("reactnet-a")
def reactnet_a(*, num_classes: int = 1000, in_channels: int = 3) -> ReActNetA:
    """ReActNet-A; see :class:`ReActNetA`."""
    return ReActNetA(num_classes=num_classes, in_channels=in_channels)
