"""Float ops of the compiled core (csrc/float_ops) under every ISA, against numpy references."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pocketbnn import _core
from pocketbnn.engine.ops import _blas

_blas.register()

geometry = dict(batch=st.integers(1, 2), height=st.integers(1, 9), width=st.integers(1, 9),
                channels=st.integers(1, 40), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
                stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
                dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
                pads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
                threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**32 - 1))


def _out_hw(h, w, kernel, stride, dilation, pads):
    t, b, l, r = pads
    oh = (h + t + b - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w + l + r - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    return oh, ow


def _taps(x, kernel, stride, dilation, pads, oh, ow, fill):
    """(ky, kx, view of the padded input for that tap), padded with ``fill``."""
    t, b, l, r = pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            yield ky, kx, xp[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0], x0:x0 + (ow - 1) * stride[1] + 1:stride[1]]


def _setup(batch, height, width, channels, kernel, stride, dilation, pads, seed):
    oh, ow = _out_hw(height, width, kernel, stride, dilation, pads)
    # Every window must hold a pixel of the image (the engine's windows always do).
    if oh < 1 or ow < 1 or max(pads[0], pads[1]) >= kernel[0] * dilation[0] - dilation[0] + 1 \
            or max(pads[2], pads[3]) >= kernel[1] * dilation[1] - dilation[1] + 1:
        return None
    x = np.random.default_rng(seed).standard_normal((batch, height, width, channels)).astype(np.float32)
    return x, oh, ow


def _window_args(kernel, stride, dilation, pads):
    return (kernel[0], kernel[1], stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[2])


@settings(max_examples=80, deadline=None)
@given(**geometry, relu=st.booleans(), with_bias=st.booleans(), multiplier=st.sampled_from([1, 1, 2, 3]))
# PokeBNN's stem (32 -> 64 channels, multiplier 2) and QuickNet's stride-2 blur, wide enough for
# the interior pixels' 4-pixel tiles, a 1-pixel tail and channels past the last whole block.
@example(batch=1, height=5, width=15, channels=32, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
         pads=(1, 1, 1, 1), threads=1, seed=0, relu=False, with_bias=True, multiplier=2)
@example(batch=2, height=6, width=21, channels=72, kernel=(3, 3), stride=(2, 2), dilation=(1, 1),
         pads=(0, 1, 0, 1), threads=2, seed=1, relu=True, with_bias=False, multiplier=1)
@example(batch=1, height=4, width=12, channels=20, kernel=(3, 2), stride=(1, 1), dilation=(1, 2),
         pads=(1, 1, 2, 0), threads=1, seed=2, relu=False, with_bias=True, multiplier=2)
def test_depthwise2d(isa, batch, height, width, channels, kernel, stride, dilation, pads, threads, seed,
                     relu, with_bias, multiplier):
    """Output channel o reads input channel o // multiplier."""
    s = _setup(batch, height, width, channels, kernel, stride, dilation, pads, seed)
    if s is None:
        return
    x, oh, ow = s
    out_c = channels * multiplier
    rng = np.random.default_rng(seed + 1)
    w = rng.standard_normal((kernel[0], kernel[1], out_c)).astype(np.float32)
    bias = rng.standard_normal(out_c).astype(np.float32) if with_bias else None
    want = np.zeros((batch, oh, ow, out_c), np.float64) + (0 if bias is None else bias)
    for ky, kx, view in _taps(x, kernel, stride, dilation, pads, oh, ow, 0.0):
        want += np.repeat(view, multiplier, axis=-1) * w[ky, kx].astype(np.float64)
    if relu:
        want = np.maximum(want, 0)
    out = np.full((batch, oh, ow, out_c), np.nan, np.float32)
    _core.float_depthwise2d(x, w, bias, stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[2],
                            relu, out, threads)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(**geometry, mode=st.sampled_from([0, 1, 2]))
