"""The engine graph: nodes in execution order over named values, validated from JSON.

JSON schema (``graph`` section of a model file)::

    {"inputs":  [{"name": str, "shape": [int, ...], "dtype": "float32"}],   # NHWC images
     "outputs": [str, ...],
     "nodes":   [{"name": str, "op": str, "inputs": [str, ...], "outputs": [str, ...],
                  "attrs": {...}, "params": {role: tensor name}}],
     "metadata": {...}}                                                     # free-form

Nodes are listed in execution order: every input of a node is a graph input or an output of
an earlier node, and every value is produced once. The batch dimension of the inputs may
change at run time; the other dimensions are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pocketbnn.engine.errors import ModelFormatError

_MAX_INPUT_NDIM = 6


@dataclass
class Node:
    """One op application: ``outputs = op(inputs; attrs, params)``."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass
class Graph:
    """A whole model: inputs, nodes in execution order, outputs and free-form metadata."""

    inputs: list[InputSpec]
    nodes: list[Node]
    outputs: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def producers(self) -> dict[str, Node]:
        """Value name -> the node that produces it."""
        return {v: n for n in self.nodes for v in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        """Value name -> nodes that read it (graph outputs are not nodes; see ``outputs``)."""
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                users.setdefault(v, []).append(n)
        return users

    def to_json(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The graph as JSON data plus its tensors, named ``<node>.<role>``."""
        tensors: dict[str, np.ndarray] = {}
        nodes = []
        for n in self.nodes:
            refs = {}
            for role, array in n.params.items():
                refs[role] = f"{n.name}.{role}"
                tensors[refs[role]] = np.ascontiguousarray(array)
            nodes.append({"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs,
                          "attrs": n.attrs, "params": refs})
        data = {"inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in self.inputs],
                "outputs": self.outputs, "nodes": nodes, "metadata": self.metadata}
        return data, tensors

    @classmethod
    def from_json(cls, data: dict[str, Any], tensors: dict[str, np.ndarray]) -> Graph:
        """Validate the structure of ``data`` and resolve tensor references.

        Raises:
            ModelFormatError: a field is missing or mistyped, a value is used before it is
                produced or produced twice, or a tensor reference is dangling.
        """
        inputs = [_input_spec(i) for i in _list(data, "inputs", "graph")]
        known = {i.name for i in inputs}
        if len(known) != len(inputs):
            raise ModelFormatError("graph inputs have duplicate names")
        nodes = []
        for k, raw in enumerate(_list(data, "nodes", "graph")):
            if not isinstance(raw, dict):
                raise ModelFormatError(f"node #{k} is not an object")
            where = f"node #{k} ({raw.get('name')!r})"
            name, op = _str(raw, "name", where), _str(raw, "op", where)
            ins, outs = _names(raw, "inputs", where), _names(raw, "outputs", where)
            for v in ins:
                if v not in known:
                    raise ModelFormatError(f"{where} reads {v!r} before it is produced")
            for v in outs:
                if v in known:
                    raise ModelFormatError(f"{where} produces {v!r}, which already exists")
                known.add(v)
            attrs = raw.get("attrs", {})
            refs = raw.get("params", {})
            if not isinstance(attrs, dict) or not isinstance(refs, dict):
                raise ModelFormatError(f"{where}: attrs and params must be objects")
            params = {}
            for role, ref in refs.items():
                if not isinstance(ref, str) or ref not in tensors:
                    raise ModelFormatError(f"{where}: parameter {role!r} names missing tensor {ref!r}")
                params[role] = tensors[ref]
            nodes.append(Node(name, op, ins, outs, attrs, params))
        outputs = _names(data, "outputs", "graph")
        for v in outputs:
            if v not in known:
                raise ModelFormatError(f"graph output {v!r} is never produced")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ModelFormatError("graph metadata must be an object")
        return cls(inputs, nodes, outputs, metadata)


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise ModelFormatError(f"{where}: {key!r} must be a list")
    return value


def _str(data: dict, key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ModelFormatError(f"{where}: {key!r} must be a string")
    return value


def _names(data: dict, key: str, where: str) -> list[str]:
    names = _list(data, key, where)
    if not all(isinstance(v, str) for v in names):
        raise ModelFormatError(f"{where}: {key!r} must list value names")
    return names


def _input_spec(raw: Any) -> InputSpec:
    if not isinstance(raw, dict):
        raise ModelFormatError("graph input is not an object")
    shape = raw.get("shape")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= _MAX_INPUT_NDIM
            or not all(type(d) is int and d >= 1 for d in shape)):
        raise ModelFormatError(f"graph input {raw.get('name')!r}: bad shape {shape!r}")
    if raw.get("dtype", "float32") != "float32":
        raise ModelFormatError(f"graph input {raw.get('name')!r}: dtype {raw.get('dtype')!r}; only float32 inputs")
    return InputSpec(_str(raw, "name", "graph input"), tuple(shape))
