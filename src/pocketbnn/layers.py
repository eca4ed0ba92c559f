"""Quantized layers: torch layers whose input and weight pass through quantizers.

Each layer is the torch layer of the same role plus keyword arguments ``input_quantizer``,
``weight_quantizer`` and ``weight_constraint`` (each ``None``, an alias string or an object);
convolutions add ``pad_value`` and TF-style ``padding="same"`` (asymmetric at stride 2). The op
computes

$$ y = \\mathrm{op}\\big(\\mathrm{pad}(q_x(x), \\text{pad\\_value}),\\ q_w(w)\\big) + b $$

With no quantizers and ``pad_value=0`` a layer equals its torch counterpart exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from pocketbnn.layers_base import QuantizedConv, QuantizedLayer, same_padding

__all__ = [
    "QuantConv1d",
    "QuantConv2d",
    "QuantDepthwiseConv2d",
    "QuantLinear",
    "QuantizedLayer",
    "quantized_layers",
    "quantized_state_dict",
    "same_padding",
]


class QuantConv1d(QuantizedConv, nn.Conv1d):
    """``nn.Conv1d`` with quantized input and weight (see module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias:
            as ``nn.Conv1d``; ``padding`` may also be ``"same"`` at any stride.
        input_quantizer, weight_quantizer, weight_constraint: see module docstring.
        pad_value: constant for explicit padding of the quantized input.
    """


class QuantConv2d(QuantizedConv, nn.Conv2d):
    """``nn.Conv2d`` with quantized input and weight (see module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias:
            as ``nn.Conv2d``; ``padding`` may also be ``"same"`` at any stride.
        input_quantizer, weight_quantizer, weight_constraint: see module docstring.
        pad_value: constant for explicit padding of the quantized input.
    """


class QuantDepthwiseConv2d(QuantConv2d):
    """Depthwise ``QuantConv2d``: ``groups = in_channels``, ``out = in_channels * depth_multiplier``.

    Args:
        in_channels: channels in (and groups).
        kernel_size, stride, padding, dilation, bias: as ``nn.Conv2d``.
        depth_multiplier: output channels per input channel.
        input_quantizer, weight_quantizer, weight_constraint, pad_value: as ``QuantConv2d``.
    """

    def __init__(self, in_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True, *, depth_multiplier: int = 1, **kwargs) -> None:
        super().__init__(in_channels, in_channels * depth_multiplier, kernel_size, stride,
                         padding, dilation, groups=in_channels, bias=bias, **kwargs)


class QuantLinear(QuantizedLayer, nn.Linear):
    """``nn.Linear`` with quantized input and weight: $y = q_x(x)\\, q_w(W)^T + b$.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        input_quantizer, weight_quantizer, weight_constraint: see module docstring.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 input_quantizer=None, weight_quantizer=None, weight_constraint=None,
                 device=None, dtype=None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_quantization(input_quantizer, weight_quantizer, weight_constraint)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(self.quantize_input(x), self.quantized_weight(), self.bias)


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, QuantizedLayer]]:
    """(name, layer) for every quantized layer in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLayer):
            yield name, module


def quantized_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """``model.state_dict()`` with each quantized layer's weight replaced by the weight its op
    uses, ``weight_quantizer(weight)`` — the deployed values (Larq's ``quantized_scope``)."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, layer in quantized_layers(model):
        key = f"{name}.weight" if name else "weight"
        if key in state:
            state[key] = layer.quantized_weight().detach().clone()
    return state
