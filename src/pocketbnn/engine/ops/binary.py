r"""Binary ops on bit-packed NHWC data: quantize, binary conv / dense, binary max-pool.

A packed value is uint64 ``[..., ceil(C/64)]`` (bit convention: ``pocketbnn.kernels``); its
spec carries the channel count C.

**bconv2d** computes, with $K$ taps-times-channels per group, the ±1 dot product
$d = \sum (\pm 1)(\pm 1)$ of the input window and the packed OHWI weights, then

* float output: $y_c = \mathrm{clamp}(d, lo, hi)\, m_c + b_c$;
* packed output: bit $c$ = $[d < \tau_c]$, i.e. $y_c < 0$ for the thresholds $\tau$ the converter
  derived from $(m, b, lo, hi)$ (``pocketbnn.kernels.bitpacked_output_params``).

Padding with ``pad_value`` 1 reads padded pixels as +1 (bit 0, free); 0 makes padded taps
contribute nothing (the kernels add a per-position correction). A 2-D input ``[N, words]`` is
a binary dense layer, run as a 1x1 convolution.

The arithmetic runs in the compiled kernels (``pocketbnn.kernels`` with ``out=``, through
``_backend``), never in numpy.
"""

from __future__ import annotations

import numpy as np

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.model_file import WORD_BITS
from pocketbnn.engine.ops import _backend
from pocketbnn.engine.ops.base import (F32, U64, Op, TensorSpec, attr_choice, attr_int, attr_ints,
                                       channel_vector, param, register)
from pocketbnn.engine.ops.window import Window

WORD_BITS = 64


