"""What every quantized layer shares: quantizers, constraint, and TF-style padding."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from pocketbnn import constraints, quantizers


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    r"""TensorFlow "SAME" padding of one axis as (before, after).

    $$ t = \max\big((\lceil n/s \rceil - 1)s + (k-1)d + 1 - n,\ 0\big),\quad
       \text{before} = \lfloor t/2 \rfloor,\quad \text{after} = t - \text{before} $$

    so the output has $\lceil n/s \rceil$ positions and an odd total puts the extra pad
    after (bottom/right), e.g. (0, 1) for a 3x3 stride-2 kernel on an even size.
    """
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _starved_weights_warning(layer: str, quantizer: nn.Module) -> None:
    warnings.warn(
        f"{layer} binarizes its weights with {type(quantizer).__name__}, whose gradient is "
        "clipped, but has no weight_constraint: latent weights beyond the clip value get no "
        "gradient and cannot recover. Pass weight_constraint=WeightClip(...).",
        stacklevel=4,
    )


class QuantizedLayer(nn.Module):
    """Mixin for layers with ``input_quantizer``, ``weight_quantizer`` and ``weight_constraint``.

    The forward pass quantizes the input, then runs the float op on the quantized weight.
    With all three ``None`` a layer is exactly its torch counterpart.
    """

    input_quantizer: nn.Module | None
    weight_quantizer: nn.Module | None

    def _init_quantization(self, input_quantizer, weight_quantizer, weight_constraint) -> None:
        self.input_quantizer = quantizers.get(input_quantizer)
        self.weight_quantizer = quantizers.get(weight_quantizer)
        self.weight_constraint = constraints.get(weight_constraint)
        wq = self.weight_quantizer
        if (wq is not None and getattr(wq, "precision", 32) == 1
                and getattr(wq, "clip_value", None) is not None and self.weight_constraint is None):
            _starved_weights_warning(type(self).__name__, wq)

    @property
    def input_precision(self) -> int:
        """Bits per input value seen by the op (32 when the input is not quantized)."""
        return getattr(self.input_quantizer, "precision", 32)

    @property
    def weight_precision(self) -> int:
        """Bits per weight value used by the op (32 when weights are not quantized)."""
        return getattr(self.weight_quantizer, "precision", 32)

    def quantized_weight(self) -> Tensor:
        """The weight the op uses: ``weight_quantizer(weight)``, or ``weight`` itself."""
        return self.weight if self.weight_quantizer is None else self.weight_quantizer(self.weight)

    def quantize_input(self, x: Tensor) -> Tensor:
        return x if self.input_quantizer is None else self.input_quantizer(x)


class QuantizedConv(QuantizedLayer):
    """Adds ``pad_value`` and TF-style ``"same"`` padding to a quantized ``nn._ConvNd``.

    When ``padding="same"`` or ``pad_value != 0``, padding is applied explicitly to the
    *already quantized* input with the constant ``pad_value`` and the conv runs unpadded.
    ``pad_value=1.0`` after a sign quantizer is "one-padding", which the engine runs for free.

    Subclasses list this class before the torch conv (``class QuantConv2d(QuantizedConv,
    nn.Conv2d)``), so ``super().__init__`` below is the torch conv's constructor.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, input_quantizer=None,
                 weight_quantizer=None, weight_constraint=None, pad_value: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         self._torch_padding(padding, pad_value), dilation, groups, bias,
                         device=device, dtype=dtype)
        self._init_padding(padding, pad_value)
        self._init_quantization(input_quantizer, weight_quantizer, weight_constraint)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self._pad(self.quantize_input(x)), self.quantized_weight(), self.bias)

    @staticmethod
    def _torch_padding(padding: str | int | Sequence[int], pad_value: float) -> str | int | Sequence[int]:
        """The padding to hand to the torch conv: 0 when padding is applied explicitly."""
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
        explicit = padding == "same" or (float(pad_value) != 0.0 and padding != "valid")
        return 0 if explicit else padding

    def _init_padding(self, padding: str | int | Sequence[int], pad_value: float) -> None:
        self.pad_value = float(pad_value)
        self._padding_rule = padding
        self._explicit = self._torch_padding(padding, pad_value) != padding

    def padding_amounts(self, spatial: Sequence[int]) -> list[tuple[int, int]]:
        """(before, after) padding per spatial axis for an input of spatial size ``spatial``."""
        rule = self._padding_rule
        if rule == "same":
            return [same_padding(n, k, s, d) for n, k, s, d in
                    zip(spatial, self.kernel_size, self.stride, self.dilation)]
        if rule == "valid":
            return [(0, 0)] * len(spatial)
        per_axis = (rule,) * len(spatial) if isinstance(rule, int) else tuple(rule)
        return [(a, a) for a in per_axis]

    def _pad(self, x: Tensor) -> Tensor:
        """Pad the quantized input explicitly when the rule needs it (see class docstring)."""
        if not self._explicit:
            return x
        amounts = self.padding_amounts(x.shape[2:])
        if not any(before or after for before, after in amounts):
            return x
        # F.pad lists the last axis first.
        return F.pad(x, [v for pair in reversed(amounts) for v in pair], value=self.pad_value)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, padding_rule={self._padding_rule!r}, pad_value={self.pad_value}"
