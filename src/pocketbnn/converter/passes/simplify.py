"""Clean-up passes: drop identities, fuse explicit padding into the op that reads it, pool
before widening channel maps."""

from __future__ import annotations

import math

from pocketbnn.converter.passes._edit import bypass, is_vector, remove_dead, sole_consumer, specs
from pocketbnn.engine.graph import Graph


def drop_identities(graph: Graph) -> Graph:
    """Remove ``scale_shift`` with scale 1 and shift 0, and channel maps that change nothing."""
    shape = specs(graph)
    for node in list(graph.nodes):
        same = shape[node.inputs[0]].shape == shape[node.outputs[0]].shape if node.inputs else False
        if (node.op == "scale_shift" and is_vector(node.params, "scale", 1.0) and is_vector(node.params, "shift", 0.0)
                or node.op in ("channel_tile", "channel_zeropad") and same
                or node.op == "pad" and not any(node.attrs["pads"])):
            bypass(graph, node)
    return remove_dead(graph)


def fuse_padding(graph: Graph) -> Graph:
    r"""``pad`` read only by a float conv (value 0), max-pool ($-\infty$) or average pool (0, padding
    counted) becomes that op's own padding."""
    accepts = {"conv2d": 0.0, "maxpool2d": -math.inf, "avgpool2d": 0.0}
    for pad in [n for n in graph.nodes if n.op == "pad"]:
        user = sole_consumer(graph, pad.outputs[0])
        value = -math.inf if pad.attrs.get("value") == "-inf" else pad.attrs.get("value", 0.0)
        if user is None or accepts.get(user.op) != value:
            continue
        if user.op == "avgpool2d":
            if any(user.attrs["pads"]) and not user.attrs.get("count_include_pad", True):
                continue
            user.attrs["count_include_pad"] = True
        user.attrs["pads"] = [a + b for a, b in zip(user.attrs.get("pads", [0, 0, 0, 0]), pad.attrs["pads"])]
        bypass(graph, pad)
    return graph


def pool_before_channel_map(graph: Graph) -> Graph:
    r"""A ``channel_tile`` or ``channel_zeropad`` that widens the channels and is read only by an
    average or max pool runs after the pool instead: $\mathrm{pool}(\mathrm{map}(x)) =
    \mathrm{map}(\mathrm{pool}(x))$ exactly (the map copies values or adds zero channels, and the
    pool treats channels alike, summing each in the same order; a pooled zero channel is 0), and
    the pool then reads $C_\text{in}$ channels instead of $C_\text{out}$. PokeBNN's downsampling
    shortcut tiles 128 -> 512 channels at 56x56 and then pools to 28x28."""
    shape = specs(graph)
    for node in [n for n in graph.nodes if n.op in ("channel_tile", "channel_zeropad")]:
        pool = sole_consumer(graph, node.outputs[0])
        if pool is None or pool.op not in ("avgpool2d", "maxpool2d"):
            continue
        if shape[node.outputs[0]].shape[-1] <= shape[node.inputs[0]].shape[-1]:
            continue
        # x -> map -> y -> pool -> z  becomes  x -> pool -> y -> map -> z
        (x,), (y,), (z,) = node.inputs, node.outputs, pool.outputs
        pool.inputs, pool.outputs, node.inputs, node.outputs = [x], [y], [y], [z]
        graph.nodes.remove(node)
        graph.nodes.insert(graph.nodes.index(pool) + 1, node)
    return graph
