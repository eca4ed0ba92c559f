r"""Folding passes after binarization: activations and affine maps into the producing op.

* ``fuse_activation``: ``relu`` right after a float-output ``bconv2d`` whose multipliers are all
  positive and biases 0 becomes the clamp $[0, \infty)$ of the integer dot product
  ($\max(d\,m, 0) = \max(d, 0)\,m$ for $m > 0$), as LCE fuses ReLU before the BatchNorm.
* ``fold_scale_shift``: $y = (\ldots)\,a + b$ (BatchNorm, constant mul/add) read only from a
  ``bconv2d`` (float out): $m' = m a$, $b' = b a + b_{ss}$; from a ``conv2d`` / ``dense``:
  $W' = W a$ per output channel (quantized weights: the step), $b' = b a + b_{ss}$; from another
  ``scale_shift``: composed.
"""

from __future__ import annotations

import numpy as np

from pocketbnn.converter.passes._edit import bypass, is_vector, producer, sole_consumer
from pocketbnn.engine.graph import Graph

_INT32_MAX = 2**31 - 1


def fuse_activation(graph: Graph) -> Graph:
    for conv in [n for n in graph.nodes if n.op == "bconv2d" and n.attrs.get("output") == "float"]:
        user = sole_consumer(graph, conv.outputs[0])
        if (user is None or user.op != "relu" or "clamp" in conv.attrs
                or not np.all(conv.params["multiplier"] > 0) or not is_vector(conv.params, "bias", 0.0)):
            continue
        conv.attrs["clamp"] = [0, _INT32_MAX]
        bypass(graph, user)
    return graph


def fold_scale_shift(graph: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for ss in [n for n in graph.nodes if n.op == "scale_shift"]:
            src = producer(graph, ss.inputs[0])
            if src is None or sole_consumer(graph, ss.inputs[0]) is not ss or not _fold_into(src, ss):
                continue
            bypass(graph, ss)
            changed = True
    return graph


def _vec(params, role, fill, n):
    v = params.get(role)
    return np.full(n, fill, np.float32) if v is None else np.broadcast_to(v, (n,)).astype(np.float32)


def _fold_into(src, ss) -> bool:
    n = ss.attrs["channels"]
    a, b = _vec(ss.params, "scale", 1.0, n), _vec(ss.params, "shift", 0.0, n)
    p = src.params
    if src.op == "bconv2d" and src.attrs.get("output") == "float":
        p["multiplier"] = (p["multiplier"] * a).astype(np.float32)
        p["bias"] = (_vec(p, "bias", 0.0, n) * a + b).astype(np.float32)
        return True
    if src.op in ("conv2d", "dense"):
        if p["weights"].dtype != np.float32:  # quantized codes: scale their steps
            p["weights_scale"] = (_vec(p, "weights_scale", 1.0, n) * a).astype(np.float32)
        else:
            p["weights"] = (p["weights"] * a).astype(np.float32)
        p["bias"] = (_vec(p, "bias", 0.0, n) * a + b).astype(np.float32)
        return True
    if src.op == "scale_shift":
        p["scale"] = (_vec(p, "scale", 1.0, n) * a).astype(np.float32)
        p["shift"] = (_vec(p, "shift", 0.0, n) * a + b).astype(np.float32)
        return True
    return False
