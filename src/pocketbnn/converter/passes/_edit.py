"""Graph-editing helpers shared by the passes."""

from __future__ import annotations

import numpy as np

from pocketbnn.engine.graph import Graph, Node
from pocketbnn.engine.ops import OPS, TensorSpec
from pocketbnn.engine.ops.base import F32


def specs(graph: Graph) -> dict[str, TensorSpec]:
    """Every value's spec for the graph's declared input shapes (engine shape inference)."""
    out = {i.name: TensorSpec(i.shape, F32) for i in graph.inputs}
    for node in graph.nodes:
        op = OPS[node.op](node.attrs, node.params)
        for v, s in zip(node.outputs, op.infer([out[v] for v in node.inputs])):
            out[v] = s
    return out


def sole_consumer(graph: Graph, value: str) -> Node | None:
    """The one node reading ``value``, if exactly one does and it is not a graph output."""
    if value in graph.outputs:
        return None
    users = [n for n in graph.nodes if value in n.inputs]
    return users[0] if len(users) == 1 and users[0].inputs.count(value) == 1 else None


def rename_uses(graph: Graph, old: str, new: str) -> None:
    """Every read of ``old`` (node inputs, graph outputs) now reads ``new``."""
    for n in graph.nodes:
        n.inputs = [new if v == old else v for v in n.inputs]
    graph.outputs = [new if v == old else v for v in graph.outputs]


def bypass(graph: Graph, node: Node) -> None:
    """Remove a one-input, one-output node, wiring its consumers to its input."""
    graph.nodes.remove(node)
    rename_uses(graph, node.outputs[0], node.inputs[0])


def remove_dead(graph: Graph) -> Graph:
    """Drop nodes none of whose outputs is read."""
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(v in live for v in node.outputs):
            kept.append(node)
            live.update(node.inputs)
    graph.nodes = kept[::-1]
    return graph


def producer(graph: Graph, value: str) -> Node | None:
    for n in graph.nodes:
        if value in n.outputs:
            return n
    return None


def is_vector(params: dict, role: str, fill: float) -> bool:
    """True if ``params[role]`` is absent or equals ``fill`` everywhere."""
    v = params.get(role)
    return v is None or bool(np.all(v == fill))
