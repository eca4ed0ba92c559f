"""Cost model: MACs by precision, memory, ACE and CPU64 of any model, layer by layer.

``summary(model, (3, 224, 224))`` prints the tables and returns the :class:`ModelCost`;
``profile`` only counts. Definitions are in :mod:`pocketbnn.cost.profile`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from pocketbnn.cost.profile import LayerCost, ModelCost, profile
from pocketbnn.cost.table import render

__all__ = ["LayerCost", "ModelCost", "profile", "summary"]


def summary(model: nn.Module, input_size: Sequence[int] | None = None, *,
            example: Tensor | None = None, fp_bits: int = 16, include_per_channel: bool = False,
            console=None) -> ModelCost:
    """Print the per-layer table, MACs by precision and the summary rows; return the counts.

    Args:
        model, input_size, example, fp_bits, include_per_channel: as :func:`profile`.
        console: a ``rich.console.Console`` to print to (default: a new one on stdout).

    Returns:
        The :class:`ModelCost`; ``.to_dict()`` is the machine-readable form.
    """
    cost = profile(model, input_size, example=example, fp_bits=fp_bits,
                   include_per_channel=include_per_channel)
    if console is None:
        from rich.console import Console

        console = Console()
    console.print(render(cost))
    return cost
