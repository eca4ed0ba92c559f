"""Quantizers: the forward map to a low-precision value and the pseudo-gradient used to train it.

Every quantizer is an ``nn.Module`` with a ``precision`` attribute (bits); it is the one
contract between quantizers, the cost model, Bop and the converter. Quantizers can be named by
string alias (``get("ste_sign")``).

Two families live here:

* Larq's quantizers (``SteSign``, ``ApproxSign``, ``SwishSign``, ``SteHeaviside``,
  ``MagnitudeAwareSign``, ``SteTern``, ``DoReFa``, ``NoOp``): a functional form plus a thin
  module each.
* PokeBNN's int-b fake quantizer ``IntQuantizer`` (AQT arithmetic) with pluggable bounds:
  ``FixedBound``, ``EmaMaxBound`` (calibrated activation bound) and ``MaxAbsWeightBound``.

Conventions: sign(0) = +1 everywhere. In PyTorch a weight is laid out ``(out, in, *kernel)``,
so "per output channel" means a reduction over every dimension except dim 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from pocketbnn.math import heaviside, sign

__all__ = [
    "ApproxSign",
    "DoReFa",
    "EmaMaxBound",
    "FixedBound",
    "IntQuantizer",
    "MagnitudeAwareSign",
    "MaxAbsWeightBound",
    "NoOp",
    "Quantizer",
    "SteHeaviside",
    "SteSign",
    "SteTern",
    "SwishSign",
    "approx_sign",
    "dorefa",
    "get",
    "int_quantize",
    "magnitude_aware_sign",
    "register_alias",
    "set_bound_step",
    "set_weight_quantization",
    "ste_heaviside",
    "ste_sign",
    "ste_tern",
    "swish_sign",
]

_ALIASES: dict[str, type[Quantizer]] = {}


def register_alias(name: str) -> Callable[[type[Quantizer]], type[Quantizer]]:
    """Class decorator: make quantizer class available as ``get(name)``."""

    def register(cls: type[Quantizer]) -> type[Quantizer]:
        if name in _ALIASES:
            raise ValueError(f"quantizer alias {name!r} is already registered to {_ALIASES[name].__name__}")
        _ALIASES[name] = cls
        return cls

    return register


class Quantizer(nn.Module):
    """Base class of quantizers: ``forward`` maps a tensor to its quantized value.

    Subclasses set ``precision`` (bits per value) as a class or instance attribute.
    """

    precision: int = 32

    def extra_repr(self) -> str:
        return f"precision={self.precision}"


def get(identifier: Any) -> nn.Module | None:
    """Resolve a quantizer from ``None``, an alias string, a ``{"name": ..., **kwargs}`` dict,
    a ``Quantizer`` instance or any callable (wrapped so it can sit in an ``nn.Module``).

    Raises:
        ValueError: the identifier names no registered quantizer or has an unusable type.
    """
    if identifier is None or isinstance(identifier, nn.Module):
        return identifier
    if isinstance(identifier, str):
        return _from_alias(identifier, {})
    if isinstance(identifier, dict):
        kwargs = dict(identifier)
        if "name" not in kwargs:
            raise ValueError(f"a quantizer dict needs a 'name' key, got {identifier!r}")
        return _from_alias(kwargs.pop("name"), kwargs)
    if callable(identifier):
        return _Lambda(identifier)
    raise ValueError(f"cannot interpret {identifier!r} as a quantizer")


def _from_alias(name: str, kwargs: dict[str, Any]) -> Quantizer:
    try:
        cls = _ALIASES[name]
    except KeyError:
        raise ValueError(f"unknown quantizer {name!r}; known: {', '.join(sorted(_ALIASES))}") from None
    return cls(**kwargs)


class _Lambda(Quantizer):
    """A plain function used as a quantizer; its ``precision`` attribute is kept if present."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn
        self.precision = getattr(fn, "precision", 32)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


# ----------------------------------------------------------------------------------------------
# Shared primitives


