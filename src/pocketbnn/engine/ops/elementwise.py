"""Element-wise float ops on the last (channel) axis: affine, activations, add, mul, sign.

Per-channel parameters are float32 vectors over the last axis (length C, or 1 to broadcast).
Scale/shift, ReLU, clamp, the PReLU family and SE gates' products run in one compiled
per-channel kernel (``float_channel_affine``; up to two of them, after an add, in one pass: see
the executor's fusions), same-shape add in ``float_add``; the rest is numpy.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.ops import _backend
from pocketbnn.engine.ops.base import (F32, Op, TensorSpec, attr_choice, attr_float, attr_int,
                                       channel_vector, param, register)


def _constant(channels: int, value: float) -> np.ndarray:
    """A read-only float32 vector of ``channels`` copies of ``value``, shared by all ops."""
    v = _CONSTANTS.get((channels, value))
    if v is None:
        v = np.full(channels, value, np.float32)
        v.flags.writeable = False
        v = _CONSTANTS.setdefault((channels, value), v)
    return v


def _identity(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ones and zeros of length ``channels`` (identity affine parameters)."""
    return _constant(channels, 1.0), _constant(channels, 0.0)


_CONSTANTS: dict[tuple[int, float], np.ndarray] = {}


class _Unary(Op):
    """A float32 op whose output has its input's shape."""

    def infer(self, inputs):
        self.check_inputs(inputs)
        if inputs[0].dtype != F32:
            raise ModelFormatError(f"{self.name} takes float32 input, got {inputs[0].dtype}")
        return [TensorSpec(inputs[0].shape, F32)]


class _PerChannel(_Unary):
    """A unary op with per-channel parameters; the channel count is read from ``attrs``."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.channels = attr_int(attrs, "channels", lo=1)

    def infer(self, inputs):
        specs = super().infer(inputs)
        if inputs[0].shape[-1] != self.channels:
            raise ModelFormatError(f"{self.name} has parameters for {self.channels} channels, input {inputs[0].shape}")
        return specs


class _ChannelStage(_Unary):
    """An op that is one stage of the compiled per-channel kernel (``channel_stage``): run
    alone, after an add of two same-shape maps in the same pass (``bind_channel``), or before
    an SE gate's product in the gate's pass (``Mul``)."""

    def bind(self, ins, outs, scratch):
        return self.bind_channel(ins, outs, scratch, addend=None)

    def bind_channel(self, ins, outs, scratch, *, addend):
        x, stages = self.channel_pass(ins)
        return _backend.bind_channel_affine(x, outs[0], stages, addend=addend, num_threads=self.num_threads)

    def pass_map(self, inputs):
        return 0

    def channel_pass(self, ins, *, before=None, affine=None):
        assert before is None and affine is None, "a stage op absorbs no other stage"
        return ins[0], [self.channel_stage(ins[0].shape[-1])]


@register("scale_shift")
class ScaleShift(_ChannelStage, _PerChannel):
    r"""$y = x \cdot a_c + b_c$ (inference BatchNorm, or a constant mul/add)."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.scale = channel_vector(params, "scale", self.channels, default=1.0)
        self.shift = channel_vector(params, "shift", self.channels, default=0.0)

    def channel_stage(self, channels):
        ones, zeros = _identity(channels)
        return _backend.channel_stage(self.scale, self.shift, ones, ones, zeros)


@register("prelu")
class PRelu(_ChannelStage, _PerChannel):
    r"""Shifted two-slope ReLU, covering PReLU, DPReLU (PokeBNN) and RPReLU (ReActNet):

    $$ z = x - \beta^x_c,\qquad y = \begin{cases} \alpha^+_c z & z \ge 0 \\ \alpha^-_c z & z < 0
       \end{cases} \;-\; \beta^y_c $$

    Defaults $\beta^x = 0$, $\alpha^+ = 1$, $\beta^y = 0$ give PReLU; RPReLU's $+\zeta$ is
    $\beta^y = -\zeta$.
    """

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        c = self.channels
        self.bias_x = channel_vector(params, "bias_x", c, default=0.0)
        self.pos = channel_vector(params, "pos_slope", c, default=1.0)
        self.neg = channel_vector(params, "neg_slope", c)
        self.bias_y = channel_vector(params, "bias_y", c, default=0.0)

        self.minus_bias_x = np.ascontiguousarray(-self.bias_x)
        self.minus_bias_y = np.ascontiguousarray(-self.bias_y)

    def channel_stage(self, channels):
        ones, _ = _identity(channels)
        return _backend.channel_stage(ones, self.minus_bias_x, self.pos, self.neg, self.minus_bias_y)


