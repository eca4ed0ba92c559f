"""pocketbnn: binarized neural networks from training to a fast bit-packed CPU engine.

``import pocketbnn`` needs only numpy and the compiled core (:mod:`pocketbnn.kernels`). The
training API (``pocketbnn.quantizers``, ``layers``, ``optimizers``, ...) needs the ``torch``
extra; those submodules are imported on first attribute access, so ``pocketbnn.layers`` works
without an explicit import when torch is installed.
"""

import importlib
from typing import Any

from pocketbnn import kernels

__version__ = "0.1.0"

_LAZY_SUBMODULES = {
    "activations", "constraints", "converter", "cost", "engine", "layers", "math", "metrics",
    "models", "optimizers", "quantizers", "training",
}
# name -> (module, attribute), resolved on first access
_LAZY_ATTRIBUTES = {
    "convert": ("pocketbnn.converter", "convert"),
    "summary": ("pocketbnn.cost", "summary"),
}

__all__ = ["__version__", "kernels", *sorted(_LAZY_SUBMODULES), *sorted(_LAZY_ATTRIBUTES)]


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"pocketbnn.{name}")
    if name in _LAZY_ATTRIBUTES:
        module, attribute = _LAZY_ATTRIBUTES[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'pocketbnn' has no attribute {name!r}")
