"""AlexNet-based binary networks of Larq Zoo: XNOR-Net (``larq_zoo/literature/xnornet.py``) and
Binary AlexNet (``larq_zoo/literature/binary_alex_net.py``).

Both end in layers whose size depends on the input (a conv whose kernel covers the whole final
map, or a flatten), so their builders take ``input_size`` (default 224). With
$p(n) = \\lfloor (n - 3)/2 \\rfloor + 1$ (3x3/2 VALID max pool) the final map is
$m = p(p(p(\\lceil n/4 \\rceil)))$: 6 at 224, 1 at the smallest input, 57.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.models.blocks import keras_batch_norm
from pocketbnn.quantizers import MagnitudeAwareSign, SteSign

__all__ = ["BinaryAlexNet", "XNORNet", "binary_alexnet", "final_map_size", "xnornet"]


def final_map_size(input_size: int) -> int:
    """Side of the map after the stride-4 SAME conv and three 3x3/2 VALID max pools."""
    n = math.ceil(input_size / 4)
    for _ in range(3):
        n = (n - 3) // 2 + 1
    if n < 1:
        raise ValueError(f"input_size {input_size} is too small; the smallest is 57")
    return n


def _binary(cls, *args, kernel_quantizer, input_quantizer="ste_sign", **kwargs):
    return cls(*args, bias=False, input_quantizer=input_quantizer, weight_quantizer=kernel_quantizer,
               weight_constraint=WeightClip(), **kwargs)


class XNORNet(nn.Module):
    """XNOR-Net (Rastegari et al., 2016, https://arxiv.org/abs/1603.05279).

    Float 11x11/4 conv 96, then binary convs 5x5 256, 3x3 384, 384, 256, a binary conv over the
    whole m x m map to 4096 (6x6 at 224) and a binary 1x1 to 4096, float dense without bias.
    Binary convs: SteSign input, kernel sign(w) * mean|w| per output channel (MagnitudeAwareSign;
    Larq's ``xnor_weight_scale`` also clips to [-1, 1], which WeightClip already ensures), no bias.
    BNs without scale (gamma fixed at 1), Keras momentum 0.9.

    Args:
        num_classes, in_channels: classifier outputs, image channels.
        input_size: image side the model is built for.
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> None:
        super().__init__()

        def bn(c: int, eps: float = 1e-4) -> nn.BatchNorm2d:
            return keras_batch_norm(c, momentum=0.9, eps=eps, scale=False)

        def conv(cin: int, cout: int, k: int, padding="same") -> QuantConv2d:
            return _binary(QuantConv2d, cin, cout, k, padding=padding, kernel_quantizer=MagnitudeAwareSign())

        m = final_map_size(input_size)
        self.features = nn.Sequential(
            QuantConv2d(in_channels, 96, 11, 4, padding="same", bias=False), bn(96, 1e-5), nn.ReLU(),
            nn.MaxPool2d(3, 2), bn(96),
            conv(96, 256, 5), nn.MaxPool2d(3, 2), bn(256),
            conv(256, 384, 3), bn(384), conv(384, 384, 3), bn(384), conv(384, 256, 3),
            nn.MaxPool2d(3, 2), bn(256),
            conv(256, 4096, m, padding="valid"), bn(4096),
            conv(4096, 4096, 1, padding="valid"), bn(4096, 1e-3), nn.ReLU(), nn.Flatten(),
        )
        self.classifier = QuantLinear(4096, num_classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class BinaryAlexNet(nn.Module):
    """Binary AlexNet (Hubara et al., NIPS 2016): binary-kernel convs 11x11/4 64 (float input),
    5x5 192, 3x3 384, 384, 256 with 3x3/2 max pools after the 1st, 2nd and 5th; flatten; binary
    dense 4096, 4096, num_classes. SteSign inputs and kernels, WeightClip, no biases; a BN
    without scale (Keras momentum 0.9) after every layer.

    Args:
        num_classes, in_channels: classifier outputs, image channels.
        input_size: image side the model is built for (sets the flatten width).
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> None:
        super().__init__()
        layers, channels = [], in_channels
        for i, (out, k, stride, pool) in enumerate(((64, 11, 4, True), (192, 5, 1, True), (384, 3, 1, False),
                                                    (384, 3, 1, False), (256, 3, 1, True))):
            conv = _binary(QuantConv2d, channels, out, k, stride, padding="same", kernel_quantizer=SteSign(),
                           input_quantizer=None if i == 0 else "ste_sign")
            layers += [conv, *([nn.MaxPool2d(3, 2)] if pool else []),
                       keras_batch_norm(out, momentum=0.9, scale=False)]
            channels = out
        layers.append(nn.Flatten())
        features = channels * final_map_size(input_size) ** 2
        for units in (4096, 4096, num_classes):
            layers += [_binary(QuantLinear, features, units, kernel_quantizer=SteSign()),
                       keras_batch_norm(units, momentum=0.9, scale=False, dims=1)]
            features = units
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


@register_model("xnornet")
def xnornet(*, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> XNORNet:
    """XNOR-Net; see :class:`XNORNet`."""
    return XNORNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size)


@register_model("binary-alexnet")
def binary_alexnet(*, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> BinaryAlexNet:
    """Binary AlexNet; see :class:`BinaryAlexNet`."""
    return BinaryAlexNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