def test_pool2d(isa, batch, height, width, channels, kernel, stride, dilation, pads, threads, seed, mode):
    s = _setup(batch, height, width, channels, kernel, stride, dilation, pads, seed)
    if s is None:
        return
    x, oh, ow = s
    if mode == 0:
        want = np.max([v for _, _, v in _taps(x, kernel, stride, dilation, pads, oh, ow, -np.inf)], axis=0)
    else:
        total = np.sum([v for _, _, v in _taps(x, kernel, stride, dilation, pads, oh, ow, 0.0)], axis=0)
        ones = np.ones_like(x[..., :1])
        count = kernel[0] * kernel[1] if mode == 1 else \
            np.sum([v for _, _, v in _taps(ones, kernel, stride, dilation, pads, oh, ow, 0.0)], axis=0)
        want = total / count
    out = np.full((batch, oh, ow, channels), np.nan, np.float32)
    _core.float_pool2d(x, mode, *_window_args(kernel, stride, dilation, pads), out, threads)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def _pool_want(x, mode):
    if mode == 0:
        return x.max(axis=(1, 2), keepdims=True)
    return x.astype(np.float64).mean(axis=(1, 2), keepdims=True)


@pytest.mark.parametrize("channels", [7, 16, 40, 300])
@pytest.mark.parametrize("height", [1, 4, 9, 13])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_global_pool(isa, channels, height, mode):
    """A window that is the whole image (an SE block's squeeze): rows are pooled in chunks of 4
    into partials combined in order, so every thread count gives the same bits."""
    x = np.random.default_rng(channels + height).standard_normal((2, height, 11, channels)).astype(np.float32)
    outs = []
    for threads in (1, 2, 3):
        out = np.full((2, 1, 1, channels), np.nan, np.float32)
        _core.float_pool2d(x, mode, height, 11, 1, 1, 1, 1, 0, 0, out, threads)
        outs.append(out)
    np.testing.assert_allclose(outs[0], _pool_want(x, mode), rtol=1e-5, atol=1e-6)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


