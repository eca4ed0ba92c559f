"""Activations of binarized networks: Larq's ``hard_tanh``/``leaky_tanh``, PokeBNN's DPReLU and
ReActNet's RPReLU and learnable-threshold sign.

Per-channel parameters have shape ``(C,)`` and act on dimension 1, so the same module works on
``(N, C)`` and ``(N, C, H, W)`` (any ``(N, C, ...)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pocketbnn import quantizers

__all__ = ["DPReLU", "LeakyTanh", "LearnableThresholdSign", "RPReLU", "hard_tanh", "leaky_tanh"]


def _per_channel(p: Tensor, x: Tensor) -> Tensor:
    """View a ``(C,)`` parameter so it broadcasts over dimension 1 of ``x``."""
    return quantizers._channel_view(p, x.dim(), 1)


def hard_tanh(x: Tensor) -> Tensor:
    r"""Larq's hard tanh.

    $$ f(x) = \mathrm{clip}(x, -1, 1), \qquad
       f'(x) = \begin{cases} 1 & |x| \le 1 \\ 0 & \text{otherwise} \end{cases} $$

    The gradient is 1 at |x| = 1 (TF's ``clip_by_value``); ``torch.nn.Hardtanh`` gives 0 there.
    """
    return torch.clamp(x, -1.0, 1.0)


def leaky_tanh(x: Tensor, alpha: float = 0.2) -> Tensor:
    r"""Larq's leaky tanh: hard tanh with slope ``alpha`` outside [-1, 1].

    $$ f(x) = \mathrm{clip}(x, -1, 1) + \alpha(\max(x, 1) - 1) + \alpha(\min(x, -1) + 1) $$

    $$ f'(x) = \begin{cases} 1 + \alpha & |x| = 1 \\ 1 & |x| < 1 \\ \alpha & |x| > 1 \end{cases} $$

    At |x| = 1 both terms pass the gradient, as TF's ``clip_by_value`` and ``maximum`` do.
    """
    return hard_tanh(x) + alpha * (torch.clamp_min(x, 1.0) - 1.0) + alpha * (torch.clamp_max(x, -1.0) + 1.0)


class LeakyTanh(nn.Module):
    """Module form of :func:`leaky_tanh`.

    Args:
        alpha: slope outside [-1, 1].
    """

    def __init__(self, alpha: float = 0.2) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return leaky_tanh(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class DPReLU(nn.Module):
    r"""PokeBNN's dynamic PReLU: learnable input shift, output shift and both slopes, per channel.

    $$ z = x - b^x_c, \qquad
       y = \begin{cases} p_c z & z \ge 0 \\ n_c z & z < 0 \end{cases} - b^y_c $$

    (note: minus $b^y$). Initial values: $b^x = b^y = 0$, $p = 1$, $n = 0.25$, i.e. a PReLU.
    PokeBNN casts the output to bfloat16; this module keeps the input dtype.

    Args:
        num_channels: C, the size of dimension 1.

    References:
        Zhang et al., "PokeBNN", CVPR 2022. https://arxiv.org/abs/2112.00133
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.bias_x = nn.Parameter(torch.zeros(num_channels))
        self.bias_y = nn.Parameter(torch.zeros(num_channels))
        self.pos_slope = nn.Parameter(torch.ones(num_channels))
        self.neg_slope = nn.Parameter(torch.full((num_channels,), 0.25))

    def forward(self, x: Tensor) -> Tensor:
        z = x - _per_channel(self.bias_x, x)
        slope = torch.where(z >= 0, _per_channel(self.pos_slope, x), _per_channel(self.neg_slope, x))
        return slope * z - _per_channel(self.bias_y, x)

    def extra_repr(self) -> str:
        return f"num_channels={self.bias_x.numel()}"


class RPReLU(nn.Module):
    r"""ReActNet's RPReLU: a PReLU between two learnable per-channel shifts.

    $$ y = \begin{cases} x - \gamma_c + \zeta_c & x > \gamma_c \\
                         \beta_c (x - \gamma_c) + \zeta_c & x \le \gamma_c \end{cases} $$

    Initial values: $\gamma = \zeta = 0$, $\beta = 0.25$ (``nn.PReLU``'s default).

    Args:
        num_channels: C, the size of dimension 1.

    References:
        Liu et al., "ReActNet", ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(num_channels))
        self.zeta = nn.Parameter(torch.zeros(num_channels))
        self.slope = nn.Parameter(torch.full((num_channels,), 0.25))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x - _per_channel(self.gamma, x), self.slope) + _per_channel(self.zeta, x)

    def extra_repr(self) -> str:
        return f"num_channels={self.gamma.numel()}"


class LearnableThresholdSign(nn.Module):
    r"""ReActNet's RSign: binarize with a learnable per-channel threshold.

    $$ y = q(x - \alpha_c), \qquad q = \text{ste\_sign by default:}\quad
       y = \begin{cases} +1 & x \ge \alpha_c \\ -1 & x < \alpha_c \end{cases} $$

    $$ \frac{\partial y}{\partial x} = -\frac{\partial y}{\partial \alpha_c} = q'(x - \alpha_c) $$

    (clipped STE: $1[|x - \alpha_c| \le 1]$). sign(0) = +1, so $x = \alpha_c$ gives +1.
    ReActNet's own code uses the ApproxSign gradient: pass ``quantizer="approx_sign"``.
    $\alpha$ starts at 0. ``precision`` is the inner quantizer's.

    Args:
        num_channels: C, the size of dimension 1.
        quantizer: anything :func:`pocketbnn.quantizers.get` accepts.

    References:
        Liu et al., "ReActNet", ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    def __init__(self, num_channels: int, quantizer="ste_sign") -> None:
        super().__init__()
        self.threshold = nn.Parameter(torch.zeros(num_channels))
        self.quantizer = quantizers.get(quantizer)

    @property
    def precision(self) -> int:
        return getattr(self.quantizer, "precision", 32)

    def forward(self, x: Tensor) -> Tensor:
        return self.quantizer(x - _per_channel(self.threshold, x))
