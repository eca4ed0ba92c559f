"""pocketbnn: binarized neural networks from training to a fast bit-packed CPU engine.

``import pocketbnn`` needs only numpy and the compiled core. The training API
(:mod:`pocketbnn.quantizers`, :mod:`pocketbnn.layers`, :mod:`pocketbnn.optimizers`, ...)
needs the ``torch`` extra and is imported on first use of those submodules.
"""

from pocketbnn import kernels

__version__ = "0.1.0"

__all__ = ["__version__", "kernels"]
