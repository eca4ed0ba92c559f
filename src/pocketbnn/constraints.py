"""Weight constraints, applied to the latent weights after each optimizer step.

A constraint is a callable ``c(w) -> w'``. Quantized layers keep theirs in
``weight_constraint``; after ``optimizer.step()`` call :func:`apply_constraints` once::

    loss.backward()
    optimizer.step()
    pocketbnn.constraints.apply_constraints(model)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["WeightClip", "apply_constraints", "get"]


class WeightClip:
    r"""Clip weights to $[-c, c]$: $w' = \min(\max(w, -c), c)$.

    With a clipped straight-through sign quantizer, latent weights beyond the clip value get
    no gradient and would never come back ("starved weights"); clipping them keeps them where
    the estimator is alive.

    Args:
        clip_value: the bound $c > 0$.
    """

    def __init__(self, clip_value: float = 1.0) -> None:
        if not clip_value > 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}")
        self.clip_value = clip_value

    def __call__(self, w: Tensor) -> Tensor:
        return w.clamp(-self.clip_value, self.clip_value)

    def __repr__(self) -> str:
        return f"WeightClip(clip_value={self.clip_value})"


_ALIASES: dict[str, Callable[[], Callable[[Tensor], Tensor]]] = {"weight_clip": WeightClip}


def get(identifier: str | Callable[[Tensor], Tensor] | None) -> Callable[[Tensor], Tensor] | None:
    """Resolve a constraint from ``None``, the alias ``"weight_clip"`` or a callable."""
    if identifier is None or callable(identifier):
        return identifier
    try:
        return _ALIASES[identifier]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown constraint {identifier!r}; known: {', '.join(_ALIASES)}") from None


@torch.no_grad()
def apply_constraints(model: nn.Module) -> None:
    """Apply every quantized layer's ``weight_constraint`` to its weight, in place."""
    for module in model.modules():
        constraint = getattr(module, "weight_constraint", None)
        if constraint is not None:
            module.weight.copy_(constraint(module.weight))