def _straight_through(value: Tensor, surrogate: Tensor) -> Tensor:
    # Exactly `value` in the forward pass, gradient of `surrogate` in the backward pass. The
    # usual `surrogate + (value - surrogate).detach()` is not exact once |surrogate| >> 1
    # (float32: 3e7 + (1 - 3e7) == 0).
    return value + (surrogate - surrogate.detach())


def _clipped_straight_through(value: Tensor, x: Tensor, clip_value: float | None) -> Tensor:
    """``value`` forward; gradient ``1[|x| <= clip_value]`` w.r.t. ``x`` (1 if ``clip_value`` is None)."""
    surrogate = x if clip_value is None else torch.where(x.abs() <= clip_value, x, torch.zeros_like(x))
    return _straight_through(value, surrogate)


def _floor_ste(x: Tensor) -> Tensor:
    """floor(x) forward, identity gradient (AQT's ``floor_with_gradient``). AQT rounds with
    ``floor(x + 0.5)`` through this same primitive."""
    return _straight_through(torch.floor(x), x)


def _per_output_channel(x: Tensor, reduce: Callable[..., Tensor]) -> Tensor:
    """``reduce(x, dim=1)`` over all dimensions but dim 0, shaped ``(C, 1, ..., 1)`` to broadcast."""
    return reduce(x.reshape(x.shape[0], -1), dim=1).reshape((-1,) + (1,) * (x.dim() - 1))


def _channel_view(values: Tensor, ndim: int, channel_dim: int) -> Tensor:
    """Shape a per-channel vector ``(C,)`` to broadcast against an ``ndim`` tensor on ``channel_dim``;
    a 0-d tensor is returned as is."""
    if values.dim() == 0:
        return values
    shape = [1] * ndim
    shape[channel_dim] = -1
    return values.reshape(shape)


