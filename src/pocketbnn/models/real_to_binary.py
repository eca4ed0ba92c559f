"""Real-to-Binary Net, BNN variant (Martinez et al., ICLR 2020,
https://openreview.net/forum?id=BJg4NgBKvH), as Larq Zoo's ``r2b_bnn``
(``larq_zoo/literature/real_to_bin_nets.py``).

::

    conv 7x7/2 SAME 64 (float), BN, PReLU, max pool 3x3/2 SAME
    8 blocks of two half-blocks; the first half-block of blocks 4, 6, 8 doubles the width, stride 2:
        u = BN(x)
        y = binary conv 3x3 SAME(u) (SteSign input and kernel, WeightClip)
        y = y * sigmoid(W_2 relu(W_1 mean_hw(u)))       # data-dependent scaling, W_1: C_in -> C_in/8
        out = PReLU(y) + shortcut,  shortcut = x, or BN(conv 1x1 (float)(AvgPool 2x2/2 SAME(x)))
    global average pool, dense (float, with bias)

BNs: Keras momentum 0.99 (torch 0.01), eps 1e-3. PReLUs have one slope per channel
(``shared_axes=[1, 2]``). Scaling dense layers are float, without bias (He normal); other kernels
Glorot normal.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.models.blocks import TFSamePool2d, init_weights, keras_batch_norm, variance_scaling_
from pocketbnn.quantizers import SteSign

__all__ = ["RealToBinaryNet", "real_to_binary_net"]


class _HalfBlock(nn.Module):
    def __init__(self, in_channels: int, downsample: bool) -> None:
        super().__init__()
        out_channels = 2 * in_channels if downsample else in_channels
        self.bn = keras_batch_norm(in_channels)
        self.conv = QuantConv2d(in_channels, out_channels, 3, 2 if downsample else 1, padding="same",
                                bias=False, input_quantizer=SteSign(), weight_quantizer=SteSign(),
                                weight_constraint=WeightClip())
        self.reduce = QuantLinear(in_channels, in_channels // 8, bias=False)
        self.expand = QuantLinear(in_channels // 8, out_channels, bias=False)
        self.act = nn.PReLU(out_channels)
        self.shortcut = nn.Sequential(
            TFSamePool2d("avg", 2, 2, count_include_pad=False),
            QuantConv2d(in_channels, out_channels, 1, bias=False), keras_batch_norm(out_channels),
        ) if downsample else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        u = self.bn(x)
        scale = torch.sigmoid(self.expand(torch.relu(self.reduce(u.mean((2, 3))))))
        return self.act(self.conv(u) * scale[:, :, None, None]) + self.shortcut(x)


class RealToBinaryNet(nn.Module):
    """Real-to-Binary Net (module docstring).

    Args:
        num_classes, in_channels: classifier outputs, image channels.
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(QuantConv2d(in_channels, 64, 7, 2, padding="same", bias=False),
                                  keras_batch_norm(64), nn.PReLU(64), TFSamePool2d("max", 3, 2))
        halves, channels = [], 64
        for block in range(2, 10):
            downsample = block % 2 == 0 and block > 3
            halves += [_HalfBlock(channels, downsample), _HalfBlock(channels * (2 if downsample else 1), False)]
            channels *= 2 if downsample else 1
        self.blocks = nn.Sequential(*halves)
        self.classifier = QuantLinear(channels, num_classes)
        init_weights(self, 1.0, "fan_avg")
        for half in halves:
            variance_scaling_(half.reduce.weight, 2.0)
            variance_scaling_(half.expand.weight, 2.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


@register_model("real-to-binary-net")
def real_to_binary_net(*, num_classes: int = 1000, in_channels: int = 3) -> RealToBinaryNet:
    """Real-to-Binary Net (BNN); see :class:`RealToBinaryNet`."""
    return RealToBinaryNet(num_classes=num_classes, in_channels=in_channels)
