r"""Training metrics of binarized networks: how many binary weights flip per update.

Track every binary layer of a model::

    flips = ModelFlipRatio(model)
    for x, y in loader:
        ...; optimizer.step()
        flips.update()
    print(flips.compute())          # {"features.3": 0.0012, ...}
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pocketbnn.layers import quantized_layers
from pocketbnn.optimizers import is_binary_weight

__all__ = ["FlipRatio", "ModelFlipRatio"]


class FlipRatio:
    r"""Mean fraction of the entries of a tensor that changed between consecutive updates.

    Update $k$ with values $v_k$ (of $n$ entries, cast to ``values_dtype``) measures

    $$ r_k = 1 - \frac{\#\{i : v_{k,i} = v_{k-1,i}\}}{n}, \qquad k \ge 2, $$

    the first update only records $v_1$, and the result after $K$ updates is

    $$ \text{result} = \frac{1}{K-1} \sum_{k=2}^{K} r_k $$

    (0 while $K < 2$). As Larq's ``FlipRatio``: e.g. updates ``(1, 1)``, ``(2, 2)``, ``(1, 2)`` give
    0, then 1, then 0.75. The cast to ``int8`` (Larq's default) suits ±1 weights; pass
    ``values_dtype=torch.float32`` to compare other values exactly.

    Args:
        values_dtype: dtype the values are cast to (truncating) before comparison.
    """

    def __init__(self, values_dtype: torch.dtype = torch.int8) -> None:
        self.values_dtype = values_dtype
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next update only records its values."""
        self.previous: Tensor | None = None
        self.total: Tensor | float = 0.0
        self.count = 0

    @torch.no_grad()
    def update(self, values: Tensor) -> None:
        """Compare ``values`` with the previous update's and accumulate the changed fraction.

        Raises:
            ValueError: the shape differs from the previous update's.
        """
        values = values.detach().to(self.values_dtype)
        if self.previous is not None:
            if values.shape != self.previous.shape:
                raise ValueError(f"FlipRatio got shape {tuple(values.shape)} after {tuple(self.previous.shape)}")
            # Kept as a tensor so that updating never waits for the device.
            self.total = self.total + 1 - (values == self.previous).sum() / values.numel()
        self.previous = values.clone()
        self.count += 1

    def compute(self) -> float:
        r"""$\frac{1}{K-1}\sum_{k \ge 2} r_k$, or 0 before the second update."""
        return float(self.total) / (self.count - 1) if self.count > 1 else 0.0


class ModelFlipRatio:
    """A :class:`FlipRatio` on the deployed weight of each binary layer of a model.

    Binary layers are the quantized layers whose weight is binary (``is_binary_weight``); each
    :meth:`update` feeds ``layer.quantized_weight()`` (the ±1 values the op uses, not the latent
    weights) to that layer's metric. Call it once after each optimizer step.

    Attributes:
        metrics: ``{layer name: FlipRatio}``.
    """

    def __init__(self, model: nn.Module, values_dtype: torch.dtype = torch.int8) -> None:
        self.layers = {name: layer for name, layer in quantized_layers(model) if is_binary_weight(layer, "weight")}
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no binary layer to track")
        self.metrics = {name: FlipRatio(values_dtype) for name in self.layers}

    @torch.no_grad()
    def update(self) -> None:
        for name, layer in self.layers.items():
            self.metrics[name].update(layer.quantized_weight())

    def compute(self) -> dict[str, float]:
        """``{layer name: flip ratio}``."""
        return {name: metric.compute() for name, metric in self.metrics.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
