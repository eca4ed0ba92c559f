"""Quantizers: the forward map to a low-precision value and the pseudo-gradient used to train it.

Every quantizer is an ``nn.Module`` with a ``precision`` attribute (bits); it is the one
contract between quantizers, the cost model, Bop and the converter. Quantizers can be named by
string alias (``get("ste_sign")``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["NoOp", "Quantizer", "SteSign", "get", "register_alias", "ste_sign"]

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


def _straight_through(value: Tensor, surrogate: Tensor) -> Tensor:
    # Exactly `value` in the forward pass, gradient of `surrogate` in the backward pass. The
    # usual `surrogate + (value - surrogate).detach()` is not exact once |surrogate| >> 1
    # (float32: 3e7 + (1 - 3e7) == 0).
    return value + (surrogate - surrogate.detach())


def _sign(x: Tensor) -> Tensor:
    """sign with sign(0) = +1: -1 where x < 0, else +1."""
    return 1.0 - 2.0 * (x < 0).to(x.dtype)


def ste_sign(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    """Functional form of :class:`SteSign`."""
    surrogate = x if clip_value is None else torch.where(x.abs() <= clip_value, x, torch.zeros_like(x))
    return _straight_through(_sign(x), surrogate)


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