@register("relu")
class Relu(_ChannelStage):
    r"""$y = \max(x, 0)$."""

    def channel_stage(self, channels):
        ones, zeros = _identity(channels)
        return _backend.channel_stage(ones, zeros, ones, ones, zeros, lo=0.0)


@register("clamp")
class Clamp(_ChannelStage):
    r"""$y = \min(\max(x, lo), hi)$ (ReLU6, hardtanh)."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.lo, self.hi = attr_float(attrs, "lo"), attr_float(attrs, "hi")

    def channel_stage(self, channels):
        ones, zeros = _identity(channels)
        return _backend.channel_stage(ones, zeros, ones, ones, zeros, lo=self.lo, hi=self.hi)


@register("hardsigmoid")
class HardSigmoid(_ChannelStage):
    r"""$y = \min(\max(x + 3, 0), 6) / 6$, run as the stage $\text{clamp}(x / 6 + 1/2, 0, 1)$ (the
    same function; rounding may differ by an ulp)."""

    def channel_stage(self, channels):
        ones, zeros = _identity(channels)
        sixth, half = _constant(channels, 1.0 / 6.0), _constant(channels, 0.5)
        return _backend.channel_stage(sixth, half, ones, ones, zeros, lo=0.0, hi=1.0)


@register("sigmoid")
class Sigmoid(_Unary):
    r"""$y = 1 / (1 + e^{-x})$."""

    def run(self, ins, outs, scratch):
        np.negative(ins[0], out=outs[0])
        np.exp(outs[0], out=outs[0])
        np.add(outs[0], 1.0, out=outs[0])
        np.reciprocal(outs[0], out=outs[0])


@register("sign")
class Sign(_Unary):
    r"""Float binarization: $y = -a$ where $x < 0$, else $+a$ (so sign(0) = +a)."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.scale = attr_float(attrs, "scale", default=1.0)

    def run(self, ins, outs, scratch):
        np.less(ins[0], 0, out=outs[0])
        np.multiply(outs[0], -2.0 * self.scale, out=outs[0])
        np.add(outs[0], self.scale, out=outs[0])


@register("fake_quant")
class FakeQuant(_PerChannel):
    r"""Integer fake quantization with a per-channel scale $s_c$ (PokeBNN's int-b activations):

    signed (round):    $y = \mathrm{round}(\mathrm{clip}(x s_c, -q, q)) / s_c$, round half up,
                       $\mathrm{round}(v) = \lfloor v + 1/2 \rfloor$;
    unsigned (floor):  $y = \mathrm{clip}(\lfloor x s_c \rfloor, 0, q) / s_c$.
    """

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.mode = attr_choice(attrs, "mode", ("signed", "unsigned"))
        self.qmax = attr_float(attrs, "qmax")
        self.scale = channel_vector(params, "scale", self.channels)

    def run(self, ins, outs, scratch):
        out = outs[0]
        np.multiply(ins[0], self.scale, out=out)
        if self.mode == "signed":
            np.clip(out, -self.qmax, self.qmax, out=out)
            np.add(out, 0.5, out=out)
            np.floor(out, out=out)
        else:
            np.floor(out, out=out)
            np.clip(out, 0.0, self.qmax, out=out)
        np.divide(out, self.scale, out=out)


class _Binary(Op):
    """Two float32 inputs broadcast against each other (numpy rules); output of the broadcast shape."""

    num_inputs = 2

    def infer(self, inputs):
        self.check_inputs(inputs)
        if any(s.dtype != F32 for s in inputs):
            raise ModelFormatError(f"{self.name} takes float32 inputs")
        try:
            shape = np.broadcast_shapes(inputs[0].shape, inputs[1].shape)
        except ValueError:
            raise ModelFormatError(f"{self.name}: shapes {inputs[0].shape} and {inputs[1].shape} do not broadcast") from None
        return [TensorSpec(tuple(shape), F32)]


