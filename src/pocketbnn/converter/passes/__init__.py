"""The converter's passes, in order. Each takes and returns an engine graph that computes the
same function (up to float rounding), so each can be tested by running the engine before and
after it."""

from __future__ import annotations

from collections.abc import Callable

from pocketbnn.converter.passes._edit import remove_dead
from pocketbnn.converter.passes.binarize import binarize
from pocketbnn.converter.passes.bitpack import binary_maxpool, packed_output
from pocketbnn.converter.passes.fold import fold_scale_shift, fuse_activation
from pocketbnn.converter.passes.simplify import drop_identities, fuse_padding, pool_before_channel_map
from pocketbnn.engine.graph import Graph

Pass = Callable[[Graph], Graph]

PIPELINE: list[tuple[str, Pass]] = [
    ("drop_identities", drop_identities),
    ("fuse_padding", fuse_padding),
    ("pool_before_channel_map", pool_before_channel_map),
    ("binarize", binarize),
    ("remove_dead", remove_dead),
    ("fuse_activation", fuse_activation),
    ("fold_scale_shift", fold_scale_shift),
    ("binary_maxpool", binary_maxpool),
    ("packed_output", packed_output),
    ("remove_dead_final", remove_dead),
]

__all__ = ["PIPELINE", "Pass", "binarize", "binary_maxpool", "drop_identities", "fold_scale_shift",
           "fuse_activation", "fuse_padding", "packed_output", "pool_before_channel_map", "remove_dead"]
