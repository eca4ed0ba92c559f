"""The engine's one seam to the compiled core.

Binary ops go through the public kernels API (``pocketbnn.kernels``) with ``out=``, writing
into the engine's preplanned buffers, so a run allocates nothing; weights are re-laid out once
per model by ``kernels.BconvWeights``. Float ops (``csrc/float_ops``) are called directly on the
core: they are engine-internal and their arguments are checked once when a plan is built. Float
GEMMs run OpenBLAS's sgemm from the core's threads (``_blas``), registered on first use.

Ops bind their calls once per workspace (``Op.bind``): each ``bind_*`` below returns a
zero-argument callable with every argument already resolved, so the executor's hot loop is
one call per node.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from pocketbnn import _core, kernels
from pocketbnn.engine.ops import _blas

# float_pool2d modes (csrc/float_ops/float_ops.h PoolMode).
POOL_MAX, POOL_AVG_INCLUDE_PAD, POOL_AVG_EXCLUDE_PAD = 0, 1, 2
INF = float("inf")


def bind_pack(x: np.ndarray, out: np.ndarray, *, num_threads: int):
    """Bit-pack float32 ``x`` along its last axis into ``out`` (uint64)."""
    return partial(_core.bitpack_f32, x, out, num_threads)


def bind_pack_padded(x: np.ndarray, out: np.ndarray, pads, *, num_threads: int, means: np.ndarray | None = None):
    """Bit-pack NHWC ``x`` into the interior of ``out``, padded by ``pads`` (top, bottom, left,
    right) with zero words; every word of ``out`` is written. With ``means`` (float32 ``[N, C]``),
    also write each image's channel means of ``x`` there."""
    return partial(_core.bitpack_f32_padded, x, *pads, out, num_threads, means)


def prepare_bconv2d(weights: np.ndarray, in_channels_per_group: int, groups: int) -> kernels.BconvWeights:
    """Packed OHWI weights, re-laid out for the micro-kernels."""
    return kernels.BconvWeights(np.ascontiguousarray(weights), in_channels_per_group * groups, groups=groups)


def bind_bconv2d(x, kernel, out, *, window, pad_value, clamp, multiplier, bias, residual, thresholds, num_threads,
                 residual_map=None, addend=None, addend_map=None, stages=None):
    """Binary convolution into ``out`` (float32, or uint64 when ``thresholds`` is given; the
    kernel overwrites every word, so no zeroing), plus ``residual`` (float output, or None;
    mapped onto the output channels by ``residual_map``, as ``kernels.bconv2d``'s), then
    ``addend`` (through ``addend_map``) and the ``channel_stage`` s ``stages`` as its epilogue
    (or None);
    the output size, and so the bottom/right padding, is ``out``'s. Prepared once
    (``kernels.Bconv2d``), so a run pays only the input check."""
    packed_out = thresholds is not None
    conv = kernels.Bconv2d(kernel, x.shape, stride=(window.sh, window.sw), dilation=(window.dh, window.dw),
                           padding=(window.top, window.bottom, window.left, window.right), pad_value=pad_value,
                           multiplier=None if packed_out else multiplier, bias=None if packed_out else bias,
                           clamp=None if packed_out else tuple(clamp), thresholds=thresholds,
                           num_threads=num_threads)
    epilogue = None if stages is None else kernels.ChannelEpilogue(stages)
    return partial(conv, x, residual=residual, residual_map=residual_map, addend=addend, addend_map=addend_map,
                   epilogue=epilogue, out=out)


def bind_bmaxpool2d(x, out, *, window, num_threads):
    """Binary max-pool (AND over the window) into ``out``."""
    return partial(kernels.bmaxpool, x, (window.kh, window.kw), (window.sh, window.sw),
                   padding=(window.top, window.bottom, window.left, window.right),
                   num_threads=num_threads, out=out)


def _geometry(window):
    return (window.kh, window.kw, window.sh, window.sw, window.dh, window.dw, window.top, window.left)


def bind_depthwise2d(x, weights, bias, out, *, window, relu, num_threads):
    """Depthwise conv, ``weights`` ``[kh, kw, C * M]`` (M outputs per input channel), zero padding,
    optional fused ReLU."""
    return partial(_core.float_depthwise2d, x, weights, bias, window.sh, window.sw, window.dh, window.dw,
                   window.top, window.left, relu, out, num_threads)


# Output channels per block of the direct convolution's packed weights (kDirectBlock).
DIRECT_BLOCK = 16


