"""Float convolution and dense layers on NHWC float32: im2col + BLAS GEMM (OpenBLAS's sgemm,
scheduled over row bands by the compiled core, bias and ReLU fused), or a direct convolution
for short reductions.

Weights are HWIO for convolutions, ``[kh, kw, Cin/groups, Cout]``, and ``[in, out]`` for dense,
float32 or int8 codes with a per-output-channel scale (see ``base.float_weights``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.ops import _backend
from pocketbnn.engine.ops.base import (F32, Op, TensorSpec, attr_int, channel_vector, float_weights,
                                       register, weight_codes)
from pocketbnn.engine.ops.window import Window

# Reductions (kh * kw * in_channels) up to this long run as a direct convolution: a network's
# stem on RGB input (K = 27 or 147) and its thin 1x1 convs, where packing the im2col matrix and
# B costs sgemm more than the multiply-adds. On the Zen 3 VM (batch 1, one thread) the direct
# kernel took 0.15 ms for QuickNet's 3x3 stem where im2col + OpenBLAS took 0.46 ms, 2.7 ms for
# Bi-Real's 7x7 stem against 3.5 ms, and 1.1-1.3x less for 1x1 convs of 16-256 input channels.
# Longer reductions stay with the BLAS.
DIRECT_MAX_K = 256
# Products of this many output pixels or fewer stay with the BLAS (sgemv, csrc/float_ops/gemm.h).
DIRECT_MIN_PIXELS = 4


@register("conv2d")
class Conv2d(Op):
    r"""$y[n,oy,ox,o] = b_o + \sum_{ky,kx,i} x_{pad}[n, oy s_h + ky d_h, ox s_w + kx d_w, g(o) C_g + i]
    \, w[ky,kx,i,o]$, zero padding, ``groups`` channel groups of $C_g$ inputs each.

    Runs as the compiled direct convolution (groups = 1, a reduction ``kh * kw * C`` of at most
    ``DIRECT_MAX_K``), one GEMM over im2col columns (other groups = 1 convolutions: the compiled
    core makes the columns band by band and multiplies each band while it is in cache; a 1x1
    stride-1 unpadded convolution is a GEMM on the input itself), the compiled depthwise kernel (one input channel per group,
    any channel multiplier), or numpy per-group code otherwise (other grouped convolutions; their
    per-group GEMMs are the same BLAS's).
    """

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.window = Window.from_attrs(attrs)
        self.groups = attr_int(attrs, "groups", lo=1, default=1)
        self.weights = float_weights(params, "weights", ndim=4)
        kh, kw, cg, cout = self.weights.shape
        if (kh, kw) != (self.window.kh, self.window.kw) or cout % self.groups:
            raise ModelFormatError(f"conv2d weights {self.weights.shape} do not fit kernel "
                                   f"{(self.window.kh, self.window.kw)} and {self.groups} groups")
        self.in_channels = cg * self.groups
        self.bias = channel_vector(params, "bias", cout) if "bias" in params else None
        # One input channel per group: the compiled depthwise kernel.
        self.depthwise = cg == 1 and self.groups > 1
        self.dw_weights = np.ascontiguousarray(self.weights[:, :, 0, :]) if self.depthwise else None
        self.native_gemm = self.groups == 1
        self.pointwise = (kh, kw) == (1, 1) and not self.window.padded and (self.window.sh, self.window.sw) == (1, 1)
        self.direct_weights = (_backend.pack_direct_weights(self.weights)
                               if self.native_gemm and kh * kw * cg <= DIRECT_MAX_K else None)
        # Per-group GEMM operands, [K, Cout/groups] each.
        og = cout // self.groups
        self.gemm_weights = [np.ascontiguousarray(self.weights[..., g * og:(g + 1) * og].reshape(-1, og))
                             for g in range(self.groups)]
        self.gemv = _gemv_codes(params, 4) if self.native_gemm and self.pointwise else None

    def infer(self, inputs):
        self.check_inputs(inputs)
        n, _, _, oh, ow = self.window.output_hw(inputs[0], "conv2d")
        if inputs[0].shape[3] != self.in_channels or inputs[0].dtype != F32:
            raise ModelFormatError(f"conv2d expects float32 with {self.in_channels} channels, got {inputs[0]}")
        return [TensorSpec((n, oh, ow, self.weights.shape[3]), F32)]

    def _direct(self, out_shape) -> bool:
        n, oh, ow, _ = out_shape
        return self.direct_weights is not None and n * oh * ow >= DIRECT_MIN_PIXELS

    def scratch(self, inputs):
        (x,), out = inputs, self.infer(inputs)[0]
        n, oh, ow, cout = out.shape
        if self.depthwise or (self.native_gemm and self.pointwise) or self._direct(out.shape):
            return []
        k = self.gemm_weights[0].shape[0]
        if self.native_gemm:
            return [TensorSpec((n, oh, ow, k), F32)]
        bufs = [TensorSpec(self.window.padded_shape(x), F32)] if self.window.padded else []
        return bufs + [TensorSpec((n, oh, ow, k), F32), TensorSpec((n * oh * ow, cout // self.groups), F32)]

    def can_fuse_relu(self, inputs):
        return self.depthwise or self.native_gemm

    def bind_relu(self, ins, outs, scratch):
        return self.bind(ins, outs, scratch, relu=True)

    def bind(self, ins, outs, scratch, relu=False):
        x, out = ins[0], outs[0]
        nt = self.num_threads
        if self.depthwise:
            return _backend.bind_depthwise2d(x, self.dw_weights, self.bias, out, window=self.window, relu=relu,
                                             num_threads=nt)
        if self._direct(out.shape):
            return _backend.bind_direct_conv2d(x, self.direct_weights, self.bias, out, window=self.window,
                                               relu=relu, num_threads=nt)
        if self.native_gemm and self.pointwise:
            return _bind_product(self, x.reshape(-1, x.shape[3]), self.gemm_weights[0], out.reshape(-1, out.shape[3]),
                                 relu)
        if self.native_gemm:
            return _backend.bind_conv_gemm(x, self.gemm_weights[0], self.bias, scratch[0], out, window=self.window,
                                           relu=relu, num_threads=nt)
        assert not relu, "can_fuse_relu is False for this conv"
        return partial(self.run_numpy, ins, outs, scratch)

    def run_numpy(self, ins, outs, scratch):
        x, out = ins[0], outs[0]
        scratch = list(scratch)
        if self.window.padded:
            x = self.window.fill_padded(x, scratch.pop(0))
        self._grouped_gemm(x, out, scratch)
        if self.bias is not None:
            np.add(out, self.bias, out=out)

    def _grouped_gemm(self, x, out, scratch):
        n, oh, ow, cout = out.shape
        col, group_out = scratch
        cg = self.in_channels // self.groups
        og = cout // self.groups
        flat_out = out.reshape(-1, cout)
        for g, w in enumerate(self.gemm_weights):
            xg = x[..., g * cg:(g + 1) * cg]
            for ky, kx, view in self.window.taps(xg, oh, ow):
                t = ky * self.window.kw + kx
                np.copyto(col[..., t * cg:(t + 1) * cg], view)
            _backend.bind_gemm(col.reshape(-1, col.shape[3]), w, None, group_out, relu=False,
                               num_threads=self.num_threads)()
            np.copyto(flat_out[:, g * og:(g + 1) * og], group_out)


@register("dense")
class Dense(Op):
    r"""$y = x W + b$ on ``[N, in]`` input; ``W`` is ``[in, out]``."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.weights = float_weights(params, "weights", ndim=2)
        self.bias = channel_vector(params, "bias", self.weights.shape[1]) if "bias" in params else None
        self.gemv = _gemv_codes(params, 2)

    def infer(self, inputs):
        self.check_inputs(inputs)
        x = inputs[0]
        if len(x.shape) != 2 or x.shape[1] != self.weights.shape[0] or x.dtype != F32:
            raise ModelFormatError(f"dense expects float32 [N, {self.weights.shape[0]}], got {x}")
        return [TensorSpec((x.shape[0], self.weights.shape[1]), F32)]

    def can_fuse_relu(self, inputs):
        return True

    def bind_relu(self, ins, outs, scratch):
        return self.bind(ins, outs, scratch, relu=True)

    def bind(self, ins, outs, scratch, relu=False):
        return _bind_product(self, ins[0], self.weights, outs[0], relu)


def _gemv_codes(params: dict, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A quantized layer's weight codes packed for ``float_gemv_i8`` (as ``[k, n]``), and scale."""
    quantized = weight_codes(params, "weights", ndim)
    if quantized is None:
        return None
    codes, scale = quantized
    return _backend.pack_gemv_codes(codes.reshape(-1, codes.shape[-1])), scale


def _bind_product(op, x, weights, out, relu):
    """``x @ weights + bias`` for a dense layer or a 1x1 conv: with int8 codes on few rows (a
    quantized layer at batch 1) the codes are streamed, else float32 GEMM."""
    if op.gemv is not None and x.shape[0] <= _backend.GEMV_I8_MAX_ROWS:
        return _backend.bind_gemv_i8(x, *op.gemv, op.bias, out, relu=relu, num_threads=op.num_threads)
    return _backend.bind_gemm(x, weights, op.bias, out, relu=relu, num_threads=op.num_threads)
