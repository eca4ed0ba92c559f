r"""Binarize: a float conv / dense on binarized input with binary weights becomes ``bconv2d``.

Pattern: ``sign(x; a)`` -> [``pad`` with value $+a$ or 0] -> ``conv2d`` / ``dense`` with weights
$w_o = s_o \cdot (\pm 1)$ per output channel. The conv computes $a\,s_o\,d$ with $d$ the ±1 dot
product, so it becomes ``quantize(x)`` -> ``bconv2d`` with packed $\mathrm{sign}(w)$ (OHWI,
1 bit per weight), multiplier $m_o = a\,s_o$ and the conv's bias. Padding with $+a$ is
one-padding (``pad_value`` 1, bit 0), padding with 0 (or the conv's own zero padding) is
``pad_value`` 0. Weights count as binary when $||w_o| - s_o| \le 10^{-6} s_o$ for all of
channel o's weights (LCE's ``IsBinaryFilter``, tighter). Grouped convs need a multiple of 64
channels per group; others stay float.
"""

from __future__ import annotations

import numpy as np

from pocketbnn.converter.passes._edit import producer, specs
from pocketbnn.engine.graph import Graph, Node
from pocketbnn.engine.ops.base import float_weights
from pocketbnn.kernels import pack_bits

_WORD_BITS = 64


def binary_scale(w_out_last: np.ndarray) -> np.ndarray | None:
    """Per-output-channel $s_o$ if every weight of channel o is $\\pm s_o$, else None."""
    flat = np.abs(w_out_last.reshape(-1, w_out_last.shape[-1]).astype(np.float64))
    s = flat.max(axis=0)
    if np.any(s == 0) or np.any(np.abs(flat - s) > 1e-6 * s):
        return None
    return s


def binarize(graph: Graph) -> Graph:
    shape = specs(graph)
    quantized: dict[str, str] = {}
    for node in list(graph.nodes):
        if node.op not in ("conv2d", "dense"):
            continue
        source = _binary_source(graph, node)
        if source is None:
            continue
        sign, pad_value, extra_pads = source
        weights = float_weights(node.params, "weights", ndim=4 if node.op == "conv2d" else 2)
        if node.op == "dense":
            weights = weights.reshape(1, 1, *weights.shape)
        scale = binary_scale(weights)
        groups = node.attrs.get("groups", 1)
        cin = weights.shape[2] * groups
        if scale is None or (groups > 1 and (cin // groups) % _WORD_BITS):
            continue
        x = sign.inputs[0]
        if x not in quantized:
            packed = _fresh(graph, f"{sign.name}_packed")
            graph.nodes.insert(graph.nodes.index(producer(graph, x)) + 1 if producer(graph, x) else 0,
                               Node(packed, "quantize", [x], [packed]))
            quantized[x] = packed
        signs = np.ascontiguousarray(weights.transpose(3, 0, 1, 2))  # HWIO -> OHWI
        attrs = {"kernel": list(weights.shape[:2]), "stride": node.attrs.get("stride", [1, 1]),
                 "dilation": node.attrs.get("dilation", [1, 1]), "groups": groups, "channels_in": cin,
                 "pads": [a + b for a, b in zip(node.attrs.get("pads", [0, 0, 0, 0]), extra_pads)],
                 "pad_value": pad_value, "output": "float"}
        if not any(attrs["pads"]):
            attrs["pad_value"] = 1
        params = {"weights": pack_bits(signs),
                  "multiplier": (sign.attrs.get("scale", 1.0) * scale).astype(np.float32),
                  "bias": node.params.get("bias", np.zeros(scale.shape, np.float32))}
        index = graph.nodes.index(node)
        graph.nodes[index] = Node(node.name, "bconv2d", [quantized[x]], node.outputs, attrs, params)
    del shape
    return graph


def _binary_source(graph: Graph, node: Node):
    """(sign node, pad_value, explicit pads) if ``node`` reads a binarized value, else None."""
    src = producer(graph, node.inputs[0])
    extra = [0, 0, 0, 0]
    pad_value = 0
    if src is not None and src.op == "pad":
        sign = producer(graph, src.inputs[0])
        if sign is None or sign.op != "sign" or any(node.attrs.get("pads", [0, 0, 0, 0])):
            return None
        value = src.attrs.get("value", 0.0)
        if value == sign.attrs.get("scale", 1.0):
            pad_value = 1
        elif value != 0.0:
            return None
        return sign, pad_value, list(src.attrs["pads"])
    if src is not None and src.op == "sign":
        return src, pad_value, extra
    return None


def _fresh(graph: Graph, base: str) -> str:
    taken = {v for n in graph.nodes for v in n.outputs} | {i.name for i in graph.inputs}
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name
