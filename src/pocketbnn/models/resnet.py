"""ResNet-50 (v1.5, stride on the 3x3 conv) in float and the w4a4 variant of PokeBNN Table 2.

The w4a4 variant (AQT ``configs/paper/resnet50_w4_a4_init8_dense8_auto.py``): the first conv
and the classifier have 8-bit weights and inputs, every other conv (downsample shortcuts
included) 4-bit weights and inputs. Weights use per-output-channel max|w| bounds; inputs use
EMA-max bounds (unquantized until calibration), unsigned where the input follows a ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.models.blocks import int_quantizer

__all__ = ["ResNet50", "ResNetPrecision", "resnet50", "resnet50_w4a4"]


@dataclass(frozen=True)
class ResNetPrecision:
    """Bits of the first conv and classifier (``edge_bits``) and of every other conv
    (``body_bits``); ``None`` means float."""

    edge_bits: int | None = None
    body_bits: int | None = None

    def quantizers(self, bits: int | None, in_channels: int, after_relu: bool) -> dict:
        """``input_quantizer``/``weight_quantizer`` keyword arguments for one layer."""
        if bits is None:
            return {}
        mode = "unsigned" if after_relu else "signed"
        return {"input_quantizer": int_quantizer(bits, channels=in_channels, mode=mode),
                "weight_quantizer": int_quantizer(bits)}


class _Bottleneck(nn.Module):
    def __init__(self, in_channels: int, width: int, stride: int, precision: ResNetPrecision) -> None:
        super().__init__()
        bits = precision.body_bits

        def conv(cin: int, cout: int, k: int, s: int = 1) -> QuantConv2d:
            return QuantConv2d(cin, cout, k, s, padding=k // 2, bias=False,
                               **precision.quantizers(bits, cin, after_relu=True))

        self.conv1, self.bn1 = conv(in_channels, width, 1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv(width, width, 3, stride), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv(width, 4 * width, 1), nn.BatchNorm2d(4 * width)
        nn.init.zeros_(self.bn3.weight)
        self.downsample = None
        if stride != 1 or in_channels != 4 * width:
            self.downsample = nn.Sequential(conv(in_channels, 4 * width, 1, stride), nn.BatchNorm2d(4 * width))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """ResNet-50 v1.5 at a given :class:`ResNetPrecision`.

    Args:
        precision: bits per layer group; the default is float.
        num_classes, in_channels: classifier outputs, image channels.
    """

    def __init__(self, precision: ResNetPrecision = ResNetPrecision(), *, num_classes: int = 1000,
                 in_channels: int = 3) -> None:
        super().__init__()
        edge = precision.edge_bits
        self.stem = nn.Sequential(
            QuantConv2d(in_channels, 64, 7, 2, padding=3, bias=False,
                        **precision.quantizers(edge, in_channels, after_relu=False)),
            nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1))
        blocks, channels = [], 64
        for stage, (n_blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512))):
            for i in range(n_blocks):
                blocks.append(_Bottleneck(channels, width, 2 if stage > 0 and i == 0 else 1, precision))
                channels = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.classifier = QuantLinear(channels, num_classes,
                                      **precision.quantizers(edge, channels, after_relu=True))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


@register_model("resnet50")
def resnet50(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet50:
    """Float ResNet-50 v1.5 (He et al., 2016, https://arxiv.org/abs/1512.03385)."""
    return ResNet50(num_classes=num_classes, in_channels=in_channels)


@register_model("resnet50-w4a4")
def resnet50_w4a4(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet50:
    """ResNet-50 v1.5 with 4-bit weights and activations, 8-bit first conv and classifier
    (the INT4 baseline of PokeBNN Table 2, Abdolrashidi et al. 2021)."""
    return ResNet50(ResNetPrecision(edge_bits=8, body_bits=4), num_classes=num_classes,
                    in_channels=in_channels)