class _PseudoGradientSign(torch.autograd.Function):
    """sign(x) forward (sign(0) = +1); backward ``dy * pseudo_gradient(x)``."""

    @staticmethod
    def forward(ctx, x: Tensor, pseudo_gradient: Callable[[Tensor], Tensor]) -> Tensor:
        ctx.save_for_backward(x)
        ctx.pseudo_gradient = pseudo_gradient
        return sign(x)

    @staticmethod
    def backward(ctx, dy: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return dy * ctx.pseudo_gradient(x), None


# ----------------------------------------------------------------------------------------------
# Larq quantizers


def ste_sign(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    """Functional form of :class:`SteSign`."""
    return _clipped_straight_through(sign(x), x, clip_value)


@register_alias("ste_sign")
class SteSign(Quantizer):
    r"""Binarize to ±1; gradient by the clipped straight-through estimator.

    $$ q(x) = \begin{cases} -1 & x < 0 \\ +1 & x \ge 0 \end{cases} $$

    $$ \frac{\partial q}{\partial x} =
       \begin{cases} 1 & |x| \le \text{clip\_value} \\ 0 & \text{otherwise} \end{cases} $$

    sign(0) = +1, matching the engine's bit 0.

    Args:
        clip_value: gradient is zero where |x| exceeds this; ``None`` never clips.

    References:
        Hubara et al., "Binarized Neural Networks", 2016. https://arxiv.org/abs/1602.02830
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0) -> None:
        super().__init__()
        self.clip_value = clip_value

    def forward(self, x: Tensor) -> Tensor:
        return ste_sign(x, self.clip_value)

    def extra_repr(self) -> str:
        return f"clip_value={self.clip_value}"


def _approx_sign_gradient(x: Tensor) -> Tensor:
    return torch.where(x.abs() <= 1.0, 2.0 - 2.0 * x.abs(), torch.zeros_like(x))


def approx_sign(x: Tensor) -> Tensor:
    """Functional form of :class:`ApproxSign`."""
    return _PseudoGradientSign.apply(x, _approx_sign_gradient)


@register_alias("approx_sign")
class ApproxSign(Quantizer):
    r"""Binarize to ±1; gradient of Bi-Real Net's piecewise-quadratic approximation of sign.

    $$ q(x) = \begin{cases} -1 & x < 0 \\ +1 & x \ge 0 \end{cases} $$

    $$ \frac{\partial q}{\partial x} =
       \begin{cases} 2 - 2|x| & |x| \le 1 \\ 0 & \text{otherwise} \end{cases} $$

    sign(0) = +1.

    References:
        Liu et al., "Bi-Real Net", ECCV 2018. https://arxiv.org/abs/1808.00278
    """

    precision = 1

    def forward(self, x: Tensor) -> Tensor:
        return approx_sign(x)


def swish_sign(x: Tensor, beta: float = 5.0) -> Tensor:
    """Functional form of :class:`SwishSign`."""

    def gradient(x: Tensor) -> Tensor:
        bx = beta * x
        return beta * (2.0 - bx * torch.tanh(bx * 0.5)) / (1.0 + torch.cosh(bx))

    return _PseudoGradientSign.apply(x, gradient)


@register_alias("swish_sign")
class SwishSign(Quantizer):
    r"""Binarize to ±1; gradient of BNN+'s SignSwish, $2\sigma(\beta x)(1 + \beta x(1 - \sigma(\beta x))) - 1$.

    $$ q(x) = \begin{cases} -1 & x < 0 \\ +1 & x \ge 0 \end{cases} $$

    $$ \frac{\partial q}{\partial x} =
       \frac{\beta \left(2 - \beta x \tanh(\beta x / 2)\right)}{1 + \cosh(\beta x)} $$

    sign(0) = +1. The gradient peaks at $\beta$ for x = 0 and is negative for larger |x|.

    Args:
        beta: sharpness of the surrogate; larger is closer to sign.

    References:
        Darabi et al., "BNN+: Improved Binary Network Training", 2018.
        https://arxiv.org/abs/1812.11800
    """

    precision = 1

    def __init__(self, beta: float = 5.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return swish_sign(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


def ste_heaviside(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    """Functional form of :class:`SteHeaviside`."""
    return _clipped_straight_through(heaviside(x), x, clip_value)


@register_alias("ste_heaviside")
class SteHeaviside(Quantizer):
    r"""Binarize to {0, 1} with the Heaviside step; gradient by the clipped straight-through estimator.

    $$ q(x) = \begin{cases} +1 & x > 0 \\ 0 & x \le 0 \end{cases} $$

    $$ \frac{\partial q}{\partial x} =
       \begin{cases} 1 & |x| \le \text{clip\_value} \\ 0 & \text{otherwise} \end{cases} $$

    heaviside(0) = 0 (Larq's ``heaviside``).

    Args:
        clip_value: gradient is zero where |x| exceeds this; ``None`` never clips.

    References:
        Larq, ``larq.quantizers.SteHeaviside``. https://docs.larq.dev/larq/api/quantizers/
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0) -> None:
        super().__init__()
        self.clip_value = clip_value

    def forward(self, x: Tensor) -> Tensor:
        return ste_heaviside(x, self.clip_value)

    def extra_repr(self) -> str:
        return f"clip_value={self.clip_value}"


def magnitude_aware_sign(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    """Functional form of :class:`MagnitudeAwareSign`."""
    scale = _per_output_channel(x.detach().abs(), torch.mean)
    return scale * ste_sign(x, clip_value)


@register_alias("magnitude_aware_sign")
class MagnitudeAwareSign(Quantizer):
    r"""Binarize to ±a with a per-output-channel scale a = mean|x| (XNOR-Net / Bi-Real weights).

    $$ q(x) = a_o \cdot \mathrm{sign}(x), \qquad
       a_o = \operatorname{stop\_gradient}\Big(\operatorname{mean}_{i,k} |x_{o,i,k}|\Big) $$

    $$ \frac{\partial q}{\partial x} =
       \begin{cases} a_o & |x| \le \text{clip\_value} \\ 0 & \text{otherwise} \end{cases} $$

    sign(0) = +1. The mean runs over every dimension except dim 0, which is the output-channel
    dimension of a PyTorch weight ``(out, in, *kernel)`` (Larq's Keras kernels put it last and
    reduce over all other axes: the same per-output-channel scale). A 1-d tensor gets a = |x|.
    Meant for weights: on an activation ``(N, C, ...)`` dim 0 is the batch.

    Args:
        clip_value: gradient is zero where |x| exceeds this; ``None`` never clips.

    References:
        Liu et al., "Bi-Real Net", ECCV 2018. https://arxiv.org/abs/1808.00278
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0) -> None:
        super().__init__()
        self.clip_value = clip_value

    def forward(self, x: Tensor) -> Tensor:
        return magnitude_aware_sign(x, self.clip_value)

    def extra_repr(self) -> str:
        return f"clip_value={self.clip_value}"


def ste_tern(x: Tensor, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
             clip_value: float | None = 1.0) -> Tensor:
    """Functional form of :class:`SteTern`."""
    threshold = 0.7 * x.detach().abs().mean() if ternary_weight_networks else threshold_value
    one = torch.ones_like(x)
    value = torch.where(x >= threshold, one, torch.where(x <= -threshold, -one, torch.zeros_like(x)))
    return _clipped_straight_through(value, x, clip_value)


@register_alias("ste_tern")
class SteTern(Quantizer):
    r"""Ternarize to {-1, 0, +1} with threshold Δ; gradient by the clipped straight-through estimator.

    $$ q(x) = \begin{cases} +1 & x \ge \Delta \\ 0 & |x| < \Delta \\ -1 & x \le -\Delta \end{cases} $$

    $$ \frac{\partial q}{\partial x} =
       \begin{cases} 1 & |x| \le \text{clip\_value} \\ 0 & \text{otherwise} \end{cases} $$

    Δ = ``threshold_value``, or with ``ternary_weight_networks`` Δ = 0.7·mean|x| over the whole
    tensor (TWN). Δ is compared in the tensor's dtype.

    Args:
        threshold_value: Δ when ``ternary_weight_networks`` is False.
        ternary_weight_networks: compute Δ per call from the tensor, as in TWN.
        clip_value: gradient is zero where |x| exceeds this; ``None`` never clips.

    References:
        Li et al., "Ternary Weight Networks", 2016. https://arxiv.org/abs/1605.04711
    """

    precision = 2

    def __init__(self, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
                 clip_value: float | None = 1.0) -> None:
        super().__init__()
        self.threshold_value = threshold_value
        self.ternary_weight_networks = ternary_weight_networks
        self.clip_value = clip_value

    def forward(self, x: Tensor) -> Tensor:
        return ste_tern(x, self.threshold_value, self.ternary_weight_networks, self.clip_value)

    def extra_repr(self) -> str:
        return (f"threshold_value={self.threshold_value}, "
                f"ternary_weight_networks={self.ternary_weight_networks}, clip_value={self.clip_value}")


_DOREFA_MODES = ("activations", "weights")


def dorefa(x: Tensor, k_bit: int = 2, mode: str = "activations") -> Tensor:
    """Functional form of :class:`DoReFa`; ``mode`` must be ``"activations"`` or ``"weights"``."""
    if mode == "activations":
        unit = torch.clamp(x, 0.0, 1.0)
    else:
        t = torch.tanh(x)
        max_abs = t.detach().abs().max()
        # Larq's divide_no_nan: max|tanh w| = 0 only if every t is 0, and then t / 1 = 0.
        unit = t / torch.where(max_abs > 0, 2.0 * max_abs, torch.ones_like(max_abs)) + 0.5
    n = 2**k_bit - 1
    # torch.round is round-half-to-even, as Larq's tf.round (AQT's floor(x + 0.5) differs at ties).
    q = _straight_through(torch.round(unit * n), unit * n) / n
    return q if mode == "activations" else 2.0 * q - 1.0


@register_alias("dorefa_quantizer")
class DoReFa(Quantizer):
    r"""k-bit uniform quantizer of DoReFa-Net, for activations in [0, 1] or weights in [-1, 1].

    With $n = 2^k - 1$ and $r(u) = \mathrm{round}(u n)/n$ (half to even, identity gradient):

    activations: $q(x) = r(\mathrm{clip}(x, 0, 1))$, so
    $\partial q/\partial x = 1[0 \le x \le 1]$;

    weights: $u = \dfrac{\tanh w}{2\,\operatorname{stop\_gradient}(\max |\tanh w|)} + \tfrac12$,
    $q(w) = 2\,r(u) - 1$, so
    $\partial q/\partial w = \dfrac{1 - \tanh^2 w}{\max |\tanh w|}$ (the max is over the whole
    tensor; u = 1/2 when it is 0).

    Values: activations in $\{0, 1/n, \dots, 1\}$; weights in $\{-1, -1 + 2/n, \dots, 1\}$.

    Args:
        k_bit: bits per value (``precision``).
        mode: ``"activations"`` or ``"weights"``.

    Raises:
        ValueError: ``mode`` is neither.

    References:
        Zhou et al., "DoReFa-Net", 2016. https://arxiv.org/abs/1606.06160
    """

    def __init__(self, k_bit: int = 2, mode: str = "activations") -> None:
        super().__init__()
        if mode not in _DOREFA_MODES:
            raise ValueError(f"DoReFa mode must be one of {_DOREFA_MODES}, got {mode!r}")
        self.precision = k_bit
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return dorefa(x, self.precision, self.mode)

    def extra_repr(self) -> str:
        return f"k_bit={self.precision}, mode={self.mode!r}"


@register_alias("noop")
class NoOp(Quantizer):
    r"""Identity that declares a precision: $q(x) = x$, $\partial q / \partial x = 1$.

    Marks a tensor's precision without changing it, e.g. ``NoOp(precision=1)`` on weights that
    Bop keeps at ±1 itself.

    Args:
        precision: bits per value the tensor is declared to have.
    """

    def __init__(self, precision: int) -> None:
        super().__init__()
        self.precision = precision

    def forward(self, x: Tensor) -> Tensor:
        return x


# ----------------------------------------------------------------------------------------------
# PokeBNN / AQT int-b fake quantizer

_EPS32 = torch.finfo(torch.float32).eps  # AQT's jnp.finfo(jnp.float32).eps = 2**-23
_HALF_SHIFT_MARGIN = 2.0**-7  # keeps clip(x)·scale below the next level so floor gives 2^p levels


def _scale(levels: float, bound: Tensor) -> Tensor:
    """levels / (bound + eps32), stop-gradient. A tensor numerator keeps the division exact:
    torch computes ``float / tensor`` as ``float * (1 / tensor)``, an ulp away at times."""
    return bound.new_tensor(levels) / (bound.detach() + _EPS32)


def _signed(x: Tensor, bound: Tensor, bits: int) -> Tensor:
    qmax = 2.0 ** (bits - 1) - 1.0
    scale = _scale(qmax, bound)
    return _floor_ste(torch.clamp(x * scale, -qmax, qmax) + 0.5) / scale


def _signed_half_shift(x: Tensor, bound: Tensor, bits: int) -> Tensor:
    qmax = 2.0 ** (bits - 1)
    scale = _scale(qmax, bound)
    limit = qmax - _HALF_SHIFT_MARGIN
    return (_floor_ste(torch.clamp(x * scale, -limit, limit)) + 0.5) / scale


def _unsigned(x: Tensor, bound: Tensor, bits: int) -> Tensor:
    scale = _scale(2.0**bits, bound)
    return torch.clamp(_floor_ste(x * scale), 0.0, 2.0**bits - 1.0) / scale


_INT_MODES: dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    "signed": _signed, "signed_half_shift": _signed_half_shift, "unsigned": _unsigned,
}


def _int_mode(bits: int, mode: str) -> Callable[[Tensor, Tensor, int], Tensor]:
    if mode not in _INT_MODES:
        raise ValueError(f"int quantizer mode must be one of {tuple(_INT_MODES)}, got {mode!r}")
    if bits < 1 or (bits == 1 and mode == "signed"):
        raise ValueError(f"{mode!r} needs bits >= {2 if mode == 'signed' else 1}, got {bits}; "
                         "binary values use mode='signed_half_shift'")
    return _INT_MODES[mode]


def _fake_quant(quantize: Callable[[Tensor, Tensor, int], Tensor], x: Tensor, bound: Tensor | float,
                bits: int) -> Tensor:
    # AQT computes in float32 (SCALE_DTYPE) and casts back to the input's dtype.
    compute = torch.promote_types(x.dtype, torch.float32)
    return quantize(x.to(compute), torch.as_tensor(bound, device=x.device).to(compute), bits).to(x.dtype)


def int_quantize(x: Tensor, bound: Tensor | float, bits: int, mode: str = "signed") -> Tensor:
    """Functional form of :class:`IntQuantizer` for a given ``bound`` (broadcastable to ``x``).

    No -1 sentinel here: the bound is used as given.
    """
    return _fake_quant(_int_mode(bits, mode), x, bound, bits)


@register_alias("int_quantizer")
class IntQuantizer(Quantizer):
    r"""PokeBNN's b-bit fake quantizer (AQT): quantize to integers, rescale back to floats.

    With bound B (per channel or scalar), $\epsilon = 2^{-23}$ (float32 eps),
    $\lfloor\cdot\rfloor$ with identity gradient, and $\mathrm{round}(v) = \lfloor v + 0.5\rfloor$:

    ``"signed"`` (8/4-bit symmetric): $Q = 2^{b-1} - 1$, $s = Q / (B + \epsilon)$,
    $q(x) = \mathrm{round}(\mathrm{clip}(x s, -Q, Q)) / s$ — levels are multiples of ≈B/Q.

    ``"signed_half_shift"`` (binary, b = 1): $Q = 2^{b-1}$, $s = Q / (B + \epsilon)$,
    $q(x) = (\lfloor \mathrm{clip}(x s, -(Q - 2^{-7}), Q - 2^{-7}) \rfloor + \tfrac12) / s$ —
    for b = 1 that is ±B/2, with x ≥ 0 → +B/2 (sign(0) = +1).

    ``"unsigned"`` (positive inputs): $s = 2^b / (B + \epsilon)$,
    $q(x) = \mathrm{clip}(\lfloor x s \rfloor, 0, 2^b - 1) / s$ — levels 0 … 2^b − 1.

    $$ \frac{\partial q}{\partial x} = 1 \text{ where the clip is inactive (boundaries included), else } 0 $$

    (s is a stop-gradient, so it cancels.) For ``"unsigned"`` the clip acts after the floor,
    so the gradient is 1 for $0 \le x s < 2^b$.

    Bounds: ``bound`` is a float, a per-channel tensor (see :class:`FixedBound`) or a bound
    module called as ``bound(x)``: :class:`EmaMaxBound` for calibrated activations,
    :class:`MaxAbsWeightBound` for weights. A bound that is -1 in every entry means "do not
    quantize": the input passes through unchanged (AQT's sentinel before calibration).
    Computation runs in float32 (or wider) and returns ``x``'s dtype.

    ``enabled = False`` makes the quantizer the identity; :func:`set_weight_quantization`
    flips it on every layer's weight quantizer (PokeBNN's phase 1 trains unquantized weights).

    Args:
        bits: bits per value (``precision``); ``"signed"`` needs at least 2.
        mode: ``"signed"``, ``"signed_half_shift"`` or ``"unsigned"``.
        bound: float, tensor or bound module.
        enabled: quantize (True) or pass through (False).

    Raises:
        ValueError: unknown ``mode`` or too few ``bits``.

    References:
        Zhang et al., "PokeBNN: A Binary Pursuit of Lightweight Accuracy", CVPR 2022.
        https://arxiv.org/abs/2112.00133 ; google/aqt ``aqt/jax_legacy/jax/primitives.py``.
    """

    def __init__(self, bits: int, *, mode: str = "signed", bound: float | Tensor | nn.Module,
                 enabled: bool = True) -> None:
        super().__init__()
        self._quantize = _int_mode(bits, mode)
        self.precision = bits
        self.mode = mode
        self.bound = bound if isinstance(bound, nn.Module) else FixedBound(bound)
        self.enabled = enabled

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        bound = self.bound(x)
        q = _fake_quant(self._quantize, x, bound, self.precision)
        # Decided on the device, without a host sync; gradients follow the chosen branch.
        return torch.where((bound == -1).all(), x, q)

    def extra_repr(self) -> str:
        return f"bits={self.precision}, mode={self.mode!r}, enabled={self.enabled}"


class FixedBound(nn.Module):
    r"""A constant bound: a scalar, or one value per channel of ``channel_dim``.

    $$ B_c = \text{bound}_c $$

    Args:
        bound: float or tensor of shape ``(C,)`` (or 0-d).
        channel_dim: dimension of the input the per-channel values run along.
    """

    def __init__(self, bound: float | Tensor, channel_dim: int = 1) -> None:
        super().__init__()
        self.register_buffer("bound", torch.as_tensor(bound, dtype=torch.float32).clone())
        self.channel_dim = channel_dim

    def forward(self, x: Tensor) -> Tensor:
        return _channel_view(self.bound, x.dim(), self.channel_dim % x.dim())

    def extra_repr(self) -> str:
        return f"bound={self.bound.tolist()}, channel_dim={self.channel_dim}"


class MaxAbsWeightBound(nn.Module):
    r"""Per-output-channel weight bound, recomputed every call, no gradient.

    $$ B_o = \operatorname{stop\_gradient}\big(\max_{i,k} |w_{o,i,k}|\big) $$

    The max runs over every dimension except dim 0 (the output channel of a PyTorch weight),
    matching AQT's reduction over all kernel axes but the last one in JAX. Shape ``(O, 1, ..., 1)``.
    """

    def forward(self, w: Tensor) -> Tensor:
        return _per_output_channel(w.detach().abs(), torch.amax)


class EmaMaxBound(nn.Module):
    r"""Activation bound calibrated from an EMA of per-channel batch max/min, then frozen (PokeBNN).

    In training mode every call updates, per channel c, over all other dimensions and
    ignoring exact zeros (a channel with no non-zero value keeps its statistics):

    $$ m_c \leftarrow m_c + \alpha (\max_{x \ne 0} x_c - m_c), \qquad
       n_c \leftarrow n_c + \alpha (\min_{x \ne 0} x_c - n_c) $$

    (both start at 0, α = ``ema_coeff``). The stored bound starts at ``initial_bound`` and is
    written once, in the training call whose ``step`` equals ``calibrate_at_step`` (after that
    call's statistics update):

    $$ B_c = \text{fixed\_bound} + \text{mean\_of\_max\_coeff} \cdot \max(|m_c|, |n_c|) $$

    after which it is frozen for training and evaluation; statistics keep updating, unused.
    With ``initial_bound = -1`` the owning :class:`IntQuantizer` passes its input through
    unchanged until calibration.

    Driving the step: the ``step`` buffer (int64, 0-d) is the index of the next training call;
    each training-mode call uses it, then increments it. With one forward per optimizer step
    nothing else is needed (it is saved in the state dict). A trainer that calls the model more
    or less than once per step (gradient accumulation, resumption without the buffer) sets it
    before the forward with :func:`set_bound_step`. Evaluation-mode calls change nothing.
    Under DDP with ``broadcast_buffers=True`` rank 0's statistics win (AQT averages devices).

    Args:
        num_channels: C, size of ``channel_dim``.
        channel_dim: channel dimension of the input (1 for NCHW and (N, C)).
        initial_bound: bound before calibration; -1 means "not quantized yet".
        fixed_bound: constant term of the bound.
        mean_of_max_coeff: weight of the EMA max term.
        ema_coeff: α of the moving averages.
        calibrate_at_step: the training step that writes the bound (PokeBNN: 7500).

    References:
        google/aqt ``aqt/jax_legacy/jax/get_bounds.py`` (``GetBounds``) and ``stats.py``.
    """

    def __init__(self, num_channels: int, channel_dim: int = 1, *, initial_bound: float = -1.0,
                 fixed_bound: float = 0.0, mean_of_max_coeff: float = 1.0, ema_coeff: float = 0.1,
                 calibrate_at_step: int = 7500) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.fixed_bound = fixed_bound
        self.mean_of_max_coeff = mean_of_max_coeff
        self.ema_coeff = ema_coeff
        self.calibrate_at_step = calibrate_at_step
        self.register_buffer("ema_max", torch.zeros(num_channels))
        self.register_buffer("ema_min", torch.zeros(num_channels))
        self.register_buffer("bound", torch.full((num_channels,), float(initial_bound)))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def forward(self, x: Tensor) -> Tensor:
        channel_dim = self.channel_dim % x.dim()
        if self.training:
            self._update(x, channel_dim)
        return _channel_view(self.bound, x.dim(), channel_dim)

    @torch.no_grad()
    def _update(self, x: Tensor, channel_dim: int) -> None:
        per_channel = x.detach().float().movedim(channel_dim, 0).reshape(self.bound.numel(), -1)
        nonzero = per_channel != 0
        inf = torch.tensor(float("inf"), device=x.device)
        for ema, batch in ((self.ema_max, torch.where(nonzero, per_channel, -inf).amax(dim=1)),
                           (self.ema_min, torch.where(nonzero, per_channel, inf).amin(dim=1))):
            ema.add_(self.ema_coeff * torch.where(torch.isfinite(batch), batch - ema, torch.zeros_like(ema)))
        calibrated = self.fixed_bound + self.mean_of_max_coeff * torch.maximum(self.ema_max.abs(),
                                                                               self.ema_min.abs())
        self.bound.copy_(torch.where(self.step == self.calibrate_at_step, calibrated, self.bound))
        self.step.add_(1)

    def extra_repr(self) -> str:
        return (f"num_channels={self.bound.numel()}, channel_dim={self.channel_dim}, "
                f"fixed_bound={self.fixed_bound}, mean_of_max_coeff={self.mean_of_max_coeff}, "
                f"ema_coeff={self.ema_coeff}, calibrate_at_step={self.calibrate_at_step}")


def set_bound_step(model: nn.Module, step: int) -> int:
    """Set the ``step`` of every :class:`EmaMaxBound` in ``model``; the next training call runs
    as that step. Returns how many bounds were set."""
    bounds = [m for m in model.modules() if isinstance(m, EmaMaxBound)]
    for b in bounds:
        b.step.fill_(step)
    return len(bounds)


def set_weight_quantization(model: nn.Module, enabled: bool) -> int:
    """Switch every layer's ``weight_quantizer`` that is an :class:`IntQuantizer` on or off.

    PokeBNN phase 1 (epochs < 50) trains with ``enabled=False``: the layers see latent float
    weights. Other weight quantizers are left alone. Returns how many were switched.
    """
    quantizers = [q for m in model.modules()
                  if isinstance(q := getattr(m, "weight_quantizer", None), IntQuantizer)]
    for q in quantizers:
        q.enabled = enabled
    return len(quantizers)
