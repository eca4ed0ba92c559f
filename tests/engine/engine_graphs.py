"""Small engine graphs built by hand, shared by the engine tests."""

from __future__ import annotations

import numpy as np

from pocketbnn.engine import Graph, InputSpec, Node
from pocketbnn.kernels import pack_bits


def signs(rng, shape) -> np.ndarray:
    return np.where(rng.standard_normal(shape) < 0, -1.0, 1.0).astype(np.float32)


def small_graph(seed: int = 0) -> Graph:
    """float conv -> quantize -> binary conv (one-padded) -> maxpool -> global pool -> dense -> softmax."""
    rng = np.random.default_rng(seed)
    return Graph([InputSpec("x", (1, 9, 9, 4))], [
        Node("conv", "conv2d", ["x"], ["a"], {"kernel": [3, 3], "stride": [2, 2], "pads": [0, 1, 0, 1]},
             {"weights": rng.standard_normal((3, 3, 4, 8)).astype(np.float32),
              "bias": rng.standard_normal(8).astype(np.float32)}),
        Node("q", "quantize", ["a"], ["b"]),
        Node("bconv", "bconv2d", ["b"], ["c"], {"kernel": [3, 3], "channels_in": 8, "pads": [1, 1, 1, 1]},
             {"weights": pack_bits(signs(rng, (16, 3, 3, 8))),
              "multiplier": rng.uniform(0.1, 1, 16).astype(np.float32),
              "bias": rng.standard_normal(16).astype(np.float32)}),
        Node("pool", "maxpool2d", ["c"], ["d"], {"kernel": [2, 2], "stride": [2, 2]}),
        Node("gap", "global_avgpool", ["d"], ["e"]),
        Node("fc", "dense", ["e"], ["f"], {}, {"weights": rng.standard_normal((16, 5)).astype(np.float32)}),
        Node("softmax", "softmax", ["f"], ["y"]),
    ], ["y"], {"name": "small"})