def pack_direct_weights(weights: np.ndarray) -> np.ndarray:
    """HWIO ``[kh, kw, C, O]`` weights as the direct convolution reads them:
    ``[ceil(O / 16), kh * kw * C, 16]``, output channels past ``O`` zero."""
    kh, kw, c, o = weights.shape
    blocks = -(-o // DIRECT_BLOCK)
    flat = np.zeros((kh * kw * c, blocks * DIRECT_BLOCK), np.float32)
    flat[:, :o] = weights.reshape(-1, o)
    return np.ascontiguousarray(flat.reshape(-1, blocks, DIRECT_BLOCK).transpose(1, 0, 2))


def bind_direct_conv2d(x, packed, bias, out, *, window, relu, num_threads):
    """Direct convolution (no im2col, no GEMM) with ``pack_direct_weights``' weights, zero
    padding, optional fused ReLU."""
    return partial(_core.float_direct_conv2d, x, packed, bias, *_geometry(window), relu, out, num_threads)


def bind_pool2d(x, out, *, mode, window, num_threads):
    return partial(_core.float_pool2d, x, mode, *_geometry(window), out, num_threads)


def bind_gemm(a, b, bias, out, *, relu, num_threads):
    r"""$out = a b + bias$ (then ReLU), ``a`` ``[m, k]``, ``b`` ``[k, n]``, ``out`` ``[m, n]``."""
    _blas.register()
    return partial(_core.float_gemm, a, b, bias, out, relu, num_threads)


# Output columns per block of float_gemv_i8's codes (kGemvBlock, csrc/float_ops/float_ops.h), and
# the most rows it takes: a product of more rows reuses each weight enough for sgemm.
GEMV_BLOCK, GEMV_I8_MAX_ROWS = 32, 4


def pack_gemv_codes(codes: np.ndarray) -> np.ndarray:
    """int8 ``[k, n]`` weight codes as ``float_gemv_i8`` reads them: ``[ceil(n / 32), k, 32]``,
    columns past ``n`` zero."""
    k, n = codes.shape
    blocks = -(-n // GEMV_BLOCK)
    flat = np.zeros((k, blocks * GEMV_BLOCK), np.int8)
    flat[:, :n] = codes
    return np.ascontiguousarray(flat.reshape(k, blocks, GEMV_BLOCK).transpose(1, 0, 2))


def bind_gemv_i8(x, codes, scale, bias, out, *, relu, num_threads):
    r"""$out = (x\, q) \odot s + bias$ (then ReLU) for few rows of ``x`` ``[m, k]``, with
    ``pack_gemv_codes``' int8 codes $q$ and per-column scale $s$: a quarter of float32's weight
    bytes, for the int8 / int4 layers at batch 1."""
    return partial(_core.float_gemv_i8, x, codes, scale, bias, out, relu, num_threads)


def bind_conv_gemm(x, b, bias, cols, out, *, window, relu, num_threads):
    r"""Convolution as im2col + GEMM, band by band: ``cols[n, oy, ox, (ky*kw + kx)*C + c]`` =
    padded input (zeros outside the image), $out = cols\, b + bias$ (then ReLU)."""
    _blas.register()
    return partial(_core.float_conv_gemm, x, b, bias, *_geometry(window), cols, out, relu, num_threads)


def channel_stage(scale, shift, pos, neg, post, lo=-INF, hi=INF) -> kernels.ChannelStage:
    r"""One per-channel stage (``kernels.ChannelStage``): $z = x a + b$;
    $z = (z \ge 0 ? p : n) z + q$; clamp to [lo, hi]."""
    return kernels.ChannelStage(scale, shift, pos, neg, post, lo, hi)


def bind_channel_affine(x, out, stages, *, addend=None, num_threads):
    r"""$z = x$ (+ ``addend``, same shape), then each of the 1 or 2 ``channel_stage`` s in
    order, in one pass; a stage's vectors may hold a row per image (``kernels.ChannelEpilogue``)."""
    return partial(_core.float_channel_affine, x, addend, kernels.ChannelEpilogue(stages)._core, out, num_threads)


# float_channel_map maps (csrc/float_ops/float_ops.h ChannelMap).
CHANNEL_TILE, CHANNEL_ZEROPAD, CHANNEL_AVG = 0, 1, 2


def bind_channel_map(x, out, map_kind, residual=None, *, num_threads):
    """Channel tile / zero-pad / average of ``x`` into ``out`` (ReshapeAdd's shortcut), plus
    ``residual`` (laid out as ``out``, or None): the ReshapeAdd's add in the same pass."""
    return partial(_core.float_channel_map, x, map_kind, residual, out, num_threads)


def bind_add(a, b, out, *, relu=False, num_threads):
    return partial(_core.float_add, a, b, out, relu, num_threads)
