"""Building blocks shared by the zoo: TF-"SAME" pooling, PokeBNN's shortcut reshaping and SE
gate, and QuickNet's blur pool. None of them has MACs under the cost model (§1.12); only the
SE gate has (quantized) convolutions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pocketbnn import quantizers
from pocketbnn.layers import QuantConv2d, QuantDepthwiseConv2d, same_padding

__all__ = ["BlurPool2d", "PokeSE", "TFSamePool2d", "init_weights", "int_quantizer", "keras_batch_norm",
           "reshape_shortcut", "variance_scaling_"]


def keras_batch_norm(channels: int, *, momentum: float = 0.99, eps: float = 1e-3, scale: bool = True,
                     center: bool = True, dims: int = 2) -> nn.modules.batchnorm._BatchNorm:
    """``BatchNorm{dims}d`` with Keras' arguments: running = m * running + (1 - m) * batch, so the
    torch momentum is 1 - m. ``scale=False`` keeps gamma fixed at 1 (not trainable),
    ``center=False`` beta at 0; with neither, the layer is not affine."""
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
    bn = cls(channels, eps=eps, momentum=1.0 - momentum, affine=scale or center)
    if bn.affine:
        bn.weight.requires_grad_(scale)
        bn.bias.requires_grad_(center)
    return bn


def variance_scaling_(weight: Tensor, scale: float = 1.0, mode: str = "fan_in") -> Tensor:
    r"""Keras/Flax ``VarianceScaling(scale, mode, "truncated_normal")``, in place: a normal
    truncated to $\pm 2σ'$ with $σ' = \sqrt{\text{scale}/n} / 0.8796$, where $n$ is fan-in,
    fan-out or their mean and 0.8796 is the std of a standard normal truncated at ±2 (so the
    result has variance scale/n). LeCun normal (Flax's default) is ``(1, "fan_in")``, He normal
    ``(2, "fan_in")``, Glorot normal ``(1, "fan_avg")``.

    Fans of a torch weight ``(out, in/groups, *kernel)``: in = ``in/groups * prod(kernel)``,
    out = ``out * prod(kernel)``. Sampled by inverse CDF,
    $w = σ'\sqrt2\,\mathrm{erf}^{-1}(u)$, $u \sim U(-\mathrm{erf}(\sqrt2), \mathrm{erf}(\sqrt2))$:
    one pass, unlike ``nn.init.trunc_normal_``'s rejection sampling (tens of seconds on
    PokeBNN-2.0x).
    """
    fan_in = weight[0].numel()
    fan_out = weight.shape[0] * weight[0, 0].numel()
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n) / 0.87962566103423978
    edge = math.erf(math.sqrt(2.0))
    with torch.no_grad():
        return weight.uniform_(-edge, edge).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2 * std, 2 * std)


def init_weights(model: nn.Module, scale: float = 1.0, mode: str = "fan_in") -> None:
    """:func:`variance_scaling_` on every trainable conv/linear kernel of ``model``; biases 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad:
            variance_scaling_(m.weight, scale, mode)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def int_quantizer(bits: int, *, channels: int | None = None, mode: str = "signed",
                  bound: float | None = None) -> quantizers.IntQuantizer:
    """PokeBNN's quantizer for one operand (spec §1.2–1.3).

    * ``channels=None, bound=None``: weights, bound max|w| per output channel each step.
    * ``bound=B``: fixed bound (binary activations, B = 3).
    * ``channels=C``: activations, per-channel EMA-max bound frozen at step 7500 (unquantized
      before that).
    """
    if bound is not None:
        return quantizers.IntQuantizer(bits, mode=mode, bound=bound)
    if channels is None:
        return quantizers.IntQuantizer(bits, mode=mode, bound=quantizers.MaxAbsWeightBound())
    return quantizers.IntQuantizer(bits, mode=mode, bound=quantizers.EmaMaxBound(channels))