def words(channels: int) -> int:
    return -(-channels // WORD_BITS)


@register("quantize")
class Quantize(Op):
    """float32 ``[..., C]`` -> packed ``[..., ceil(C/64)]``: bit = 1 iff x < 0.

    With ``pads`` (top, bottom, left, right) a 4-D image is written into the interior of a padded
    packed image whose border is zero words (+1 values): the input of a one-padded binary conv,
    which then reads it without padding (the interpreter sets this up when the conv is the only
    reader, see ``executor.padding_into_packing``).
    """

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.pads = attr_ints(attrs, "pads", 4, default=[0, 0, 0, 0])

    def infer(self, inputs):
        self.check_inputs(inputs)
        x = inputs[0]
        if x.dtype != F32 or not x.shape:
            raise ModelFormatError(f"quantize takes a float32 tensor, got {x}")
        if not any(self.pads):
            return [TensorSpec(x.shape[:-1] + (words(x.shape[-1]),), U64, x.shape[-1])]
        if len(x.shape) != 4:
            raise ModelFormatError(f"quantize with pads takes a 4-D NHWC image, got {x}")
        t, b, l, r = self.pads
        n, h, w, c = x.shape
        return [TensorSpec((n, h + t + b, w + l + r, words(c)), U64, c)]

    def bind(self, ins, outs, scratch):
        if any(self.pads):
            return _backend.bind_pack_padded(ins[0], outs[0], self.pads, num_threads=self.num_threads)
        return _backend.bind_pack(ins[0], outs[0], num_threads=self.num_threads)

    def bind_means(self, ins, outs, means):
        """The packing that also writes each image's channel means of the (4-D) input into
        ``means`` (a fused global average pool, shape ``[N, C]`` or ``[N, 1, 1, C]``)."""
        x = ins[0]
        return _backend.bind_pack_padded(x, outs[0], self.pads, num_threads=self.num_threads,
                                         means=means.reshape(x.shape[0], x.shape[-1]))


def _packed_input(op: Op, spec: TensorSpec) -> None:
    if spec.dtype != U64 or spec.channels is None:
        raise ModelFormatError(f"{op.name} takes a bit-packed input, got {spec}")


@register("bconv2d")
class BConv2d(Op):
    """Binary convolution (see module docstring). Weights: uint64 ``[O, kh, kw, words(Cin/groups)]``."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.window = Window.from_attrs(attrs)
        self.channels_in = attr_int(attrs, "channels_in", lo=1)
        self.groups = attr_int(attrs, "groups", lo=1, default=1)
        self.pad_value = attr_int(attrs, "pad_value", lo=0, hi=1, default=1)
        self.output = attr_choice(attrs, "output", ("float", "packed"), default="float")
        self.clamp = attr_ints(attrs, "clamp", 2, lo=-(1 << 31), default=[-(1 << 31), (1 << 31) - 1])
        cg, rem = divmod(self.channels_in, self.groups)
        if rem or (self.groups > 1 and cg % WORD_BITS):
            raise ModelFormatError(f"bconv2d: {self.channels_in} channels in {self.groups} groups; "
                                   f"grouped binary convs need a multiple of {WORD_BITS} channels per group")
        w = param(params, "weights", np.uint64, ndim=4)
        self.out_channels = w.shape[0]
        if w.shape[1:] != (self.window.kh, self.window.kw, words(cg)) or self.out_channels % self.groups:
            raise ModelFormatError(f"bconv2d weights {w.shape} do not fit kernel "
                                   f"{(self.window.kh, self.window.kw)}, {cg} channels per group, {self.groups} groups")
        o = self.out_channels
        if self.output == "float":
            self.multiplier = channel_vector(params, "multiplier", o)
            self.bias = channel_vector(params, "bias", o, default=0.0)
            self.thresholds = None
        else:
            self.multiplier = self.bias = None
            self.thresholds = param(params, "thresholds", np.int32, shape=(o,))
        self.kernel = _backend.prepare_bconv2d(w, cg, self.groups)

    def infer(self, inputs):
        self.check_inputs(inputs)
        x = inputs[0]
        _packed_input(self, x)
        if x.channels != self.channels_in:
            raise ModelFormatError(f"bconv2d expects {self.channels_in} input channels, got {x.channels}")
        if len(x.shape) == 2:
            if (self.window.kh, self.window.kw) != (1, 1):
                raise ModelFormatError("binary dense (2-D input) needs a 1x1 kernel")
            lead = (x.shape[0],)
        else:
            n, _, _, oh, ow = self.window.output_hw(x, "bconv2d")
            lead = (n, oh, ow)
        if self.output == "float":
            return [TensorSpec(lead + (self.out_channels,), F32)]
        return [TensorSpec(lead + (words(self.out_channels),), U64, self.out_channels)]

    def bind(self, ins, outs, scratch, residual=None, residual_map=None, addend=None, addend_map=None, stages=None):
        x, out = ins[0], outs[0]
        if x.ndim == 2:  # binary dense: a 1x1 convolution over a 1-pixel image (views, no copies)
            x = x.reshape(x.shape[0], 1, 1, x.shape[1])
            out = out.reshape(out.shape[0], 1, 1, out.shape[1])
            residual = None if residual is None else residual.reshape(out.shape[:3] + residual.shape[-1:])
            addend = None if addend is None else addend.reshape(out.shape[:3] + addend.shape[-1:])
        return _backend.bind_bconv2d(x, self.kernel, out, window=self.window, pad_value=self.pad_value,
                                     clamp=self.clamp, multiplier=self.multiplier, bias=self.bias,
                                     residual=residual, residual_map=residual_map, thresholds=self.thresholds,
                                     num_threads=self.num_threads, addend=addend, addend_map=addend_map,
                                     stages=stages)

    def can_fuse_add(self, inputs):
        return self.output == "float"

    def bind_residual(self, ins, outs, scratch, residual):
        return self.bind(ins, outs, scratch, residual=residual)

    def can_fuse_mapped_add(self, inputs, residual, residual_map):
        # The kernel maps whole 64-channel runs of one group (kernels.bconv2d's residual_map).
        c = residual.shape[-1]
        return (self.output == "float" and self.kernel.groups == 1 and residual.dtype == F32
                and c % WORD_BITS == 0 and 0 < c <= self.kernel.out_channels)

    def bind_mapped_residual(self, ins, outs, scratch, residual, residual_map):
        return self.bind(ins, outs, scratch, residual=residual, residual_map=residual_map)

    def can_fuse_epilogue(self, inputs):
        return self.output == "float"

    def bind_epilogue(self, ins, out, scratch, *, residual, residual_map, addend, addend_map, stages):
        return self.bind(ins, [out], scratch, residual=residual, residual_map=residual_map, addend=addend,
                         addend_map=addend_map, stages=stages)


@register("bmaxpool2d")
class BMaxPool2d(Op):
    r"""Binary max-pool on packed data: bit = AND of the window's bits (the max of ±1 values
    is -1 only if all are -1), padded positions ignored; equals sign(maxpool(x))."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        w = self.window = Window.from_attrs(attrs)
        if (w.dh, w.dw) != (1, 1) or max(w.top, w.bottom) >= w.kh or max(w.left, w.right) >= w.kw:
            raise ModelFormatError(f"bmaxpool2d needs dilation 1 and padding smaller than the window, got {attrs}")

    def infer(self, inputs):
        self.check_inputs(inputs)
        x = inputs[0]
        _packed_input(self, x)
        n, _, _, oh, ow = self.window.output_hw(x, "bmaxpool2d")
        return [TensorSpec((n, oh, ow, x.shape[3]), U64, x.channels)]

    def bind(self, ins, outs, scratch):
        return _backend.bind_bmaxpool2d(ins[0], outs[0], window=self.window, num_threads=self.num_threads)
