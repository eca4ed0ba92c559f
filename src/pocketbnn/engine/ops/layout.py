"""Ops that move or combine data: concat, pad, flatten, softmax, channel tile / zero-pad /
average (PokeBNN's ReshapeAdd)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.ops import _backend
from pocketbnn.engine.ops.base import F32, Op, TensorSpec, attr_float, attr_int, attr_ints, register


def _float_input(op: Op, spec: TensorSpec, ndim: int | None = None) -> None:
    if spec.dtype != F32 or (ndim is not None and len(spec.shape) != ndim):
        raise ModelFormatError(f"{op.name} takes a float32 input{f' of {ndim} axes' if ndim else ''}, got {spec}")


@register("concat")
class Concat(Op):
    """Concatenate float32 inputs along ``axis`` (3 = channels of NHWC)."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.axis = attr_int(attrs, "axis", lo=0, hi=5)
        self.num_inputs = attr_int(attrs, "num_inputs", lo=1, hi=4096)

    def infer(self, inputs):
        self.check_inputs(inputs)
        first = inputs[0].shape
        for s in inputs:
            _float_input(self, s)
            if len(s.shape) != len(first) or self.axis >= len(first) or any(
                    a != b for i, (a, b) in enumerate(zip(s.shape, first)) if i != self.axis):
                raise ModelFormatError(f"concat: shapes {[i.shape for i in inputs]} differ off axis {self.axis}")
        shape = list(first)
        shape[self.axis] = sum(s.shape[self.axis] for s in inputs)
        return [TensorSpec(tuple(shape), F32)]

    def run(self, ins, outs, scratch):
        np.concatenate(ins, axis=self.axis, out=outs[0])


@register("pad")
class Pad(Op):
    """Constant padding of H and W: ``pads`` = (top, bottom, left, right), fill ``value``
    (a number, or the string ``"-inf"``: JSON has no infinities)."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.pads = attr_ints(attrs, "pads", 4)
        self.value = -np.inf if attrs.get("value") == "-inf" else attr_float(attrs, "value", default=0.0)

    def infer(self, inputs):
        self.check_inputs(inputs)
        _float_input(self, inputs[0], 4)
        n, h, w, c = inputs[0].shape
        t, b, l, r = self.pads
        return [TensorSpec((n, h + t + b, w + l + r, c), F32)]

    def run(self, ins, outs, scratch):
        x, out = ins[0], outs[0]
        t, _, l, _ = self.pads
        out.fill(self.value)
        np.copyto(out[:, t:t + x.shape[1], l:l + x.shape[2]], x)


@register("flatten")
class Flatten(Op):
    """``[N, H, W, C]`` -> ``[N, C*H*W]`` in torch's (C, H, W) order, so a following dense
    layer keeps torch's weight layout; 2-D input passes through."""

    def infer(self, inputs):
        self.check_inputs(inputs)
        _float_input(self, inputs[0])
        shape = inputs[0].shape
        return [TensorSpec((shape[0], int(np.prod(shape[1:]))), F32)]

    def run(self, ins, outs, scratch):
        x = ins[0]
        if x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        np.copyto(outs[0].reshape(x.shape), x)


@register("reshape")
class Reshape(Op):
    """Same data, new shape ``[N] + shape`` (e.g. ``[N, C]`` -> ``[N, 1, 1, C]``)."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        shape = attrs.get("shape")
        if not isinstance(shape, list) or not 1 <= len(shape) <= 5:
            raise ModelFormatError(f"attribute 'shape' must list 1 to 5 sizes, got {shape!r}")
        self.shape = attr_ints(attrs, "shape", len(shape), lo=1)

    def infer(self, inputs):
        self.check_inputs(inputs)
        _float_input(self, inputs[0])
        n = inputs[0].shape[0]
        if int(np.prod(inputs[0].shape[1:])) != int(np.prod(self.shape)):
            raise ModelFormatError(f"reshape of {inputs[0].shape} to [N, *{self.shape}] changes the size")
        return [TensorSpec((n,) + self.shape, F32)]

    def run(self, ins, outs, scratch):
        np.copyto(outs[0], ins[0].reshape(outs[0].shape))


@register("softmax")
class Softmax(Op):
    r"""$y_i = e^{x_i - \max x} / \sum_j e^{x_j - \max x}$ over the last axis."""

    def infer(self, inputs):
        self.check_inputs(inputs)
        _float_input(self, inputs[0])
        return [TensorSpec(inputs[0].shape, F32), ]

    def scratch(self, inputs):
        return [TensorSpec(inputs[0].shape[:-1] + (1,), F32)]

    def run(self, ins, outs, scratch):
        x, out, m = ins[0], outs[0], scratch[0]
        np.max(x, axis=-1, keepdims=True, out=m)
        np.subtract(x, m, out=out)
        np.exp(out, out=out)
        np.sum(out, axis=-1, keepdims=True, out=m)
        np.divide(out, m, out=out)


class _ChannelMap(Op):
    """A map of the channel axis, run by the compiled ``float_channel_map`` kernel; a following
    add of a same-shape value (the ReshapeAdd's add) runs in the same pass. A tile or zero-pad
    added to a binary conv's output runs in that conv's output stage instead (``residual_map``,
    the executor's mapped-residual fusion)."""

    map_kind: ClassVar[int]

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.out_channels = attr_int(attrs, "out_channels", lo=1)

    def infer(self, inputs):
        self.check_inputs(inputs)
        _float_input(self, inputs[0])
        self.check_channels(inputs[0].shape[-1])
        return [TensorSpec(inputs[0].shape[:-1] + (self.out_channels,), F32)]

    def check_channels(self, c: int) -> None:
        pass

    def bind(self, ins, outs, scratch):
        return _backend.bind_channel_map(ins[0], outs[0], self.map_kind, num_threads=self.num_threads)

    def can_fuse_add(self, inputs):
        return True

    def bind_residual(self, ins, outs, scratch, residual):
        return _backend.bind_channel_map(ins[0], outs[0], self.map_kind, residual, num_threads=self.num_threads)


@register("channel_tile")
class ChannelTile(_ChannelMap):
    r"""Out channel $j$ = in channel $j \bmod C$, for $j < C_{out}$: tiling, then cutting
    (with $C_{out} \le C$, keeping the first channels)."""

    map_kind = _backend.CHANNEL_TILE
    residual_map = "tile"


@register("channel_zeropad")
class ChannelZeroPad(_ChannelMap):
    """Append zero channels up to ``out_channels``."""

    map_kind = _backend.CHANNEL_ZEROPAD
    residual_map = "zeropad"

    def check_channels(self, c):
        if c > self.out_channels:
            raise ModelFormatError(f"channel_zeropad from {c} to fewer channels {self.out_channels}")


@register("channel_avg")
class ChannelAvg(_ChannelMap):
    r"""$y_j = \frac{1}{k}\sum_{i<k} x_{jk+i}$ with $k = \lfloor C / C_{out} \rfloor$ (consecutive
    channels averaged; channels past $k C_{out}$ are dropped)."""

    map_kind = _backend.CHANNEL_AVG

    def check_channels(self, c):
        if c < self.out_channels:
            raise ModelFormatError(f"channel_avg from {c} to more channels {self.out_channels}")
