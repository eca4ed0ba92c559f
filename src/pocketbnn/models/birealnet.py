"""Bi-Real Net-18 (Liu et al., ECCV 2018, https://arxiv.org/abs/1808.00278), as Larq Zoo's
``larq_zoo/literature/birealnet.py``.

::

    conv 7x7/2 SAME 64 (float), BN, max pool 3x3/2 SAME
    16 blocks, 4 per stage at 64, 128, 256, 512 channels; the first of stages 2-4 doubles the
    width with stride 2:
        y = BN(binary conv 3x3 SAME (ApproxSign input, MagnitudeAwareSign kernel, WeightClip))
        out = y + shortcut,  shortcut = x, or BN(conv 1x1 (float)(AvgPool 2x2/2 SAME(x)))
    global average pool, dense (float, with bias)

Every BN has Keras momentum 0.8 (torch 0.2), eps 1e-3; kernels Glorot normal.
"""

from __future__ import annotations

from torch import Tensor, nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.models.blocks import TFSamePool2d, init_weights, keras_batch_norm
from pocketbnn.quantizers import ApproxSign, MagnitudeAwareSign

__all__ = ["BiRealNet18", "birealnet18"]


def _bn(channels: int) -> nn.BatchNorm2d:
    return keras_batch_norm(channels, momentum=0.8)


class _Block(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        stride = 1 if in_channels == out_channels else 2
        self.conv = QuantConv2d(in_channels, out_channels, 3, stride, padding="same", bias=False,
                                input_quantizer=ApproxSign(), weight_quantizer=MagnitudeAwareSign(),
                                weight_constraint=WeightClip())
        self.bn = _bn(out_channels)
        self.shortcut = nn.Identity() if stride == 1 else nn.Sequential(
            TFSamePool2d("avg", 2, 2, count_include_pad=False),
            QuantConv2d(in_channels, out_channels, 1, bias=False), _bn(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x)) + self.shortcut(x)


class BiRealNet18(nn.Module):
    """Bi-Real Net-18 (module docstring).

    Args:
        num_classes, in_channels: classifier outputs, image channels.
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(QuantConv2d(in_channels, 64, 7, 2, padding="same", bias=False), _bn(64),
                                  TFSamePool2d("max", 3, 2))
        widths = [64] * 5 + [128] * 4 + [256] * 4 + [512] * 4
        self.blocks = nn.Sequential(*(_Block(cin, cout) for cin, cout in zip(widths, widths[1:])))
        self.classifier = QuantLinear(512, num_classes)
        init_weights(self, 1.0, "fan_avg")

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


@register_model("birealnet-18")
def birealnet18(*, num_classes: int = 1000, in_channels: int = 3) -> BiRealNet18:
    """Bi-Real Net-18; see :class:`BiRealNet18`."""
    return BiRealNet18(num_classes=num_classes, in_channels=in_channels)
