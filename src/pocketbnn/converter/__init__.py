"""The converter: a trained torch model becomes an engine model (``pocketbnn.engine``).

    >>> graph = pocketbnn.converter.convert(model, torch.randn(1, 3, 224, 224))
    >>> pocketbnn.engine.save(graph, "model.pbnn")

Steps: capture (``torch.fx`` with pocketbnn layers as leaves, specialised to the example's
shape), lowering to engine float ops in NHWC layout, then the passes of ``converter.passes``
(binarize convs and pack their weights, fold BatchNorm and scales, fuse ReLU, bit-packed outputs,
binary max-pool). The model is converted in eval mode; its training mode is restored after.
The engine's input is the example's layout moved to NHWC: ``x.permute(0, 2, 3, 1)``.
"""

from __future__ import annotations

import torch
from torch import nn

from pocketbnn.converter import lower_ops  # noqa: F401  (registers the lowering handlers)
from pocketbnn.converter.capture import capture
from pocketbnn.converter.errors import ConversionError
from pocketbnn.converter.lower import Lowering
from pocketbnn.converter.passes import PIPELINE, Pass
from pocketbnn.engine.graph import Graph

__all__ = ["ConversionError", "convert", "lower"]


def lower(model: nn.Module, example_input: torch.Tensor) -> Graph:
    """Capture and lower ``model`` without running the passes: a float engine graph."""
    was_training = model.training
    model.eval()
    try:
        return Lowering(capture(model, example_input)).run()
    finally:
        model.train(was_training)


def convert(model: nn.Module, example_input: torch.Tensor, *, passes: list[tuple[str, Pass]] | None = None,
            name: str | None = None) -> Graph:
    """Convert ``model`` for inputs shaped like ``example_input`` (batch may vary at run time).

    Args:
        model: any model built from pocketbnn layers/quantizers and standard torch ops.
        example_input: one NCHW (or 2-D) float tensor.
        passes: the pass list (default :data:`~pocketbnn.converter.passes.PIPELINE`).
        name: stored in the graph's metadata.

    Raises:
        ConversionError: an op is unsupported; the message names it and its module path.
    """
    graph = lower(model, example_input)
    for _, run_pass in PIPELINE if passes is None else passes:
        graph = run_pass(graph)
    graph.metadata.update({"name": name or type(model).__name__, "input_layout": "NHWC",
                           "source": "pocketbnn.converter"})
    return graph