@register("add")
class Add(_Binary):
    r"""$y = a + b$."""

    def bind(self, ins, outs, scratch):
        a, b, out = ins[0], ins[1], outs[0]
        if a.shape == b.shape == out.shape:
            return _backend.bind_add(a, b, out, num_threads=self.num_threads)
        return partial(np.add, a, b, out=out)

    def can_fuse_relu(self, inputs):
        return inputs[0].shape == inputs[1].shape

    def bind_relu(self, ins, outs, scratch):
        return _backend.bind_add(ins[0], ins[1], outs[0], relu=True, num_threads=self.num_threads)


@register("mul")
class Mul(_Binary):
    r"""$y = a \cdot b$ (e.g. an SE gate ``[N,1,1,C]`` times ``[N,H,W,C]``).

    A gate times a same-batch NHWC map runs as the compiled per-channel kernel, one call per
    image with that image's gate as the scale of its stage; other broadcasts are numpy's.
    """

    def bind(self, ins, outs, scratch):
        a, b, out = ins[0], ins[1], outs[0]
        x, gate = (b, a) if _is_gate(a.shape, b.shape) else (a, b)
        if not _is_gate(gate.shape, x.shape) or x.shape != out.shape:
            return partial(np.multiply, a, b, out=out)
        return self.bind_gate(ins, out)

    def can_fuse_scale_shift(self, inputs):
        a, b = inputs[0].shape, inputs[1].shape
        return _is_gate(a, b) or _is_gate(b, a)

    def bind_scale_shift(self, ins, outs, scratch, affine):
        r"""$(x g_c) a_c + b_c$, with $a, b$ the scale and shift of ``affine``: one pass, rounded
        as the two ops apart (the kernel's $z = x g$, then $z a + b$)."""
        return self.bind_gate(ins, outs[0], affine=affine)

    def bind_gate(self, ins, out, *, before=None, addend=None, affine=None):
        r"""One pass of the per-channel kernel over the map x (:meth:`channel_pass`), after adding
        ``addend`` (or None)."""
        x, stages = self.channel_pass(ins, before=before, affine=affine)
        return _backend.bind_channel_affine(x, out, stages, addend=addend, num_threads=self.num_threads)

    def pass_map(self, inputs):
        a, b = inputs[0].shape, inputs[1].shape
        return 0 if _is_gate(b, a) else 1 if _is_gate(a, b) else None  # a 1x1 map: the first is x

    def channel_pass(self, ins, *, before=None, affine=None):
        r"""The map x and, per channel c of image n: the stage of ``before``, then $z g_{n,c}$, then
        ``affine``'s $z a_c + b_c$ (one stage whose scale holds a row per image)."""
        k = self.pass_map(ins)
        x, gate = ins[k], ins[1 - k]
        channels = x.shape[-1]
        ones, zeros = _identity(channels)
        slope, post = (affine.scale, affine.shift) if affine is not None else (ones, zeros)
        first = [before.channel_stage(channels)] if before is not None else []
        return x, first + [_backend.channel_stage(gate.reshape(x.shape[0], channels), zeros, slope, slope, post)]


def _is_gate(gate: tuple[int, ...], x: tuple[int, ...]) -> bool:
    """Shape ``gate`` is ``[N,1,1,C]`` for the ``[N,H,W,C]`` map shape ``x``."""
    return len(gate) == len(x) == 4 and gate == (x[0], 1, 1, x[3])


@register("sub")
class Sub(_Binary):
    r"""$y = a - b$."""

    def run(self, ins, outs, scratch):
        np.subtract(ins[0], ins[1], out=outs[0])


@register("div")
class Div(_Binary):
    r"""$y = a / b$."""

    def run(self, ins, outs, scratch):
        np.divide(ins[0], ins[1], out=outs[0])


@register("constant")
class Constant(Op):
    """Outputs its float32 parameter ``value`` (a folded constant the graph combines with
    activations, e.g. a per-pixel average-pool divisor)."""

    num_inputs = 0

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.value = param(params, "value", np.float32)

    def infer(self, inputs):
        self.check_inputs(inputs)
        return [TensorSpec(tuple(self.value.shape), F32)]

    def run(self, ins, outs, scratch):
        np.copyto(outs[0], self.value)
