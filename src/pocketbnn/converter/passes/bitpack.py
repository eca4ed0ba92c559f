r"""Passes that keep activations bit-packed between binary ops.

* ``binary_maxpool``: ``quantize(maxpool(x))`` -> ``bmaxpool(quantize(x))`` when every reader
  of the max-pool is a ``quantize`` (sign is monotone, so sign(max) = max of signs = AND of bits).
* ``packed_output``: a float-output ``bconv2d`` read only by ``quantize`` writes the sign bits
  itself: bit $c = [y_c < 0]$, $y_c = \mathrm{clamp}(d)\,m_c + b_c$, as $[d < \tau_c]$ with
  integer thresholds and sign-flipped weights for $m_c < 0$
  (``pocketbnn.kernels.bitpacked_output_params``).
"""

from __future__ import annotations

from pocketbnn import kernels
from pocketbnn.converter.passes._edit import bypass, sole_consumer
from pocketbnn.engine.graph import Graph


def binary_maxpool(graph: Graph) -> Graph:
    for pool in [n for n in graph.nodes if n.op == "maxpool2d"]:
        users = [n for n in graph.nodes if pool.outputs[0] in n.inputs]
        kh, kw = pool.attrs["kernel"]
        t, b, l, r = pool.attrs.get("pads", [0, 0, 0, 0])
        if (not users or pool.outputs[0] in graph.outputs or any(u.op != "quantize" for u in users)
                or pool.attrs.get("dilation", [1, 1]) != [1, 1] or max(t, b) >= kh or max(l, r) >= kw):
            continue
        quantize = users[0]
        for other in users[1:]:
            bypass_to(graph, other, quantize.outputs[0])
        quantize.inputs = list(pool.inputs)
        pool.op = "bmaxpool2d"
        pool.inputs = list(quantize.outputs)
        pooled = pool.outputs[0]
        graph.nodes.remove(quantize)
        graph.nodes.insert(graph.nodes.index(pool), quantize)
        # readers of the old quantize output now read the pooled bits
        for n in graph.nodes:
            if n is not pool:
                n.inputs = [pooled if v == quantize.outputs[0] else v for v in n.inputs]
    return graph


def bypass_to(graph: Graph, node, value: str) -> None:
    graph.nodes.remove(node)
    for n in graph.nodes:
        n.inputs = [value if v == node.outputs[0] else v for v in n.inputs]


def packed_output(graph: Graph) -> Graph:
    for conv in [n for n in graph.nodes if n.op == "bconv2d" and n.attrs.get("output") == "float"]:
        user = sole_consumer(graph, conv.outputs[0])
        if user is None or user.op != "quantize":
            continue
        clamp = conv.attrs.pop("clamp", None)
        weights, thresholds = kernels.bitpacked_output_params(
            conv.params["weights"], conv.attrs["channels_in"], conv.params.pop("multiplier"),
            conv.params.pop("bias"), clamp=tuple(clamp) if clamp else None, groups=conv.attrs.get("groups", 1))
        conv.params.update(weights=weights, thresholds=thresholds)
        conv.attrs["output"] = "packed"
        bypass(graph, user)
    return graph
