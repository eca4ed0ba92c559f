"""Lowering: a captured fx graph becomes an engine graph of float ops, NCHW -> NHWC.

Every fx node maps to a handler (by module type, function or method name) that emits engine
nodes. The result is already a runnable engine graph computing what torch computes; the
passes in ``converter.passes`` then make it binary and fast. Rank-4 values are images: torch
NCHW, engine NHWC, so dims are remapped (torch dim 1 -> engine axis 3). Nodes whose inputs are
all constants (parameters, shapes, ``ones_like`` masks) are folded to their value on the
example input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import fx

from pocketbnn.converter.capture import Captured
from pocketbnn.converter.errors import ConversionError
from pocketbnn.engine.graph import Graph, InputSpec, Node

_NCHW_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}
_LIKE_FUNCTIONS = {torch.ones_like, torch.zeros_like, torch.full_like, torch.empty_like}


@dataclass(frozen=True)
class Value:
    """An engine value and the torch shape of the tensor it holds."""

    name: str
    shape: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def channels(self) -> int:
        return self.shape[1] if self.rank >= 2 else self.shape[0]

    def engine_axis(self, dim: int) -> int:
        dim %= self.rank
        return _NCHW_TO_NHWC[dim] if self.rank == 4 else dim


@dataclass(frozen=True)
class Grouped:
    """``x.unflatten(1, (groups, k))``, which only a ``mean(2)`` may consume (channel averaging)."""

    value: Value
    groups: int
    k: int


Handler = Callable[..., Any]
MODULES: list[tuple[type, Handler]] = []
FUNCTIONS: dict[Any, Handler] = {}
METHODS: dict[str, Handler] = {}


def to_engine_layout(array: np.ndarray, rank: int) -> np.ndarray:
    """A constant broadcastable against a torch tensor of ``rank``, in engine layout."""
    array = np.asarray(array, np.float32)
    if rank == 4:
        array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(array)


class Lowering:
    """State of one lowering: emitted nodes, fx node -> value, and naming."""

    def __init__(self, captured: Captured) -> None:
        self.captured = captured
        self.module = captured.module
        self.graph = Graph([], [], [], {})
        self.env: dict[fx.Node, Any] = {}
        self._names: set[str] = set()
        self.examples: dict[str, torch.Tensor] = {}
        self.where = ""

    def fresh(self, base: str) -> str:
        base = base.replace(".", "_") or "v"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def emit(self, op: str, inputs: list[Value], shape: tuple[int, ...], attrs: dict | None = None,
             params: dict | None = None, base: str | None = None) -> Value:
        """Append a node; ``shape`` is the torch shape of its output."""
        name = self.fresh(base or self.where or op)
        self.graph.nodes.append(Node(name, op, [v.name for v in inputs], [name], attrs or {},
                                     {k: np.ascontiguousarray(v) for k, v in (params or {}).items()}))
        return Value(name, tuple(shape))

    def concrete(self, node: fx.Node) -> Any:
        return self.captured.values[node]

    def fail(self, what: str) -> ConversionError:
        return ConversionError(f"unsupported {what} at {self.where or '<root>'}")

    def run(self) -> Graph:
        for node in self.module.graph.nodes:
            self.where = _module_path(node)
            if node.op == "placeholder":
                shape = tuple(self.concrete(node).shape)
                name = self.fresh(node.name)
                engine_shape = (shape[0],) + shape[2:] + (shape[1],) if len(shape) == 4 else shape
                self.graph.inputs.append(InputSpec(name, engine_shape))
                self.env[node] = Value(name, shape)
                self.examples[name] = self.concrete(node)
            elif node.op == "output":
                outs = node.args[0] if isinstance(node.args[0], (tuple, list)) else [node.args[0]]
                for out in outs:
                    value = self.env[out]
                    if not isinstance(value, Value):
                        raise ConversionError("model output is a constant, not computed from the input")
                    self.graph.outputs.append(value.name)
            else:
                value = self.env[node] = self._lower(node)
                if isinstance(value, Value):
                    self.examples.setdefault(value.name, self.concrete(node))
        return self.graph

    def _lower(self, node: fx.Node) -> Any:
        args = fx.node.map_arg(node.args, self.env.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, self.env.__getitem__)
        dynamic = any(isinstance(a, (Value, Grouped)) for a in _flatten((args, kwargs)))
        if node.op == "get_attr" or not dynamic or node.target in _LIKE_FUNCTIONS:
            return self.concrete(node)
        out = self.concrete(node)
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
        if node.op == "call_module":
            module = self.module.get_submodule(node.target)
            for cls, handler in MODULES:
                if isinstance(module, cls):
                    return handler(self, module, shape, *args, **kwargs)
            raise self.fail(f"module {type(module).__name__}")
        if node.op == "call_function":
            handler = FUNCTIONS.get(node.target)
            what = f"function {getattr(node.target, '__name__', node.target)}"
        else:
            handler = METHODS.get(node.target)
            what = f"tensor method .{node.target}()"
        if handler is None:
            raise self.fail(what)
        return handler(self, shape, *args, **kwargs)


def _module_path(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1]
        return (path[0] if isinstance(path, tuple) else str(path)) + f" ({node.name})"
    return node.name


def _flatten(x: Any):
    if isinstance(x, (tuple, list)):
        for item in x:
            yield from _flatten(item)
    elif isinstance(x, dict):
        for item in x.values():
            yield from _flatten(item)
    else:
        yield x


def module_handler(*types: type) -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        MODULES.extend((t, fn) for t in types)
        return fn
    return add


def function_handler(*targets: Any) -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        for t in targets:
            FUNCTIONS[t] = fn
        return fn
    return add


def method_handler(*names: str) -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        for n in names:
            METHODS[n] = fn
        return fn
    return add