@pytest.mark.parametrize("channels", [7, 16, 40, 256])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("mode", [0, 1])
def test_one_output_row_splits_channels(isa, channels, threads, mode):
    """One output row that is not a global pooling (a 9x11 window over a 9x12 image): the
    channels are split over the threads instead, in slices of whole cache lines."""
    x = np.random.default_rng(channels).standard_normal((1, 9, 12, channels)).astype(np.float32)
    out = np.full((1, 1, 2, channels), np.nan, np.float32)
    _core.float_pool2d(x, mode, 9, 11, 1, 1, 1, 1, 0, 0, out, threads)
    for ox in range(2):
        np.testing.assert_allclose(out[:, :, ox:ox + 1], _pool_want(x[:, :, ox:ox + 11], mode), rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 700), k=st.integers(1, 80), n=st.integers(1, 90), threads=st.sampled_from([1, 2, 3]),
       relu=st.booleans(), with_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gemm(m, k, n, threads, relu, with_bias, seed):
    """Row bands (and column blocks for few rows) cover C exactly once, bias and ReLU fused."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    want = a.astype(np.float64) @ b + (0 if bias is None else bias)
    if relu:
        want = np.maximum(want, 0)
    out = np.full((m, n), np.nan, np.float32)
    _core.float_gemm(a, b, bias, out, relu, threads)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4 * np.sqrt(k))


@settings(max_examples=60, deadline=None)
@given(**geometry, out_c=st.integers(1, 40), relu=st.booleans(), with_bias=st.booleans())
def test_conv_gemm(isa, batch, height, width, channels, kernel, stride, dilation, pads, threads, seed,
                   out_c, relu, with_bias):
    """im2col made band by band inside the GEMM: the same columns and product as the two-step form."""
    s = _setup(batch, height, width, channels, kernel, stride, dilation, pads, seed)
    if s is None:
        return
    x, oh, ow = s
    rng = np.random.default_rng(seed + 1)
    k = kernel[0] * kernel[1] * channels
    w = rng.standard_normal((k, out_c)).astype(np.float32)
    bias = rng.standard_normal(out_c).astype(np.float32) if with_bias else None
    cols = np.concatenate([v for _, _, v in _taps(x, kernel, stride, dilation, pads, oh, ow, 0.0)], axis=-1)
    want = cols.astype(np.float64) @ w + (0 if bias is None else bias)
    if relu:
        want = np.maximum(want, 0)
    got_cols = np.full(cols.shape, np.nan, np.float32)
    out = np.full((batch, oh, ow, out_c), np.nan, np.float32)
    _core.float_conv_gemm(x, w, bias, *_window_args(kernel, stride, dilation, pads), got_cols, out, relu, threads)
    np.testing.assert_array_equal(got_cols, cols)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4 * np.sqrt(k))


def _direct_conv(x, w, bias, kernel, stride, dilation, pads, relu, threads):
    """Runs float_direct_conv2d with HWIO ``w`` packed as the engine packs it."""
    from pocketbnn.engine.ops._backend import pack_direct_weights

    oh, ow = _out_hw(x.shape[1], x.shape[2], kernel, stride, dilation, pads)
    out = np.full((x.shape[0], oh, ow, w.shape[3]), np.nan, np.float32)
    _core.float_direct_conv2d(x, pack_direct_weights(w), bias, *_window_args(kernel, stride, dilation, pads),
                              relu, out, threads)
    return out


def _conv_reference(x, w, bias, kernel, stride, dilation, pads, relu):
    """float64 convolution through im2col columns (zero padding)."""
    oh, ow = _out_hw(x.shape[1], x.shape[2], kernel, stride, dilation, pads)
    cols = np.concatenate([v for _, _, v in _taps(x, kernel, stride, dilation, pads, oh, ow, 0.0)], axis=-1)
    want = cols.astype(np.float64) @ w.reshape(-1, w.shape[3]) + (0 if bias is None else bias)
    return np.maximum(want, 0) if relu else want


@settings(max_examples=120, deadline=None)
@given(batch=st.integers(1, 2), height=st.integers(1, 6), width=st.integers(1, 40), channels=st.integers(1, 12),
       kernel=st.tuples(st.integers(1, 7), st.integers(1, 7)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
       out_c=st.integers(1, 40), relu=st.booleans(), with_bias=st.booleans(), threads=st.sampled_from([1, 2, 3]),
       seed=st.integers(0, 2**32 - 1))
def test_direct_conv2d(isa, batch, height, width, channels, kernel, stride, dilation, pads, out_c, relu, with_bias,
                       threads, seed):
    """Rows wide enough for whole register tiles (up to 12 pixels) and their remainders, border
    pixels, windows partly or wholly in the padding, and output channels across 16-wide blocks."""
    oh, ow = _out_hw(height, width, kernel, stride, dilation, pads)
    if oh < 1 or ow < 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, height, width, channels)).astype(np.float32)
    w = rng.standard_normal((kernel[0], kernel[1], channels, out_c)).astype(np.float32)
    bias = rng.standard_normal(out_c).astype(np.float32) if with_bias else None
    want = _conv_reference(x, w, bias, kernel, stride, dilation, pads, relu)
    got = _direct_conv(x, w, bias, kernel, stride, dilation, pads, relu, threads)
    k = kernel[0] * kernel[1] * channels
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(k))


@pytest.mark.parametrize("size, channels, out_c, kernel, stride, pad", [
    (64, 3, 16, 3, 2, 1),    # QuickNet's stem (at 224: 112x112x16)
    (64, 3, 64, 7, 2, 3),    # Bi-Real / ResNet's stem
    (17, 64, 128, 1, 1, 0),  # a pointwise conv: all pixels one row of tiles
    (9, 40, 24, 3, 1, 1),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_direct_conv2d_layers(isa, size, channels, out_c, kernel, stride, pad, threads):
    rng = np.random.default_rng(size + channels)
    x = rng.standard_normal((2, size, size, channels)).astype(np.float32)
    w = rng.standard_normal((kernel, kernel, channels, out_c)).astype(np.float32)
    bias = rng.standard_normal(out_c).astype(np.float32)
    args = ((kernel, kernel), (stride, stride), (1, 1), (pad,) * 4)
    got = _direct_conv(x, w, bias, *args, relu=True, threads=threads)
    want = _conv_reference(x, w, bias, *args, relu=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(kernel * kernel * channels))


def test_direct_conv2d_errors():
    x = np.zeros((1, 8, 8, 3), np.float32)
    out = np.zeros((1, 8, 8, 20), np.float32)
    with pytest.raises(ValueError, match=r"weights must be packed as \(2, 27, 16\)"):
        _core.float_direct_conv2d(x, np.zeros((1, 27, 16), np.float32), None, 3, 3, 1, 1, 1, 1, 1, 1, False, out, 1)
    with pytest.raises(ValueError, match="one value per output channel"):
        _core.float_direct_conv2d(x, np.zeros((2, 27, 16), np.float32), np.zeros(16, np.float32), 3, 3, 1, 1, 1,
                                  1, 1, 1, False, out, 1)
    with pytest.raises(ValueError, match="num_threads"):
        _core.float_direct_conv2d(x, np.zeros((2, 27, 16), np.float32), None, 3, 3, 1, 1, 1, 1, 1, 1, False, out, 0)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("with_bias", [False, True])
def test_gemm_few_rows(m, threads, with_bias):
    """Up to 3 rows run as one sgemv per row, on column blocks with several threads."""
    rng = np.random.default_rng(m)
    k, n = 300, 1000
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    want = a.astype(np.float64) @ b + (0 if bias is None else bias)
    out = np.full((m, n), np.nan, np.float32)
    _core.float_gemm(a, b, bias, out, False, threads)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4 * np.sqrt(k))


def test_gemm_rejects_bad_shapes():
    a, b, out = np.ones((4, 3), np.float32), np.ones((3, 5), np.float32), np.empty((4, 5), np.float32)
    with pytest.raises(ValueError, match="b must be 2-D"):
        _core.float_gemm(a, np.ones((2, 5), np.float32), None, out, False, 1)
    with pytest.raises(ValueError, match="out must hold 4 rows of 5"):
        _core.float_gemm(a, b, None, np.empty((4, 6), np.float32), False, 1)
    with pytest.raises(ValueError, match="bias"):
        _core.float_gemm(a, b, np.ones(4, np.float32), out, False, 1)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 300), channels=st.integers(1, 70), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1), clamp=st.booleans(), addend=st.booleans(), num_stages=st.sampled_from([1, 2]))
def test_channel_affine(isa, rows, channels, threads, seed, clamp, addend, num_stages):
    """x (+ addend), then 1 or 2 stages z*scale + shift, (z >= 0 ? pos : neg) * z + post, clamp."""
    rng = np.random.default_rng(seed)
    x, x2 = rng.standard_normal((2, rows, channels)).astype(np.float32)
    stages = []
    want = x.astype(np.float64) + (x2 if addend else 0)
    for k in range(num_stages):
        scale, shift, pos, neg, post = rng.standard_normal((5, channels)).astype(np.float32)
        lo, hi = (-0.5, 0.7) if clamp and k == 0 else (-np.inf, np.inf)
        stages.append((scale, shift, pos, neg, post, lo, hi))
        z = want * scale + shift
        want = np.clip(np.where(z >= 0, pos, neg) * z + post, lo, hi)
    out = np.empty_like(x)
    epilogue = _core.ChannelEpilogue(stages)
    _core.float_channel_affine(x, x2 if addend else None, epilogue, out, threads)
    # Near z = 0 a rounding may pick the other slope of the first stage; the error stays tiny.
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)
    _core.float_channel_affine(x, x2 if addend else None, epilogue, x, threads)  # in place
    np.testing.assert_array_equal(x, out)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 3), pixels=st.integers(1, 40), channels=st.integers(1, 70),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**32 - 1), linear=st.booleans(),
       clamp=st.booleans())
def test_channel_affine_per_image_stages(isa, batch, pixels, channels, threads, seed, linear, clamp):
    """A stage vector of shape (N, C) applies row n to image n. A linear second stage without
    clamps (pos = neg: an SE gate, then BatchNorm) is composed with the first into one stage
    per image; the result is the same map up to rounding."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, pixels, 1, channels)).astype(np.float32)
    p1 = rng.standard_normal((5, channels)).astype(np.float32)
    gate = rng.uniform(0, 1, (batch, channels)).astype(np.float32)
    shift2, slope, post2 = rng.standard_normal((3, channels)).astype(np.float32)
    neg2 = slope if linear else rng.standard_normal(channels).astype(np.float32)
    lo, hi = (-0.5, 0.7) if clamp else (-np.inf, np.inf)
    stages = [tuple(p1) + (-np.inf, np.inf), (gate, shift2, slope, neg2, post2, lo, hi)]
    z = x.astype(np.float64) * p1[0] + p1[1]
    z = np.where(z >= 0, p1[2], p1[3]) * z + p1[4]
    z = z * gate[:, None, None, :] + shift2
    want = np.clip(np.where(z >= 0, slope, neg2) * z + post2, lo, hi)
    out = np.empty_like(x)
    _core.float_channel_affine(x, None, _core.ChannelEpilogue(stages), out, threads)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)


