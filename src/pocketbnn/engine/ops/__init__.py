"""Engine ops, registered by name in ``OPS`` (see ``base`` for the interface)."""

from pocketbnn.engine.ops import binary, elementwise, float_conv, layout, pooling  # noqa: F401  (registration)
from pocketbnn.engine.ops.base import OPS, Op, TensorSpec

__all__ = ["OPS", "Op", "TensorSpec"]