class TFSamePool2d(nn.Module):
    r"""Max or average pooling with TensorFlow "SAME" padding (extra row/column bottom/right).

    The output has $\lceil n / s \rceil$ positions per axis. Max pooling pads with $-\infty$.
    Average pooling divides by the full window $k^2$ when ``count_include_pad`` (Flax's
    ``avg_pool``, used by PokeBNN's shortcuts), else by the number of real inputs in the window
    (Keras ``AveragePooling2D``).

    Args:
        kind: ``"max"`` or ``"avg"``.
        kernel_size, stride: square window and stride.
        count_include_pad: see above (average pooling only).
    """

    def __init__(self, kind: str, kernel_size: int, stride: int, *, count_include_pad: bool = True) -> None:
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")
        self.kind, self.kernel_size, self.stride = kind, kernel_size, stride
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        (top, bottom), (left, right) = (same_padding(n, self.kernel_size, self.stride, 1) for n in x.shape[-2:])
        pad = [left, right, top, bottom]
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, pad, value=-math.inf), self.kernel_size, self.stride)
        total = F.avg_pool2d(F.pad(x, pad), self.kernel_size, self.stride)
        if self.count_include_pad or not any(pad):
            return total
        ones = F.pad(torch.ones_like(x[:1, :1]), pad)
        return total / F.avg_pool2d(ones, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return (f"kind={self.kind!r}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"count_include_pad={self.count_include_pad}")


_SHORTCUT_POOL = TFSamePool2d("avg", 3, 2, count_include_pad=True)


def reshape_shortcut(r: Tensor, like: Tensor, method: str) -> Tensor:
    r"""PokeBNN's ReshapeAdd without the add: reshape ``r`` to ``like``'s shape (spec §1.7).

    With $C_\text{in}$, $C_\text{out}$ the channels of ``r`` and ``like``:

    1. $C_\text{in} > C_\text{out}$: $k = \lfloor C_\text{in}/C_\text{out} \rfloor$, keep the
       first $k C_\text{out}$ channels, $r'_j = \frac1k \sum_{i<k} r_{jk+i}$ (consecutive groups).
    2. $C_\text{in} < C_\text{out}$: ``"tile"``: $r'_j = r_{j \bmod C_\text{in}}$;
       ``"zeropad"``: append $C_\text{out} - C_\text{in}$ zero channels.
    3. Spatial sizes still differ: 3x3 stride-2 average pool, TF-SAME, divisor 9.

    Deviation: the reference tiles only when $C_\text{in}$ divides $C_\text{out}$; the rule above
    (tile $\lceil C_\text{out}/C_\text{in} \rceil$ times, keep the first $C_\text{out}$) equals it
    there and also builds width 1.4x (64 -> 356, 356 -> 716).
    """
    c_in, c_out = r.shape[1], like.shape[1]
    if c_in > c_out:
        k = c_in // c_out
        r = r[:, : c_out * k].unflatten(1, (c_out, k)).mean(2)
    elif c_in < c_out:
        if method == "tile":
            r = r.repeat(1, -(-c_out // c_in), *([1] * (r.dim() - 2)))[:, :c_out]
        elif method == "zeropad":
            r = F.pad(r, [0, 0] * (r.dim() - 2) + [0, c_out - c_in])
        else:
            raise ValueError(f"method must be 'tile' or 'zeropad', got {method!r}")
    if r.shape[2:] != like.shape[2:]:
        r = _SHORTCUT_POOL(r)
    return r


class PokeSE(nn.Module):
    r"""PokeBNN's squeeze-and-excite gate, computed from a PokeConv's input (spec §1.8).

    $$ s = \mathrm{hsig}\big(W_2\, q^{u}_4(\mathrm{relu}(W_1\, q_4(\bar x) + b_1)) + b_2\big),
       \qquad \mathrm{hsig}(v) = \min(\max(v + 3, 0), 6) / 6 $$

    $\bar x$ is the spatial mean, $q_4$ 4-bit symmetric and $q^u_4$ 4-bit unsigned activation
    quantizers (EMA-max bounds), $W_1: C_\text{in} \to \lfloor C_\text{in}/8 \rfloor$ and
    $W_2 \to C_\text{out}$ 4-bit per-output-channel weights, float biases. Output shape
    $(N, C_\text{out}, 1, 1)$.

    Args:
        in_channels, out_channels: $C_\text{in}$, $C_\text{out}$.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = in_channels // 8
        self.reduce = QuantConv2d(in_channels, hidden, 1, input_quantizer=int_quantizer(4, channels=in_channels),
                                  weight_quantizer=int_quantizer(4))
        self.expand = QuantConv2d(hidden, out_channels, 1,
                                  input_quantizer=int_quantizer(4, channels=hidden, mode="unsigned"),
                                  weight_quantizer=int_quantizer(4))

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        return F.hardsigmoid(self.expand(F.relu(self.reduce(s))))


class BlurPool2d(nn.Module):
    r"""QuickNet's anti-aliased downsampling: 2x2 stride-1 max pool (VALID), then a fixed
    depthwise blur, 3x3 stride 2, TF-SAME zero padding.

    $$ K = \tfrac{1}{16} \begin{pmatrix}1&2&1\\2&4&2\\1&2&1\end{pmatrix} \text{ per channel},
       \qquad n \to n - 1 \to \lceil (n-1)/2 \rceil $$

    The blur kernel is a non-trainable weight (``requires_grad=False``), as in Larq Zoo.

    Args:
        channels: channels in and out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.blur = QuantDepthwiseConv2d(channels, 3, stride=2, padding="same", bias=False)
        taps = torch.tensor([1.0, 2.0, 1.0])
        with torch.no_grad():
            self.blur.weight.copy_((torch.outer(taps, taps) / 16).expand_as(self.blur.weight))
        self.blur.weight.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.blur(F.max_pool2d(x, 2, 1))