def test_channel_affine_rejects_bad_arguments():
    x = np.ones((4, 3), np.float32)
    v = np.ones(3, np.float32)
    stage = (v, v, v, v, v, -np.inf, np.inf)
    with pytest.raises(ValueError, match="1 or 2 stages"):
        _core.ChannelEpilogue([])
    with pytest.raises(ValueError, match="1 or 2 stages"):
        _core.ChannelEpilogue([stage] * 3)
    with pytest.raises(ValueError, match="disagree on the channel count"):
        _core.ChannelEpilogue([(v, v, v, v, np.ones(2, np.float32), 0.0, 1.0)])
    with pytest.raises(ValueError, match="disagree on the image count"):
        _core.ChannelEpilogue([(v[None], np.ones((2, 3), np.float32), v, v, v, 0.0, 1.0)])
    with pytest.raises(ValueError, match="lo <= hi"):
        _core.ChannelEpilogue([(v, v, v, v, v, 1.0, 0.0)])
    with pytest.raises(ValueError, match="addend must have the shape of x"):
        _core.float_channel_affine(x, np.ones((4, 2), np.float32), _core.ChannelEpilogue([stage]), np.empty_like(x), 1)
    with pytest.raises(ValueError, match="vectors for 3 channels, the map has 2"):
        _core.float_channel_affine(np.ones((4, 2), np.float32), None, _core.ChannelEpilogue([stage]),
                                   np.empty((4, 2), np.float32), 1)
    with pytest.raises(ValueError, match="per-image vectors for 2 images, the batch is 4"):
        per_image = (np.ones((2, 3), np.float32), v, v, v, v, -np.inf, np.inf)
        _core.float_channel_affine(x, None, _core.ChannelEpilogue([per_image]), np.empty_like(x), 1)


