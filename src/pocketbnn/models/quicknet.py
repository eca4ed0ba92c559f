"""QuickNet family (Larq Zoo ``larq_zoo/sota/quicknet.py``; reference spec §3.1).

::

    stem(F = filters[0]): conv 3x3/2 SAME F/4, BN, ReLU; depthwise 3x3/2 SAME, BN (no scale or
                          offset); conv 1x1 F, BN                          (224 -> 56)
    per section (blocks, filters): [transition if the width changes] + residual blocks
    head: ReLU, global average pool, dense (float, with bias)

    residual(x)   = x + BN(ReLU(binary conv 3x3, one-padded, SteSign(1.25) in and kernel))
    transition(x) = BN(conv 1x1 (float)(BlurPool2d(ReLU(x))))

Stem BNs use Keras' defaults (momentum 0.99, eps 1e-3), all others momentum 0.9, eps 1e-5
(torch momenta 0.01 and 0.1). Kernels He normal (stem convs) or Glorot normal (the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d, QuantDepthwiseConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.models.blocks import BlurPool2d, variance_scaling_
from pocketbnn.quantizers import SteSign

__all__ = ["QuickNet", "QuickNetConfig", "quicknet", "quicknet_large", "quicknet_small"]

_CLIP = 1.25


@dataclass(frozen=True)
class QuickNetConfig:
    """Blocks and output channels of the four sections."""

    section_blocks: tuple[int, ...]
    section_filters: tuple[int, ...]


_SMALL = QuickNetConfig((4, 4, 4, 4), (32, 64, 256, 512))
_BASE = QuickNetConfig((4, 4, 4, 4), (64, 128, 256, 512))
_LARGE = QuickNetConfig((6, 8, 12, 6), (64, 128, 256, 512))


def _stem_bn(channels: int, affine: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01, affine=affine)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = QuantConv2d(channels, channels, 3, padding="same", pad_value=1.0, bias=False,
                                input_quantizer=SteSign(_CLIP), weight_quantizer=SteSign(_CLIP),
                                weight_constraint=WeightClip(_CLIP))
        self.bn = _bn(channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bn(F.relu(self.conv(x)))


class _Transition(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.ReLU(), BlurPool2d(in_channels),
                         QuantConv2d(in_channels, out_channels, 1, bias=False), _bn(out_channels))


class QuickNet(nn.Module):
    """A QuickNet of the given :class:`QuickNetConfig` (module docstring).

    Args:
        config: sections.
        num_classes: outputs of the float classifier.
        in_channels: image channels.
    """

    def __init__(self, config: QuickNetConfig, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        f = config.section_filters[0]
        self.stem = nn.Sequential(
            QuantConv2d(in_channels, f // 4, 3, stride=2, padding="same", bias=False),
            _stem_bn(f // 4), nn.ReLU(),
            QuantDepthwiseConv2d(f // 4, 3, stride=2, padding="same", bias=False),
            _stem_bn(f // 4, affine=False),
            QuantConv2d(f // 4, f, 1, bias=False), _stem_bn(f),
        )
        layers, channels = [], f
        for n_blocks, filters in zip(config.section_blocks, config.section_filters):
            for _ in range(n_blocks):
                if filters != channels:
                    layers.append(_Transition(channels, filters))
                    channels = filters
                layers.append(_Residual(channels))
        self.body = nn.Sequential(*layers)
        self.classifier = QuantLinear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad:
                he = m in (self.stem[0], self.stem[5])
                variance_scaling_(m.weight, 2.0 if he else 1.0, "fan_in" if he else "fan_avg")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(F.relu(self.body(self.stem(x))).mean((2, 3)))


def _builder(config: QuickNetConfig, name: str):
    def build(*, num_classes: int = 1000, in_channels: int = 3) -> QuickNet:
        return QuickNet(config, num_classes=num_classes, in_channels=in_channels)

    build.__name__ = build.__qualname__ = name.replace("-", "_")
    build.__doc__ = f"{name} ({config}); see :class:`QuickNet`."
    return register_model(name, build)


quicknet_small = _builder(_SMALL, "quicknet-small")
quicknet = _builder(_BASE, "quicknet")
quicknet_large = _builder(_LARGE, "quicknet-large")
