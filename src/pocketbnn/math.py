"""Elementwise primitives with the conventions the whole package shares."""

from __future__ import annotations

from torch import Tensor

__all__ = ["heaviside", "sign"]


def sign(x: Tensor) -> Tensor:
    r"""Sign that never returns 0: $\operatorname{sign}(x) = -1$ if $x < 0$ else $+1$.

    sign(0) = +1 matches the engine's bit 0 (and Larq's ``math.sign``). No gradient is defined
    here; quantizers add their pseudo-gradients on top.
    """
    return 1.0 - 2.0 * (x < 0).to(x.dtype)


def heaviside(x: Tensor) -> Tensor:
    r"""Step function: $H(x) = 1$ if $x > 0$ else $0$ (so $H(0) = 0$, as Larq's ``math.heaviside``)."""
    return (x > 0).to(x.dtype)