@pytest.mark.parametrize("size", [1, 7, 4096, 70001])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_add(isa, size, relu, threads):
    rng = np.random.default_rng(size)
    a, b = rng.standard_normal((2, size)).astype(np.float32)
    want = np.maximum(a + b, 0) if relu else a + b
    out = np.empty_like(a)
    _core.float_add(a, b, out, relu, threads)
    np.testing.assert_array_equal(out, want)
    _core.float_add(a, b, a, relu, threads)  # in place
    np.testing.assert_array_equal(a, want)


def _channel_map_reference(x, kind, out_channels):
    c = x.shape[-1]
    if kind == "tile":
        return np.concatenate([x] * -(-out_channels // c), axis=-1)[..., :out_channels]
    if kind == "zeropad":
        return np.concatenate([x, np.zeros(x.shape[:-1] + (out_channels - c,), x.dtype)], axis=-1)
    k = c // out_channels
    return x[..., :k * out_channels].reshape(x.shape[:-1] + (out_channels, k)).astype(np.float64).mean(-1)


_CHANNEL_MAPS = {"tile": 0, "zeropad": 1, "avg": 2}


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 300), channels=st.integers(1, 70), out_channels=st.integers(1, 140),
       kind=st.sampled_from(sorted(_CHANNEL_MAPS)), threads=st.sampled_from([1, 2]),
       residual=st.sampled_from(["none", "separate", "in place"]), seed=st.integers(0, 2**32 - 1))
def test_channel_map(isa, rows, channels, out_channels, kind, threads, residual, seed):
    if kind == "zeropad" and out_channels < channels or kind == "avg" and out_channels > channels:
        out_channels, channels = channels, out_channels
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 1, channels)).astype(np.float32)
    res = rng.standard_normal((rows, 1, out_channels)).astype(np.float32) if residual != "none" else None
    want = _channel_map_reference(x, kind, out_channels)
    if res is not None:
        want = want.astype(np.float32) + res  # one float32 add, as the fused kernel does
    out = res if residual == "in place" else np.full((rows, 1, out_channels), np.nan, np.float32)
    _core.float_channel_map(x, _CHANNEL_MAPS[kind], res, out, threads)
    if kind == "avg":
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("kind, channels, out_channels", [("avg", 16, 16), ("avg", 256, 128), ("avg", 96, 24),
                                                          ("avg", 50, 7), ("tile", 64, 256), ("tile", 8, 3),
                                                          ("zeropad", 64, 256), ("zeropad", 5, 5)])
