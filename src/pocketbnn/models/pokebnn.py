"""PokeBNN (Zhang et al., CVPR 2022, https://arxiv.org/abs/2112.00133), all published widths.

Topology (reference spec §1.1–1.10; google/aqt ``pokebnn.py``)::

    PokeInit: 8-bit conv 4x4/4 VALID C_in->32, BN, DPReLU,
              8-bit grouped conv 3x3 SAME 32->64 (32 groups), BN, DPReLU      (224 -> 56)
    16 bottlenecks, ResNet-50 layout [3, 4, 6, 3], widths f = int(base * m), base 64..512:
              PokeConv 1x1 (C->f), PokeConv 3x3 (f->f, stride on the first block of
              stages 2-4), PokeConv 1x1 (f->4f, long shortcut from the bottleneck input)
    spatial mean, 8-bit dense 4f -> num_classes with bias

PokeConv (§1.7), with x its real-valued input and r the bottleneck input (third conv only)::

    y = BN_a(conv_binary(q_1(x)))            # ±1.5 activations (B = 3), ±max|w|/2 weights
    y = y + reshape_shortcut(x, y, "zeropad") [+ reshape_shortcut(r, y, "tile")]
    y = BN_b(DPReLU(y) * SE(x))

Deviation (1.4x): the reference's tile shortcut needs C_out % C_in == 0, which fails for
64 -> 356 and 356 -> 716; :func:`~pocketbnn.models.blocks.reshape_shortcut` tiles
ceil(C_out/C_in) times and keeps the first C_out channels. MACs, sizes and parameters are
unaffected (shortcuts have none).
"""

from __future__ import annotations

from torch import Tensor, nn

from pocketbnn.activations import DPReLU
from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.models._api import register_model
from pocketbnn.models.blocks import PokeSE, init_weights, int_quantizer, reshape_shortcut

__all__ = ["PokeBNN", "PokeConv", "PokeInit", "WIDTHS", "pokebnn"]

#: Width multipliers with published results (PokeBNN Table 2).
WIDTHS = (0.5, 0.75, 1.0, 1.25, 1.4, 1.5, 1.75, 2.0)

#: (blocks, base width) per stage, ResNet-50 layout.
_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))

#: Binary activation clip bound B (Table 3's best).
_BINARY_BOUND = 3.0


def _bn(channels: int, zero_gamma: bool = False) -> nn.BatchNorm2d:
    """Flax BN momentum 0.9 = torch momentum 0.1, eps 1e-5; gamma 0 for a bottleneck's last BN_a."""
    bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    if zero_gamma:
        nn.init.zeros_(bn.weight)
    return bn


class PokeInit(nn.Sequential):
    """PokeBNN's stem: non-overlapping 8-bit 4x4/4 patchify conv to 32 channels, then an 8-bit
    3x3 grouped conv (1 -> 2 channels per group) to 64; BN + DPReLU after each. Fixed widths."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__(
            QuantConv2d(in_channels, 32, 4, stride=4, padding="valid", bias=False,
                        input_quantizer=int_quantizer(8, channels=in_channels),
                        weight_quantizer=int_quantizer(8)),
            _bn(32), DPReLU(32),
            QuantConv2d(32, 64, 3, padding="same", groups=32, bias=False,
                        input_quantizer=int_quantizer(8, channels=32), weight_quantizer=int_quantizer(8)),
            _bn(64), DPReLU(64),
        )


class PokeConv(nn.Module):
    """One binary conv with its BN, local (and optional long) shortcut, DPReLU, SE gate and the
    trailing BN (module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride: of the binary conv (TF-SAME, zero padding).
        zero_gamma: initialise BN_a's scale to 0 (the third conv of a bottleneck).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *,
                 zero_gamma: bool = False) -> None:
        super().__init__()
        self.conv = QuantConv2d(in_channels, out_channels, kernel_size, stride, padding="same", bias=False,
                                input_quantizer=int_quantizer(1, mode="signed_half_shift", bound=_BINARY_BOUND),
                                weight_quantizer=int_quantizer(1, mode="signed_half_shift"))
        self.bn_a = _bn(out_channels, zero_gamma)
        self.act = DPReLU(out_channels)
        self.se = PokeSE(in_channels, out_channels)
        self.bn_b = _bn(out_channels)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        y = self.bn_a(self.conv(x))
        y = y + reshape_shortcut(x, y, "zeropad")
        if residual is not None:
            y = y + reshape_shortcut(residual, y, "tile")
        return self.bn_b(self.act(y) * self.se(x))


class _Bottleneck(nn.Module):
    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = PokeConv(in_channels, width, 1)
        self.conv2 = PokeConv(width, width, 3, stride)
        self.conv3 = PokeConv(width, 4 * width, 1, zero_gamma=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.conv2(self.conv1(x)), x)


class PokeBNN(nn.Module):
    """PokeBNN at width multiplier ``width`` (module docstring).

    Args:
        width: multiplier m; stage widths are ``int(base * m)``.
        num_classes: outputs of the 8-bit classifier.
        in_channels: image channels.
    """

    def __init__(self, width: float = 1.0, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = PokeInit(in_channels)
        blocks, channels = [], 64
        for stage, (n_blocks, base) in enumerate(_STAGES):
            f = int(base * width)
            for i in range(n_blocks):
                blocks.append(_Bottleneck(channels, f, 2 if stage > 0 and i == 0 else 1))
                channels = 4 * f
        self.blocks = nn.Sequential(*blocks)
        self.classifier = QuantLinear(channels, num_classes, input_quantizer=int_quantizer(8, channels=channels),
                                      weight_quantizer=int_quantizer(8))
        init_weights(self)  # LeCun normal, Flax's default

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


def pokebnn(*, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3) -> PokeBNN:
    """PokeBNN at width ``width`` (registered as ``"pokebnn-{width}x"`` for every published width).

    Args:
        width: multiplier, any positive value; the published ones are :data:`WIDTHS`.
        num_classes, in_channels: as :class:`PokeBNN`.
    """
    return PokeBNN(width, num_classes=num_classes, in_channels=in_channels)


def _registered(width: float):
    def build(*, num_classes: int = 1000, in_channels: int = 3) -> PokeBNN:
        return PokeBNN(width, num_classes=num_classes, in_channels=in_channels)

    build.__doc__ = f"PokeBNN-{width}x (see :class:`PokeBNN`)."
    return build


for _w in WIDTHS:
    register_model(f"pokebnn-{_w}x", _registered(_w))
