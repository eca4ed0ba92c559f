"""Lowering handlers: torch modules, functions and tensor methods -> engine float ops."""

from __future__ import annotations

import math
import operator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pocketbnn import activations, quantizers
from pocketbnn.converter.lower import (Grouped, Lowering, Value, function_handler, method_handler,
                                     module_handler, to_engine_layout)
from pocketbnn.converter.quant import lower_activation_quantizer, quantized_weight, weight_params
from pocketbnn.layers import QuantizedConv, QuantizedLayer


def _example(lw: Lowering, value: Value) -> torch.Tensor:
    """The example-input value of an engine value, in torch layout."""
    return lw.examples[value.name]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


# --- layers -------------------------------------------------------------------------------------

@module_handler(nn.Conv2d)
def conv2d(lw: Lowering, m: nn.Conv2d, shape, x: Value):
    if m.padding_mode != "zeros":
        raise lw.fail(f"Conv2d padding_mode={m.padding_mode!r}")
    example = _example(lw, x)
    if isinstance(m, QuantizedLayer):
        x = lower_activation_quantizer(lw, m.input_quantizer, x, example)
        example = m.quantize_input(example)
    pads = [0, 0, 0, 0]
    if isinstance(m, QuantizedConv) and m._explicit:
        amounts = m.padding_amounts(example.shape[2:])
        if any(a for pair in amounts for a in pair):
            (t, b), (l, r) = amounts
            x = lw.emit("pad", [x], (x.shape[0], x.shape[1], x.shape[2] + t + b, x.shape[3] + l + r),
                        {"pads": [t, b, l, r], "value": m.pad_value})
    elif m.padding == "same":
        (kh, kw), (dh, dw) = m.kernel_size, m.dilation
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pads = [th // 2, th - th // 2, tw // 2, tw - tw // 2]
    elif m.padding != "valid":
        ph, pw = _pair(m.padding)
        pads = [ph, ph, pw, pw]
    w = quantized_weight(m).numpy().transpose(2, 3, 1, 0)  # OIHW -> HWIO
    params = weight_params(m, w, w)
    if m.bias is not None:
        params["bias"] = m.bias.detach().float().numpy()
    return lw.emit("conv2d", [x], shape, {"kernel": list(m.kernel_size), "stride": list(m.stride),
                                          "dilation": list(m.dilation), "groups": m.groups, "pads": pads},
                   params)


@module_handler(nn.Linear)
def linear(lw: Lowering, m: nn.Linear, shape, x: Value):
    if x.rank != 2:
        raise lw.fail(f"Linear on a rank-{x.rank} input")
    if isinstance(m, QuantizedLayer):
        x = lower_activation_quantizer(lw, m.input_quantizer, x, _example(lw, x))
    w = quantized_weight(m).numpy().T
    params = weight_params(m, w, w)
    if m.bias is not None:
        params["bias"] = m.bias.detach().float().numpy()
    return lw.emit("dense", [x], shape, {}, params)


@module_handler(nn.BatchNorm1d, nn.BatchNorm2d)
def batch_norm(lw: Lowering, m: nn.modules.batchnorm._BatchNorm, shape, x: Value):
    r"""Inference BN: $y = x a + b$, $a = \gamma / \sqrt{\sigma^2 + \epsilon}$, $b = \beta - \mu a$."""
    if m.running_mean is None:
        raise lw.fail("BatchNorm without running statistics")
    var, mean = m.running_var.double(), m.running_mean.double()
    scale = 1.0 / torch.sqrt(var + m.eps)
    if m.weight is not None:
        scale = scale * m.weight.detach().double()
    shift = -mean * scale
    if m.bias is not None:
        shift = shift + m.bias.detach().double()
    return lw.emit("scale_shift", [x], shape, {"channels": x.channels},
                   {"scale": scale.float().numpy(), "shift": shift.float().numpy()})


@module_handler(activations.DPReLU)
def dprelu(lw, m, shape, x):
    return lw.emit("prelu", [x], shape, {"channels": x.channels}, {
        "bias_x": m.bias_x.detach().numpy(), "pos_slope": m.pos_slope.detach().numpy(),
        "neg_slope": m.neg_slope.detach().numpy(), "bias_y": m.bias_y.detach().numpy()})


@module_handler(activations.RPReLU)
def rprelu(lw, m, shape, x):
    return lw.emit("prelu", [x], shape, {"channels": x.channels}, {
        "bias_x": m.gamma.detach().numpy(), "neg_slope": m.slope.detach().numpy(),
        "bias_y": -m.zeta.detach().numpy()})


@module_handler(nn.PReLU)
def prelu(lw, m, shape, x):
    return lw.emit("prelu", [x], shape, {"channels": x.channels}, {"neg_slope": m.weight.detach().numpy()})


@module_handler(nn.LeakyReLU)
def leaky_relu_module(lw, m, shape, x):
    return leaky_relu(lw, shape, x, m.negative_slope)


@module_handler(quantizers.Quantizer, activations.LearnableThresholdSign)
def quantizer(lw, m, shape, x):
    return lower_activation_quantizer(lw, m, x, _example(lw, x))


@module_handler(nn.ReLU)
def relu_module(lw, m, shape, x):
    return relu(lw, shape, x)


@module_handler(nn.ReLU6)
def relu6_module(lw, m, shape, x):
    return lw.emit("clamp", [x], shape, {"lo": 0.0, "hi": 6.0})


@module_handler(nn.Hardtanh)
def hardtanh_module(lw, m, shape, x):
    return lw.emit("clamp", [x], shape, {"lo": float(m.min_val), "hi": float(m.max_val)})


@module_handler(nn.Hardsigmoid)
def hardsigmoid_module(lw, m, shape, x):
    return hardsigmoid(lw, shape, x)


@module_handler(nn.Sigmoid)
def sigmoid_module(lw, m, shape, x):
    return sigmoid(lw, shape, x)


@module_handler(nn.Softmax)
def softmax_module(lw, m, shape, x):
    return softmax(lw, shape, x, m.dim)


@module_handler(nn.Flatten)
def flatten_module(lw, m, shape, x):
    return flatten(lw, shape, x, m.start_dim, m.end_dim)


@module_handler(nn.Identity, nn.Dropout, nn.Dropout2d)
def identity(lw, m, shape, x):
    return x


@module_handler(nn.MaxPool2d)
def maxpool_module(lw, m, shape, x):
    return max_pool2d(lw, shape, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


@module_handler(nn.AvgPool2d)
def avgpool_module(lw, m, shape, x):
    return avg_pool2d(lw, shape, x, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                      m.divisor_override)


@module_handler(nn.AdaptiveAvgPool2d)
def adaptive_avgpool(lw, m, shape, x):
    if _pair(m.output_size) != (1, 1):
        raise lw.fail(f"AdaptiveAvgPool2d to {m.output_size}")
    return lw.emit("global_avgpool", [x], shape, {"keepdims": True})


@module_handler(nn.ZeroPad2d, nn.ConstantPad2d)
def pad_module(lw, m, shape, x):
    return pad(lw, shape, x, list(m.padding), value=float(getattr(m, "value", 0.0)))


# --- functions and methods ----------------------------------------------------------------------

@function_handler(F.relu, torch.relu)
@method_handler("relu")
def relu(lw, shape, x, inplace=False):
    return lw.emit("relu", [x], shape)


@function_handler(F.relu6)
def relu6(lw, shape, x, inplace=False):
    return lw.emit("clamp", [x], shape, {"lo": 0.0, "hi": 6.0})


@function_handler(F.hardtanh)
def hardtanh(lw, shape, x, min_val=-1.0, max_val=1.0, inplace=False):
    return lw.emit("clamp", [x], shape, {"lo": float(min_val), "hi": float(max_val)})


@function_handler(F.leaky_relu)
def leaky_relu(lw, shape, x, negative_slope=0.01, inplace=False):
    return lw.emit("prelu", [x], shape, {"channels": x.channels},
                   {"neg_slope": np.array([negative_slope], np.float32)})


@function_handler(F.hardsigmoid)
def hardsigmoid(lw, shape, x, inplace=False):
    return lw.emit("hardsigmoid", [x], shape)


@function_handler(torch.sigmoid, F.sigmoid)
@method_handler("sigmoid")
def sigmoid(lw, shape, x):
    return lw.emit("sigmoid", [x], shape)


@function_handler(F.softmax, torch.softmax)
@method_handler("softmax")
def softmax(lw, shape, x, dim=None, *args, **kwargs):
    if dim is None or x.engine_axis(dim) != len(shape) - 1:
        raise lw.fail(f"softmax over dim {dim} of a rank-{x.rank} tensor")
    return lw.emit("softmax", [x], shape)


@function_handler(torch.flatten)
@method_handler("flatten")
def flatten(lw, shape, x, start_dim=0, end_dim=-1):
    if len(shape) == x.rank:
        return x
    if start_dim % x.rank != 1 or end_dim % x.rank != x.rank - 1:
        raise lw.fail(f"flatten({start_dim}, {end_dim}) other than of all non-batch dims")
    return lw.emit("flatten", [x], shape)


@method_handler("view", "reshape")
@function_handler(torch.reshape)
def reshape(lw, shape, x, *sizes):
    if len(shape) == 2 and shape[0] == x.shape[0]:
        return flatten(lw, shape, x, 1, -1)
    if tuple(shape) == x.shape:
        return x
    if x.rank == 2 and len(shape) == 4 and shape[2:] == (1, 1):
        return lw.emit("reshape", [x], shape, {"shape": [1, 1, x.shape[1]]})
    raise lw.fail(f"reshape from {x.shape} to {tuple(shape)}")


@method_handler("unflatten")
def unflatten(lw, shape, x, dim, sizes):
    if dim % x.rank != 1 or len(sizes) != 2:
        raise lw.fail("unflatten other than of the channel dim into (groups, k)")
    return Grouped(x, sizes[0], sizes[1])


@function_handler(torch.mean)
@method_handler("mean")
def mean(lw, shape, x, dim=None, keepdim=False, **kwargs):
    if isinstance(x, Grouped):
        if dim != 2 or keepdim:
            raise lw.fail("mean of an unflattened tensor other than over the group dim")
        value = x.value
        if value.channels != x.groups * x.k:
            raise lw.fail("channel averaging of a partial channel range")
        return lw.emit("channel_avg", [value], shape, {"out_channels": x.groups})
    dims = {d % x.rank for d in ((dim,) if isinstance(dim, int) else dim)}
    if x.rank != 4 or dims != {2, 3}:
        raise lw.fail(f"mean over dims {dim} of a rank-{x.rank} tensor")
    return lw.emit("global_avgpool", [x], shape, {"keepdims": bool(keepdim)})


@function_handler(F.adaptive_avg_pool2d)
def adaptive_avg_pool2d(lw, shape, x, output_size):
    if _pair(output_size) != (1, 1):
        raise lw.fail(f"adaptive_avg_pool2d to {output_size}")
    return lw.emit("global_avgpool", [x], shape, {"keepdims": True})


def _window_attrs(lw, kernel, stride, padding, dilation=1, ceil_mode=False):
    if ceil_mode:
        raise lw.fail("pooling with ceil_mode=True")
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride not in (None, []) else kernel)
    ph, pw = _pair(padding)
    return {"kernel": [kh, kw], "stride": [sh, sw], "dilation": list(_pair(dilation)), "pads": [ph, ph, pw, pw]}


@function_handler(F.max_pool2d)
def max_pool2d(lw, shape, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return lw.emit("maxpool2d", [x], shape, _window_attrs(lw, kernel_size, stride, padding, dilation, ceil_mode))


@function_handler(F.avg_pool2d)
def avg_pool2d(lw, shape, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    if divisor_override is not None:
        raise lw.fail("avg_pool2d with divisor_override")
    attrs = _window_attrs(lw, kernel_size, stride, padding, 1, ceil_mode)
    attrs["count_include_pad"] = bool(count_include_pad)
    return lw.emit("avgpool2d", [x], shape, attrs)


@function_handler(F.pad)
def pad(lw, shape, x, pad, mode="constant", value=None):
    value = 0.0 if value is None else float(value)
    if mode != "constant" or any(p < 0 for p in pad):
        raise lw.fail(f"pad mode={mode!r} with amounts {pad}")
    pad = list(pad) + [0] * (2 * x.rank - len(pad))
    spatial, channel = pad[:4], pad[4:6]
    if x.rank == 4 and not any(channel) and not any(pad[6:]):
        l, r, t, b = spatial
        return lw.emit("pad", [x], shape, {"pads": [t, b, l, r], "value": "-inf" if value == -math.inf else value})
    if x.rank == 4 and not any(spatial) and channel[0] == 0 and value == 0.0 and not any(pad[6:]):
        return lw.emit("channel_zeropad", [x], shape, {"out_channels": shape[1]})
    raise lw.fail(f"pad {pad[:2 * x.rank]} of a rank-{x.rank} tensor")


@method_handler("repeat")
def repeat(lw, shape, x, *sizes):
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) != x.rank or any(s != 1 for k, s in enumerate(sizes) if k != 1):
        raise lw.fail(f"repeat{tuple(sizes)} other than along channels")
    return lw.emit("channel_tile", [x], shape, {"out_channels": shape[1]})


@function_handler(operator.getitem)
def getitem(lw, shape, x, index):
    index = index if isinstance(index, tuple) else (index,)
    full = slice(None)
    if (len(index) >= 2 and index[0] == full and isinstance(index[1], slice) and index[1].start in (None, 0)
            and index[1].step in (None, 1) and all(i == full for i in index[2:])):
        return lw.emit("channel_tile", [x], shape, {"out_channels": shape[1]})
    if x.rank == 2 and index[:2] == (full, full) and all(i is None for i in index[2:]) and len(shape) == 4:
        return lw.emit("reshape", [x], shape, {"shape": [1, 1, x.shape[1]]})
    raise lw.fail(f"indexing {index}")


@function_handler(torch.cat, torch.concat)
def cat(lw, shape, tensors, dim=0):
    values = list(tensors)
    if not all(isinstance(v, Value) for v in values):
        raise lw.fail("concatenation with a constant")
    return lw.emit("concat", values, shape, {"axis": values[0].engine_axis(dim), "num_inputs": len(values)})


def _arith(op: str):
    def handler(lw, shape, a, b, *, alpha=1, out=None):
        if alpha != 1:
            raise lw.fail(f"{op} with alpha={alpha}")
        if isinstance(a, Value) and isinstance(b, Value):
            return lw.emit(op, [a, b], shape)
        value, const, value_first = (a, b, True) if isinstance(a, Value) else (b, a, False)
        c = to_engine_layout(const.detach().cpu().numpy() if isinstance(const, torch.Tensor) else const, value.rank)
        per_channel = c.size in (1, value.channels) and c.ndim <= len(shape) and all(d == 1 for d in c.shape[:-1])
        if per_channel and tuple(shape) == value.shape:
            vec = c.reshape(-1).astype(np.float32)
            affine = {("add", True): {"shift": vec}, ("add", False): {"shift": vec},
                      ("mul", True): {"scale": vec}, ("mul", False): {"scale": vec},
                      ("sub", True): {"shift": -vec}, ("sub", False): {"scale": -np.ones_like(vec), "shift": vec},
                      ("div", True): {"scale": (np.float32(1) / vec).astype(np.float32)}}.get((op, value_first))
            if affine is not None:
                return lw.emit("scale_shift", [value], shape, {"channels": value.channels}, affine)
        const_value = lw.emit("constant", [], c.shape, {}, {"value": c}, base=f"{lw.where}_const")
        const_value = Value(const_value.name, _torch_shape(c.shape, value.rank))
        return lw.emit(op, [value, const_value] if value_first else [const_value, value], shape)
    return handler


def _torch_shape(engine_shape, rank):
    if rank == 4 and len(engine_shape) == 4:
        n, h, w, c = engine_shape
        return (n, c, h, w)
    return tuple(engine_shape)


for _op, _targets, _methods in (("add", (operator.add, operator.iadd, torch.add), ("add", "add_")),
                                ("sub", (operator.sub, operator.isub, torch.sub), ("sub",)),
                                ("mul", (operator.mul, operator.imul, torch.mul), ("mul", "mul_")),
                                ("div", (operator.truediv, torch.div), ("div",))):
    _h = _arith(_op)
    function_handler(*_targets)(_h)
    method_handler(*_methods)(_h)
