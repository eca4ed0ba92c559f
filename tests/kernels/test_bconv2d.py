"""Binary convolution: every ISA path against the reference kernel and a float64 conv on +-1 data."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pocketbnn import kernels
from references import conv2d_pm1_numpy, pack_bits_numpy

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def random_signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    in_c = draw(st.integers(1, 200)) if groups == 1 else groups * 64 * draw(st.integers(1, 2))
    out_c = groups * draw(st.integers(1, 80 if groups == 1 else 12))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    lo_h = (kh - 1) * dilation[0] + 1 if padding == "valid" else 1
    lo_w = (kw - 1) * dilation[1] + 1 if padding == "valid" else 1
    return dict(
        batch=draw(st.integers(1, 2)), height=draw(st.integers(lo_h, lo_h + 9)),
        width=draw(st.integers(lo_w, lo_w + 9)), in_c=in_c, out_c=out_c, kernel=(kh, kw),
        stride=stride, dilation=dilation, padding=padding, pad_value=draw(st.sampled_from([0, 1])),
        groups=groups, num_threads=draw(st.sampled_from([1, 2, 3])),
    )


def make_case(cfg, seed):
    rng = np.random.default_rng(seed)
    x = random_signs(rng, (cfg["batch"], cfg["height"], cfg["width"], cfg["in_c"]))
    w = random_signs(rng, (cfg["out_c"], *cfg["kernel"], cfg["in_c"] // cfg["groups"]))
    dot = conv2d_pm1_numpy(x, w, cfg["stride"], cfg["dilation"], cfg["padding"],
                           float(cfg["pad_value"]), cfg["groups"])
    return rng, x, w, dot


def run(cfg, x, w, **kwargs):
    return kernels.bconv2d(
        kernels.pack_bits(x), kernels.pack_bits(w), cfg["in_c"], stride=cfg["stride"],
        dilation=cfg["dilation"], padding=cfg["padding"], pad_value=cfg["pad_value"],
        groups=cfg["groups"], num_threads=cfg["num_threads"], **kwargs)


def run_reference(cfg, x, w, **kwargs):
    with kernels.use_isa("reference"):
        return run(cfg, x, w, **kwargs)


A_LIKE = dict(batch=1, height=9, width=9, in_c=64, out_c=64, kernel=(3, 3), stride=(1, 1),
              dilation=(1, 1), padding="same", pad_value=1, groups=1, num_threads=1)


# Each example costs milliseconds, so these run more than the profile's default.
MANY = settings(max_examples=150)


@MANY
@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1))
@example(cfg=A_LIKE, seed=0).via("one full 4x32 tile family, +1 padding")
@example(cfg={**A_LIKE, "in_c": 65, "out_c": 33, "pad_value": 0}, seed=1).via("word + 1, zero padding")
@example(cfg={**A_LIKE, "in_c": 128, "out_c": 6, "groups": 2, "num_threads": 2}, seed=2).via("groups")
@example(cfg={**A_LIKE, "height": 26, "width": 26, "out_c": 72}, seed=3).via(
    "runs of direct and indirect tiles, 32-tile blocks, pixel and channel remainders")
@example(cfg={**A_LIKE, "batch": 2, "height": 14, "width": 14, "padding": "valid", "num_threads": 2},
         seed=4).via("VALID 12-wide rows: direct runs across rows and images, 2 threads")
@example(cfg={**A_LIKE, "height": 7, "width": 7, "in_c": 256, "out_c": 256, "num_threads": 2},
         seed=5).via("layer D: 49 pixels, a one-pixel tile, 2 threads")
@example(cfg={**A_LIKE, "in_c": 200, "out_c": 20, "pad_value": 0}, seed=6).via(
    "36 k-steps: AVX2's byte counts summed after 31 steps and again after 5, zero padding")
@example(cfg={**A_LIKE, "in_c": 512, "out_c": 16, "groups": 2, "kernel": (5, 5)}, seed=7).via(
    "AVX2's byte counts over groups: 100 k-steps per group, 4 lane sums")
@example(cfg={**A_LIKE, "height": 2, "width": 3, "in_c": 200, "out_c": 44, "kernel": (5, 5), "pad_value": 0},
         seed=8).via("6 pixels: AVX2's few-pixel tiles on whole words, 100 k-steps, zero padding")
@example(cfg={**A_LIKE, "height": 2, "width": 2, "in_c": 128, "out_c": 6, "groups": 2, "num_threads": 2},
         seed=9).via("4 pixels, groups, 2 threads")
def test_integer_dot_is_exact(isa, cfg, seed):
    """With multiplier 1 and bias 0 the float output is the integer dot product, exactly."""
    _, x, w, dot = make_case(cfg, seed)
    y = run(cfg, x, w)
    np.testing.assert_array_equal(y, dot.astype(np.float32))
    np.testing.assert_array_equal(y, run_reference(cfg, x, w))


@MANY
@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1), clamped=st.booleans())
def test_float_output_transform(isa, cfg, seed, clamped):
    """y = clamp(dot, lo, hi) * multiplier + bias, within float32 rounding."""
    rng, x, w, dot = make_case(cfg, seed)
    m = rng.standard_normal(cfg["out_c"]).astype(np.float32)
    b = (4 * rng.standard_normal(cfg["out_c"])).astype(np.float32)
    clamp = tuple(sorted(rng.integers(-20, 20, size=2).tolist())) if clamped else None
    y = run(cfg, x, w, multiplier=m, bias=b, clamp=clamp)
    d = dot if clamp is None else np.clip(dot, *clamp)
    expected = d * m.astype(np.float64) + b
    k = np.prod(cfg["kernel"]) * cfg["in_c"] // cfg["groups"]
    tol = 8 * np.finfo(np.float32).eps * (k * np.abs(m).max() + np.abs(b).max())
    np.testing.assert_allclose(y, expected, rtol=0, atol=tol)
    np.testing.assert_allclose(y, run_reference(cfg, x, w, multiplier=m, bias=b, clamp=clamp),
                               rtol=0, atol=tol)


@MANY
@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1), clamped=st.booleans(), in_place=st.booleans())
def test_residual_is_added_to_the_float_output(isa, cfg, seed, clamped, in_place):
    """residual r: y = clamp(dot) * m + b + r, every form (folded, clamped, zero-padding literal),
    also when r is the output buffer itself; the reference agrees."""
    rng, x, w, dot = make_case(cfg, seed)
    m = rng.standard_normal(cfg["out_c"]).astype(np.float32)
    b = rng.standard_normal(cfg["out_c"]).astype(np.float32)
    r = (8 * rng.standard_normal(dot.shape)).astype(np.float32)
    clamp = (0, 2**31 - 1) if clamped else None
    out = r.copy() if in_place else None
    y = run(cfg, x, w, multiplier=m, bias=b, clamp=clamp, residual=out if in_place else r, out=out)
    d = dot if clamp is None else np.clip(dot, *clamp)
    expected = d * m.astype(np.float64) + b + r
    k = np.prod(cfg["kernel"]) * cfg["in_c"] // cfg["groups"]
    tol = 8 * np.finfo(np.float32).eps * (k * np.abs(m).max() + np.abs(b).max() + np.abs(r).max())
    np.testing.assert_allclose(y, expected, rtol=0, atol=tol)
    np.testing.assert_allclose(y, run_reference(cfg, x, w, multiplier=m, bias=b, clamp=clamp, residual=r),
                               rtol=0, atol=tol)


@settings(max_examples=40)
@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1))
def test_relu_clamped_values_are_exactly_the_bias(isa, cfg, seed):
    """A fused ReLU (clamp lo = 0) writes exactly 0 * m + b = b where the dot is <= 0, even
    when |K m| dwarfs |b| (a folded affine map would round b away there)."""
    rng, x, w, dot = make_case(cfg, seed)
    m = (1e4 * rng.standard_normal(cfg["out_c"])).astype(np.float32)
    b = (1e-3 * rng.standard_normal(cfg["out_c"])).astype(np.float32)
    y = run(cfg, x, w, multiplier=m, bias=b, clamp=(0, 2**31 - 1))
    clamped = dot <= 0
    np.testing.assert_array_equal(y[clamped], np.broadcast_to(b, y.shape)[clamped])
    k = np.prod(cfg["kernel"]) * cfg["in_c"] // cfg["groups"]
    expected = np.maximum(dot, 0) * m.astype(np.float64) + b
    np.testing.assert_allclose(y, expected, rtol=0, atol=4 * np.finfo(np.float32).eps * k * np.abs(m).max())


@MANY
@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1), clamped=st.booleans())
def test_bit_output_is_sign_of_float_output(isa, cfg, seed, clamped):
    """Thresholds from bitpacked_output_params give bit = [y < 0] exactly, negative and zero
    multipliers included; the reference kernel agrees bit for bit."""
    rng, x, w, dot = make_case(cfg, seed)
    c = cfg["out_c"]
    m = rng.standard_normal(c).astype(np.float32)
    m[rng.random(c) < 0.1] = 0.0
    # Biases on the integer grid of m hit y == 0 exactly, the tie the threshold must get right.
    b = np.where(rng.random(c) < 0.5, np.round(rng.normal(0, 8, c)) * m,
                 rng.normal(0, 8, c)).astype(np.float32)
    clamp = tuple(sorted(rng.integers(-10, 10, size=2).tolist())) if clamped else None
    wp, thresholds = kernels.bitpacked_output_params(
        kernels.pack_bits(w), cfg["in_c"], m, b, clamp=clamp, groups=cfg["groups"])
    kwargs = dict(stride=cfg["stride"], dilation=cfg["dilation"], padding=cfg["padding"],
                  pad_value=cfg["pad_value"], groups=cfg["groups"], thresholds=thresholds,
                  num_threads=cfg["num_threads"])
    bits = kernels.bconv2d(kernels.pack_bits(x), wp, cfg["in_c"], **kwargs)
    d = dot if clamp is None else np.clip(dot, *clamp)
    y = d * m.astype(np.float64) + b.astype(np.float64)
    np.testing.assert_array_equal(bits, pack_bits_numpy(y))
    with kernels.use_isa("reference"):
        np.testing.assert_array_equal(bits, kernels.bconv2d(kernels.pack_bits(x), wp, cfg["in_c"], **kwargs))


@given(batch=st.integers(1, 20), in_f=st.integers(1, 300), out_f=st.integers(1, 150),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**32 - 1))
@example(batch=1, in_f=512, out_f=130, threads=2, seed=0).via("batch 1: split by channels")
def test_bdense_is_matmul_of_signs(isa, batch, in_f, out_f, threads, seed):
    rng = np.random.default_rng(seed)
    x, w = random_signs(rng, (batch, in_f)), random_signs(rng, (out_f, in_f))
    bias = rng.standard_normal(out_f).astype(np.float32)
    y = kernels.bdense(kernels.pack_bits(x), kernels.pack_bits(w), in_f, bias=bias, num_threads=threads)
    np.testing.assert_allclose(y, x.astype(np.float64) @ w.T + bias, rtol=0, atol=1e-4 * in_f)
    wp, t = kernels.bitpacked_output_params(kernels.pack_bits(w)[:, None, None, :], in_f,
                                            np.ones(out_f, np.float32), bias)
    bits = kernels.bdense(kernels.pack_bits(x), wp[:, 0, 0, :], in_f, thresholds=t, num_threads=threads)
    np.testing.assert_array_equal(bits, pack_bits_numpy(x.astype(np.float64) @ w.T + bias))


def test_prepared_weights_give_the_same_result(isa):
    rng = np.random.default_rng(7)
    x, w = random_signs(rng, (2, 6, 5, 100)), random_signs(rng, (20, 3, 3, 100))
    prepared = kernels.BconvWeights(kernels.pack_bits(w), 100)
    assert prepared.out_channels == 20 and prepared.kernel_size == (3, 3)
    y1 = kernels.bconv2d(kernels.pack_bits(x), prepared, padding="same")
    y2 = kernels.bconv2d(kernels.pack_bits(x), kernels.pack_bits(w), 100, padding="same")
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("packed_under", ["portable", "avx2"])
def test_weights_packed_under_any_isa_run_under_every_isa(isa, packed_under):
    """Weights packed while the AVX2 kernel is active carry a nibble split for it; packed under
    another ISA they do not, and the AVX2 kernel splits them per call. Either way every ISA
    gives the reference result."""
    if packed_under not in kernels.available_isas():
        pytest.skip(f"this CPU lacks {packed_under}")
    rng = np.random.default_rng(8)
    x, w = random_signs(rng, (1, 7, 6, 130)), random_signs(rng, (19, 3, 3, 130))
    with kernels.use_isa(packed_under):
        prepared = kernels.BconvWeights(kernels.pack_bits(w), 130)
    with kernels.use_isa("reference"):
        want = kernels.bconv2d(kernels.pack_bits(x), kernels.pack_bits(w), 130, padding="same")
    np.testing.assert_array_equal(kernels.bconv2d(kernels.pack_bits(x), prepared, padding="same"), want)


class TestBitpackedOutputParams:
    def test_thresholds_by_hand(self):
        w = np.zeros((5, 1, 1, 1), np.uint64)
        m = np.array([2.0, 0.5, 0.0, 0.0, 1.0], np.float32)
        b = np.array([3.0, -1.0, -1.0, 1.0, 4.0], np.float32)
        _, t = kernels.bitpacked_output_params(w, 64, m, b)
        # 2d + 3 < 0 <=> d < -1.5 <=> d < -1;  0.5d - 1 < 0 <=> d < 2;  m = 0: constant sign of b;
        # d + 4 < 0 <=> d < -4 (y = 0 at d = -4 is not negative).
        assert t.tolist() == [-1, 2, INT32_MAX, INT32_MIN, -4]

    def test_clamp_can_make_bits_constant(self):
        w = np.zeros((2, 1, 1, 1), np.uint64)
        m = np.array([1.0, 1.0], np.float32)
        b = np.array([-100.0, 100.0], np.float32)  # y < 0 needs d < 100; never d < -100
        _, t = kernels.bitpacked_output_params(w, 64, m, b, clamp=(-6, 6))
        assert t.tolist() == [INT32_MAX, INT32_MIN]

    def test_negative_multiplier_flips_only_real_channel_bits(self):
        w = np.array([[[[0b1010, 0]]], [[[0b1010, 0]]]], np.uint64)  # 70 channels: 2 words
        m = np.array([-1.0, 1.0], np.float32)
        flipped, t = kernels.bitpacked_output_params(w, 70, m, np.array([0.5, 0.5], np.float32))
        assert flipped[0, 0, 0].tolist() == [(2**64 - 1) ^ 0b1010, 2**6 - 1]
        assert flipped[1].tolist() == w[1].tolist()
        # -d + 0.5 < 0 <=> d' = -d < -0.5 <=> d' < 0;  d + 0.5 < 0 <=> d < 0
        assert t.tolist() == [0, 0]


W = np.zeros((8, 3, 3, 1), np.uint64)
X = np.zeros((1, 6, 6, 1), np.uint64)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: kernels.bconv2d(X.astype(np.int64), W, 64), TypeError, "x must be uint64"),
        (lambda: kernels.bconv2d(X, W.astype(np.float32), 64), TypeError, "weights must be uint64"),
        (lambda: kernels.bconv2d(X[0], W, 64), ValueError, "4 axes"),
        (lambda: kernels.bconv2d(np.zeros((1, 6, 6, 2), np.uint64)[..., :1], W, 64), ValueError, "C-contiguous"),
        (lambda: kernels.bconv2d([[1]], W, 64), TypeError, "numpy array"),
        (lambda: kernels.bconv2d(X, W, 65), ValueError, "words per tap"),
        (lambda: kernels.bconv2d(np.zeros((1, 6, 6, 2), np.uint64), W, 64), ValueError, "words per pixel"),
        (lambda: kernels.bconv2d(X, W, None), ValueError, "in_channels is required"),
        (lambda: kernels.bconv2d(X, np.zeros((8, 3, 3, 1), np.uint64), 64, groups=2), ValueError,
         "multiple of 64"),
        (lambda: kernels.bconv2d(np.zeros((1, 6, 6, 2), np.uint64), np.zeros((9, 3, 3, 1), np.uint64), 128,
                                 groups=2), ValueError, "not divisible by groups"),
        (lambda: kernels.bconv2d(X, W, 64, groups=0), ValueError, "groups"),
        (lambda: kernels.bconv2d(X, W, 64, stride=0), ValueError, "stride"),
        (lambda: kernels.bconv2d(X, W, 64, dilation=(1, 2, 3)), ValueError, "dilation"),
        (lambda: kernels.bconv2d(X, W, 64, padding="full"), ValueError, "'valid' or 'same'"),
        (lambda: kernels.bconv2d(X, W, 64, pad_value=-1), ValueError, "pad_value"),
        (lambda: kernels.bconv2d(X[:, :2], W, 64), ValueError, "VALID padding gives no output"),
        (lambda: kernels.bconv2d(X, W, 64, multiplier=np.ones(7)), ValueError, r"multiplier must have shape \(8,\)"),
        (lambda: kernels.bconv2d(X, W, 64, thresholds=np.zeros(3)), ValueError, "thresholds must have shape"),
        (lambda: kernels.bconv2d(X, W, 64, thresholds=np.zeros(8), bias=np.zeros(8)), ValueError,
         "bitpacked_output_params"),
        (lambda: kernels.bconv2d(X, W, 64, clamp=(3, 1)), ValueError, "clamp"),
        (lambda: kernels.bconv2d(X, W, 64, residual=np.zeros((1, 4, 4, 7), np.float32)), ValueError,
         r"residual has shape \(1, 4, 4, 7\); the output has \(1, 4, 4, 8\)"),
        (lambda: kernels.bconv2d(X, W, 64, residual=np.zeros((1, 4, 4, 8))), TypeError, "residual must be float32"),
        (lambda: kernels.bconv2d(X, W, 64, thresholds=np.zeros(8), residual=np.zeros((1, 4, 4, 8), np.float32)),
         ValueError, "residual and epilogue need float output"),
        (lambda: kernels.bconv2d(X, W, 64, num_threads=0), ValueError, "num_threads"),
        (lambda: kernels.bdense(np.zeros((2, 2), np.uint64), np.zeros((3, 1), np.uint64), 64), ValueError,
         "words per pixel"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _mapped(r, residual_map, out_c):
    """The residual as the output stage adds it: tiled along channels, or zero-padded."""
    if residual_map == "tile":
        return np.tile(r, (1, 1, 1, -(-out_c // r.shape[-1])))[..., :out_c]
    return np.pad(r, [(0, 0)] * 3 + [(0, out_c - r.shape[-1])])


@pytest.mark.parametrize("residual_map", ["tile", "zeropad"])
@pytest.mark.parametrize("res_c, out_c", [(64, 64), (64, 200), (128, 256), (64, 130)])
@pytest.mark.parametrize("size, threads", [(1, 1), (2, 2), (9, 1), (9, 3)])
@pytest.mark.parametrize("pad_value, clamp", [(1, None), (0, None), (1, (-3, 1000))])
def test_mapped_residual_is_added_like_a_separate_add(isa, residual_map, res_c, out_c, size, threads,
                                                      pad_value, clamp):
    """A residual of fewer channels, tiled or zero-padded onto the output's (PokeBNN's shortcuts),
    gives exactly the plain output plus the mapped residual, on every path (few-pixel tiles
    included) and in every float form."""
    rng = np.random.default_rng(res_c + out_c + size)
    x, w = random_signs(rng, (1, size, size + 1, 70)), random_signs(rng, (out_c, 3, 3, 70))
    kwargs = dict(padding="same", pad_value=pad_value, clamp=clamp, num_threads=threads,
                  multiplier=rng.uniform(-1.5, 1.5, out_c).astype(np.float32),
                  bias=rng.standard_normal(out_c).astype(np.float32))
    xp, wp = kernels.pack_bits(x), kernels.pack_bits(w)
    plain = kernels.bconv2d(xp, wp, 70, **kwargs)
    r = rng.standard_normal(plain.shape[:3] + (res_c,)).astype(np.float32)
    got = kernels.bconv2d(xp, wp, 70, residual=r, residual_map=residual_map, **kwargs)
    np.testing.assert_array_equal(got, plain + _mapped(r, residual_map, out_c))
    with kernels.use_isa("reference"):  # its output stage rounds as written, the ISAs' may fuse
        want = kernels.bconv2d(xp, wp, 70, residual=r, residual_map=residual_map, **kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(residual=np.zeros((1, 4, 4, 32), np.float32), residual_map="tile"), "multiple of 64"),
        (dict(residual=np.zeros((1, 4, 4, 128), np.float32), residual_map="zeropad"), "at most the output's"),
        (dict(residual=np.zeros((1, 4, 3, 64), np.float32), residual_map="tile"), "batch, height and width"),
        (dict(residual=np.zeros((1, 4, 4, 64), np.float32), residual_map="repeat"), "residual_map must be"),
    ],
)
def test_mapped_residual_rejects_bad_arguments(kwargs, match):
    w = np.zeros((96, 3, 3, 1), np.uint64)
    with pytest.raises(ValueError, match=match):
        kernels.bconv2d(np.zeros((1, 6, 6, 1), np.uint64), w, 64, **kwargs)


def test_mapped_residual_needs_one_group_and_no_overlap_with_out():
    x, r = np.zeros((1, 4, 4, 2), np.uint64), np.zeros((1, 4, 4, 64), np.float32)
    with pytest.raises(ValueError, match="groups == 1"):
        kernels.bconv2d(x, np.zeros((128, 1, 1, 1), np.uint64), 128, groups=2, residual=r, residual_map="tile")
    conv = kernels.Bconv2d(np.zeros((128, 1, 1, 2), np.uint64), x.shape, 128)
    out = np.zeros(conv.output_shape, np.float32)
    with pytest.raises(ValueError, match="must not overlap out"):
        conv(x, residual=out.reshape(-1)[:4 * 4 * 64].reshape(1, 4, 4, 64), residual_map="tile", out=out)


def _epilogue_reference(y, stages, addend=None):
    """ChannelEpilogue's definition in float64: y (+ addend), then each stage; (N, C) vectors
    per image."""
    z = y.astype(np.float64) + (0 if addend is None else addend)
    for s in stages:
        scale, shift, pos, neg, post = (v[:, None, None, :] if v.ndim == 2 else v for v in s[:5])
        z = z * scale + shift
        z = np.clip(np.where(z >= 0, pos, neg) * z + post, s.lo, s.hi)
    return z


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 3), size=st.integers(1, 11), in_c=st.sampled_from([64, 70, 130]),
       out_c=st.sampled_from([8, 64, 70, 200]), kernel=st.sampled_from([1, 3]), threads=st.sampled_from([1, 2, 3]),
       residual=st.sampled_from([None, "same", "tile", "zeropad"]), addend=st.booleans(),
       addend_map=st.sampled_from([None, "tile", "zeropad"]), addend_c=st.integers(1, 200),
       gate=st.booleans(), linear=st.booleans(), clamp=st.booleans(), seed=st.integers(0, 2**32 - 1))
@example(batch=1, size=2, in_c=64, out_c=64, kernel=1, threads=1, residual="zeropad", addend=True, addend_map=None,
         addend_c=64, gate=True, linear=True, clamp=False, seed=0)  # few-pixel tiles, PokeBNN's composed gate stage
@example(batch=2, size=9, in_c=64, out_c=200, kernel=1, threads=3, residual="zeropad", addend=True, addend_map="tile",
         addend_c=64, gate=True, linear=True, clamp=False, seed=1)  # PokeBNN's downsampling conv3, split channels
def test_epilogue_is_the_channel_pass_after_the_output(isa, batch, size, in_c, out_c, kernel, threads, residual,
                                                       addend, addend_map, addend_c, gate, linear, clamp, seed):
    """A conv's epilogue (addend, tiled or zero-padded onto the output channels or not, then 1
    or 2 per-channel stages, an SE gate's per-image stage among them) gives the plain output
    with the stages applied after, on every path and thread count; the kernel runs it on each
    block it writes, so every block must be covered once."""
    rng = np.random.default_rng(seed)
    if residual in ("tile", "zeropad") and out_c < 64:
        residual = "same"
    x, w = random_signs(rng, (batch, size, size + 2, in_c)), random_signs(rng, (out_c, kernel, kernel, in_c))
    xp = kernels.pack_bits(x)
    conv = kernels.Bconv2d(kernels.pack_bits(w), xp.shape, in_c, padding="same", num_threads=threads,
                           multiplier=rng.uniform(-1.5, 1.5, out_c).astype(np.float32),
                           bias=rng.standard_normal(out_c).astype(np.float32))
    shape = conv.output_shape
    r = None if residual is None else rng.standard_normal(shape[:3] + ((out_c,) if residual == "same" else (64,)))
    r = None if r is None else r.astype(np.float32)
    addend_c = out_c if addend_map is None else min(addend_c, out_c)
    a = rng.standard_normal(shape[:3] + (addend_c,)).astype(np.float32) if addend else None
    vectors = rng.standard_normal((8, out_c)).astype(np.float32)
    first = kernels.ChannelStage(*vectors[:5])
    scale = rng.uniform(0, 1, (batch, out_c)).astype(np.float32) if gate else vectors[5]
    lo, hi = (-0.5, 0.7) if clamp else (-np.inf, np.inf)
    neg = vectors[6] if linear else vectors[7]
    stages = [first, kernels.ChannelStage(scale, vectors[5], vectors[6], neg, vectors[7], lo, hi)]
    plain = conv(xp, residual=r, residual_map=None if residual == "same" else residual)
    got = conv(xp, residual=r, residual_map=None if residual == "same" else residual, addend=a,
               addend_map=addend_map, epilogue=kernels.ChannelEpilogue(stages))
    a = a if a is None or addend_map is None else _mapped(a, addend_map, out_c)
    # Near z = 0 a rounding may pick the other slope; the error stays tiny.
    np.testing.assert_allclose(got, _epilogue_reference(plain, stages, a), rtol=1e-5, atol=1e-4)


def test_epilogue_reads_its_vectors_at_each_call():
    """Stage vectors are referenced: an SE gate written between calls is what the next uses."""
    rng = np.random.default_rng(3)
    xp = kernels.pack_bits(random_signs(rng, (1, 5, 5, 64)))
    conv = kernels.Bconv2d(kernels.pack_bits(random_signs(rng, (64, 1, 1, 64))), xp.shape, 64)
    ones, zeros = np.ones(64, np.float32), np.zeros(64, np.float32)
    gate = np.ones((1, 64), np.float32)
    epilogue = kernels.ChannelEpilogue([kernels.ChannelStage(gate, zeros, ones, ones, zeros)])
    plain = conv(xp)
    np.testing.assert_array_equal(conv(xp, epilogue=epilogue), plain)
    gate[:] = rng.uniform(0, 1, 64)
    np.testing.assert_allclose(conv(xp, epilogue=epilogue), plain * gate, rtol=1e-6)


def test_epilogue_rejects_bad_arguments():
    xp = np.zeros((2, 4, 4, 1), np.uint64)
    conv = kernels.Bconv2d(np.zeros((8, 1, 1, 1), np.uint64), xp.shape, 64)
    ones = np.ones(8, np.float32)
    stage = kernels.ChannelStage(ones, ones, ones, ones, ones)
    with pytest.raises(ValueError, match="vectors for 3 channels"):
        v = np.ones(3, np.float32)
        conv(xp, epilogue=kernels.ChannelEpilogue([kernels.ChannelStage(v, v, v, v, v)]))
    with pytest.raises(ValueError, match="per-image vectors for 3 images, the batch is 2"):
        conv(xp, epilogue=kernels.ChannelEpilogue([stage._replace(scale=np.ones((3, 8), np.float32))]))
    with pytest.raises(ValueError, match="without one, pass it as residual"):
        conv(xp, addend=np.zeros((2, 4, 4, 8), np.float32))
    with pytest.raises(ValueError, match="addend has shape"):
        conv(xp, addend=np.zeros((2, 4, 4, 9), np.float32), epilogue=kernels.ChannelEpilogue([stage]))
    with pytest.raises(ValueError, match="addend has 9 channels; the output has 8 .at most."):
        conv(xp, addend=np.zeros((2, 4, 4, 9), np.float32), addend_map="tile", epilogue=kernels.ChannelEpilogue([stage]))
    with pytest.raises(ValueError, match="addend_map must be"):
        conv(xp, addend=np.zeros((2, 4, 4, 8), np.float32), addend_map="avg", epilogue=kernels.ChannelEpilogue([stage]))
    out = np.zeros(conv.output_shape, np.float32)
    with pytest.raises(ValueError, match="must not overlap out"):
        conv(xp, addend=out, epilogue=kernels.ChannelEpilogue([stage]), out=out)
    with pytest.raises(TypeError, match="float32"):
        kernels.ChannelEpilogue([stage._replace(pos=np.ones(8))])
    with pytest.raises(TypeError, match="ChannelEpilogue"):
        conv(xp, epilogue=[stage])
    bits = kernels.Bconv2d(np.zeros((8, 1, 1, 1), np.uint64), xp.shape, 64, thresholds=np.zeros(8, np.int32))
    with pytest.raises(ValueError, match="need float output"):
        bits(xp, epilogue=kernels.ChannelEpilogue([stage]))


def test_core_rejects_mismatched_arrays_even_without_the_wrapper():
    from pocketbnn import _core

    packed = _core.pack_bconv2d_weights(W, 1, 64)
    m, b = np.ones(8, np.float32), np.zeros(8, np.float32)

    def prepare(x_shape=(1, 6, 6, 1), multiplier=m, thresholds=None, out_hw=(4, 4)):
        return _core.PreparedBconv2d(x_shape, W, packed, 1, 1, 1, 1, 0, 0, 1, *out_hw, multiplier,
                                     None if thresholds is not None else b, 0, 0, thresholds, 1)

    with pytest.raises(ValueError, match="words per pixel"):
        prepare(x_shape=(1, 6, 6, 2))
    with pytest.raises(ValueError, match="multiplier and bias"):
        prepare(multiplier=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="bit output takes thresholds only"):
        prepare(thresholds=np.zeros(8, np.int32))
    conv = prepare()
    out = np.empty((1, 4, 4, 8), np.float32)
    with pytest.raises(ValueError, match="prepared for another"):
        conv.run_float(np.zeros((1, 5, 6, 1), np.uint64), out, None)
    with pytest.raises(ValueError, match="prepared output shape"):
        conv.run_float(X, np.empty((1, 4, 4, 9), np.float32), None)
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        conv.run_float(X, out, np.zeros((1, 4, 4, 9), np.float32))
    with pytest.raises(TypeError):  # another dtype is refused, never converted
        conv.run_float(X, np.empty((1, 4, 4, 8)), None)
    with pytest.raises(ValueError, match="has float output"):
        conv.run_bits(X, np.empty((1, 4, 4, 1), np.uint64))


def test_prepared_convolution_matches_the_function_and_checks_its_input(isa):
    rng = np.random.default_rng(11)
    x, w = random_signs(rng, (2, 7, 6, 130)), random_signs(rng, (40, 3, 3, 130))
    xp, m, b = kernels.pack_bits(x), rng.standard_normal(40).astype(np.float32), rng.standard_normal(40).astype(np.float32)
    conv = kernels.Bconv2d(kernels.pack_bits(w), xp.shape, 130, stride=(2, 1), padding="same", pad_value=0,
                           multiplier=m, bias=b, clamp=(-5, 60))
    want = kernels.bconv2d(xp, kernels.pack_bits(w), 130, stride=(2, 1), padding="same", pad_value=0,
                           multiplier=m, bias=b, clamp=(-5, 60))
    assert conv.output_shape == want.shape and conv.output_dtype is np.float32
    np.testing.assert_array_equal(conv(xp), want)
    out = np.empty(conv.output_shape, np.float32)
    assert conv(xp, out=out) is out
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match=r"x has shape \(1, 7, 6, 3\); this convolution was prepared for \(2, 7, 6, 3\)"):
        conv(xp[:1])
    with pytest.raises(TypeError, match="x must be uint64"):
        conv(xp.astype(np.int64))
    with pytest.raises(ValueError, match="out must be a float32 array of shape"):
        conv(xp, out=np.empty((2, 4, 6, 41), np.float32))