def test_channel_map_layer_shapes(isa, kind, channels, out_channels):
    """The shapes of PokeBNN's shortcuts, on an image large enough to run on two threads."""
    x = np.random.default_rng(channels).standard_normal((1, 28, 28, channels)).astype(np.float32)
    out = np.empty((1, 28, 28, out_channels), np.float32)
    _core.float_channel_map(x, _CHANNEL_MAPS[kind], None, out, 2)
    np.testing.assert_allclose(out, _channel_map_reference(x, kind, out_channels), rtol=1e-6, atol=1e-6)


def test_channel_map_errors():
    x = np.zeros((2, 3, 8), np.float32)
    out = np.zeros((2, 3, 8), np.float32)
    with pytest.raises(ValueError, match="zero-padding"):
        _core.float_channel_map(x, 1, None, np.zeros((2, 3, 4), np.float32), 1)
    with pytest.raises(ValueError, match="averaging"):
        _core.float_channel_map(x, 2, None, np.zeros((2, 3, 9), np.float32), 1)
    with pytest.raises(ValueError, match="every axis but the last"):
        _core.float_channel_map(x, 0, None, np.zeros((3, 2, 8), np.float32), 1)
    with pytest.raises(ValueError, match="map must be"):
        _core.float_channel_map(x, 3, None, out, 1)
    with pytest.raises(ValueError, match="residual must have the shape of out"):
        _core.float_channel_map(x, 0, np.zeros((2, 3, 7), np.float32), out, 1)
    with pytest.raises(ValueError, match="must not overlap"):
        _core.float_channel_map(x, 0, None, x, 1)


def test_shape_errors():
    x = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        _core.float_pool2d(x, 0, 2, 2, 2, 2, 1, 1, 0, 0, np.zeros((1, 2, 2, 4), np.float32), 1)
    with pytest.raises(ValueError, match="channel multiplier"):
        _core.float_depthwise2d(x, np.zeros((3, 3, 4), np.float32), None, 1, 1, 1, 1, 1, 1, False,
                                np.zeros((1, 4, 4, 4), np.float32), 1)
    with pytest.raises(ValueError, match=r"out must have shape \(1, out_h, out_w, 6\)"):
        _core.float_depthwise2d(x, np.zeros((3, 3, 6), np.float32), None, 1, 1, 1, 1, 1, 1, False,
                                np.zeros((1, 4, 4, 3), np.float32), 1)
    with pytest.raises(ValueError, match="same size"):
        _core.float_add(x, x[..., :2].copy(), x, False, 1)


def _gemv_codes(codes):
    k, n = codes.shape
    blocks = -(-n // 32)
    flat = np.zeros((k, blocks * 32), np.int8)
    flat[:, :n] = codes
    return np.ascontiguousarray(flat.reshape(k, blocks, 32).transpose(1, 0, 2))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 9), k=st.integers(1, 300), n=st.integers(1, 100), threads=st.sampled_from([1, 2]),
       bias=st.booleans(), relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gemv_i8(isa, rows, k, n, threads, bias, relu, seed):
    """y = (x q) * scale + bias (then ReLU) with int8 codes in blocks of 32 columns, against
    float64; any rows (4 at a time), k and n (partial last block)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-128, 128, (k, n)).astype(np.int8)
    scale = rng.uniform(1e-3, 1e-1, n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    x = rng.standard_normal((rows, k)).astype(np.float32)
    out = np.full((rows, n), np.nan, np.float32)
    _core.float_gemv_i8(x, _gemv_codes(codes), scale, b, out, relu, threads)
    want = (x.astype(np.float64) @ codes) * scale + (0 if b is None else b)
    want = np.maximum(want, 0) if relu else want
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4 * np.sqrt(k))


def test_gemv_i8_rejects_bad_shapes():
    x, scale, out = np.ones((2, 40), np.float32), np.ones(33, np.float32), np.empty((2, 33), np.float32)
    codes = _gemv_codes(np.ones((40, 33), np.int8))
    with pytest.raises(ValueError, match=r"codes must be \(2, 40, 32\)"):
        _core.float_gemv_i8(x, codes[:1], scale, None, out, False, 1)
    with pytest.raises(ValueError, match="x must be 2-D"):
        _core.float_gemv_i8(x[None], codes, scale, None, out, False, 1)
    with pytest.raises(ValueError, match=r"out must be \(2, 33\)"):
        _core.float_gemv_i8(x, codes, scale, None, np.empty((2, 32), np.float32), False, 1)
    with pytest.raises(ValueError, match="bias"):
        _core.float_gemv_i8(x, codes, scale, np.ones(3, np.float32), out, False, 1)
