"""Cost model: MACs by precision, memory, ACE and CPU64 of any model, layer by layer.

``summary(model, (3, 224, 224))`` prints the tables and returns the :class:`ModelCost`
(``quiet=True`` only counts). Definitions and the counting function
(:func:`pocketbnn.cost.profile.profile`) are in :mod:`pocketbnn.cost.profile`; rendering is in
:mod:`pocketbnn.cost.table`.

The classes are resolved on first use, so ``pocketbnn.cost.cli`` (the ``pocketbnn summary``
command) imports without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

    from pocketbnn.cost.profile import LayerCost, ModelCost

__all__ = ["LayerCost", "ModelCost", "summary"]


def __getattr__(name: str) -> Any:
    if name in ("LayerCost", "ModelCost"):
        from pocketbnn.cost.profile import LayerCost, ModelCost

        return {"LayerCost": LayerCost, "ModelCost": ModelCost}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def summary(model: nn.Module, input_size: Sequence[int] | None = None, *,
            example: Tensor | None = None, fp_bits: int = 16, include_per_channel: bool = False,
            console=None, quiet: bool = False) -> ModelCost:
    """Print the per-layer table, MACs by precision and the summary rows; return the counts.

    Args:
        model, input_size, example, fp_bits, include_per_channel: as
            :func:`pocketbnn.cost.profile.profile`.
        console: a ``rich.console.Console`` to print to (default: a new one on stdout).
        quiet: count only, print nothing.

    Returns:
        The :class:`ModelCost`; ``.to_dict()`` is the machine-readable form.
    """
    from pocketbnn.cost.profile import profile
    from pocketbnn.cost.table import render

    cost = profile(model, input_size, example=example, fp_bits=fp_bits,
                   include_per_channel=include_per_channel)
    if quiet:
        return cost
    if console is None:
        from rich.console import Console

        console = Console()
    console.print(render(cost))
    return cost
