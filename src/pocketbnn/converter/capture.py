"""Capture a torch model as an fx graph, plus the concrete value of every node.

Tracing uses ``torch.fx``'s meta tracer, fed with the real example tensor instead of a meta
tensor: every proxy carries the concrete value its node computes, so Python code that inspects
shapes (``if x.shape[1] > c``, TF-SAME padding from ``x.shape``) runs with concrete sizes and
the graph is specialised to the example input's shape, as an exported model is.
pocketbnn's quantized layers, quantizers and activations, and torch's own modules, stay leaf
calls, so the converter sees ``QuantConv2d`` rather than its arithmetic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import fx, nn
from torch.fx.experimental.meta_tracer import MetaTracer

from pocketbnn import activations, quantizers
from pocketbnn.layers import QuantizedLayer

LEAF_TYPES: tuple[type, ...] = (quantizers.Quantizer, QuantizedLayer, activations.DPReLU, activations.RPReLU,
                                activations.LearnableThresholdSign, activations.LeakyTanh)


class _Tracer(MetaTracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAF_TYPES) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        # A leaf's value is computed by running it on real tensors; submodules it calls then
        # run as plain code instead of being traced again.
        if not any(isinstance(a, fx.Proxy) for a in pytree.tree_leaves((args, kwargs))):
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        if kind != "get_attr":
            proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
            if getattr(proxy, "_tensor_meta", None) is not None:
                self.values[proxy.node] = proxy._tensor_meta
            return proxy
        # Parameters keep their real values (the meta tracer would move them to "meta").
        proxy = fx.Tracer.create_proxy(self, kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        proxy.install_tensor_meta(self.root.get_parameter(target) if target in dict(self.root.named_parameters())
                                  else self.root.get_buffer(target))
        self.values[proxy.node] = proxy._tensor_meta
        return proxy


@dataclass
class Captured:
    """The traced graph, the module it calls into, and each node's value on the example."""

    module: fx.GraphModule
    values: dict[fx.Node, Any]


class _Recorder(fx.Interpreter):
    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        self.values[n] = value
        return value


@torch.no_grad()
def capture(model: nn.Module, example: torch.Tensor) -> Captured:
    """Trace ``model`` (in its current mode; the converter puts it in eval mode) on ``example``."""
    tracer = _Tracer()
    tracer.values = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = tracer.trace(model, meta_args={_first_input(model, tracer): example})
    module = fx.GraphModule(tracer.root, graph, type(model).__name__)
    computed = [n for n in graph.nodes if n.op not in ("placeholder", "output")]
    if all(n in tracer.values for n in computed):
        values = dict(tracer.values)
        values.update({n: example for n in graph.nodes if n.op == "placeholder"})
        return Captured(module, values)
    recorder = _Recorder(module)  # some node's value was not computed while tracing
    recorder.run(example)
    return Captured(module, recorder.values)


def _first_input(model: nn.Module, tracer: fx.Tracer) -> str:
    import inspect

    params = list(inspect.signature(model.forward).parameters)
    if not params:
        raise ValueError(f"{type(model).__name__}.forward takes no input")
    return params[0]
