import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pocketbnn import kernels
from references import pack_bits_numpy, unpack_bits_numpy

WORD_EDGES = [1, 3, 16, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200]


def _random(seed, shape, dtype):
    rng = np.random.default_rng(seed)
    if dtype == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.1] = 0.0  # sign(0) = +1 must pack to 0
    return x


@pytest.mark.parametrize("channels", WORD_EDGES)
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_pack_matches_numpy_at_word_boundaries(isa, channels, dtype):
    x = _random(channels, (7, channels), dtype)
    np.testing.assert_array_equal(kernels.pack_bits(x), pack_bits_numpy(x))


@pytest.mark.parametrize("rows, channels", [(1000, 33), (517, 64), (3136, 64), (300, 200)])
@pytest.mark.parametrize("threads", [2, 3])
def test_pack_on_several_threads_matches_numpy(isa, rows, channels, threads):
    """Rows split over threads (enough values to split): the same words as one thread."""
    x = _random(rows, (rows, channels), np.float32)
    np.testing.assert_array_equal(kernels.pack_bits(x, num_threads=threads), pack_bits_numpy(x))


@given(shape=st.lists(st.integers(1, 9), min_size=0, max_size=3), channels=st.integers(1, 300),
       zero_point=st.integers(-128, 127), seed=st.integers(0, 2**32 - 1))
@example(shape=[], channels=64, zero_point=0, seed=0)
def test_pack_int8_with_zero_point_matches_numpy(isa, shape, channels, zero_point, seed):
    x = _random(seed, tuple(shape) + (channels,), np.int8)
    np.testing.assert_array_equal(kernels.pack_bits(x, zero_point), pack_bits_numpy(x, zero_point))


@given(shape=st.lists(st.integers(1, 9), min_size=0, max_size=3), channels=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1))
def test_unpack_inverts_pack(isa, shape, channels, seed):
    x = _random(seed, tuple(shape) + (channels,), np.float32)
    packed = kernels.pack_bits(x)
    signs = np.where(x < 0, -1.0, 1.0).astype(np.float32)
    np.testing.assert_array_equal(kernels.unpack_bits(packed, channels), signs)
    np.testing.assert_array_equal(unpack_bits_numpy(packed, channels), signs)
    np.testing.assert_array_equal(kernels.unpack_bits(packed, channels, np.int8), signs.astype(np.int8))


def test_padding_bits_are_zero(isa):
    x = -np.ones((4, 70), dtype=np.float32)  # every valid bit is 1
    packed = kernels.pack_bits(x)
    assert packed[:, 0].tolist() == [2**64 - 1] * 4
    assert packed[:, 1].tolist() == [2**6 - 1] * 4


def test_signed_zero_and_nan_pack_as_plus_one(isa):
    x = np.array([0.0, -0.0, np.nan, -1e-30, 1e-30], dtype=np.float32)
    assert kernels.pack_bits(x).tolist() == [0b01000]


def test_selected_kernel_follows_forced_isa(isa):
    assert kernels.active_isa() == isa
    assert kernels.selected_ukernel("bitpack_f32").endswith("__" + isa.replace("vpopcnt", ""))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: kernels.pack_bits(np.zeros((4, 8), np.float64)), TypeError, "float32 or int8"),
        (lambda: kernels.pack_bits(np.zeros((8, 4), np.float32).T), ValueError, "C-contiguous"),
        (lambda: kernels.pack_bits([1.0, 2.0]), TypeError, "numpy array"),
        (lambda: kernels.pack_bits(np.zeros(3, np.int8), zero_point=300), ValueError, "zero_point"),
        (lambda: kernels.pack_bits(np.zeros(3, np.float32), zero_point=1), ValueError, "int8 input only"),
        (lambda: kernels.unpack_bits(np.zeros((2, 2), np.uint64), 200), ValueError, "words per row"),
        (lambda: kernels.unpack_bits(np.zeros((2, 2), np.int64), 100), TypeError, "uint64"),
        (lambda: kernels.set_isa("sse9"), ValueError, "unknown ISA"),
        (lambda: kernels.pack_bits(np.zeros((2, 8), np.float32), means=np.zeros((2, 8), np.float32)), ValueError,
         "NHWC image"),
        (lambda: kernels.pack_bits(np.zeros((1, 2, 2, 8), np.int8), means=np.zeros((1, 8), np.float32)), ValueError,
         "float32 NHWC"),
        (lambda: kernels.pack_bits(np.zeros((1, 0, 2, 8), np.float32), means=np.zeros((1, 8), np.float32)), ValueError,
         "non-empty"),
        (lambda: kernels.pack_bits(np.zeros((2, 2, 2, 8), np.float32), means=np.zeros((1, 8), np.float32)), ValueError,
         r"shape \(2, 8\)"),
        (lambda: kernels.pack_bits(np.zeros((1, 2, 2, 8), np.float32), means=np.zeros((1, 8), np.float64)), ValueError,
         "float32 array"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("shape, pads", [((2, 5, 7, 70), (1, 2, 1, 0)), ((1, 3, 3, 64), (0, 0, 0, 0)),
                                         ((1, 4, 6, 130), (2, 1, 3, 2)), ((1, 60, 60, 16), (1, 1, 1, 1))])
@pytest.mark.parametrize("threads", [1, 2])
def test_pack_into_a_zero_bordered_image(isa, shape, pads, threads):
    """The engine's packing for one-padded convs: the interior is pack_bits of x, the border
    zero words, whatever the buffer held before."""
    from pocketbnn import _core
    x = _random(sum(shape), shape, np.float32)
    t, b, l, r = pads
    n, h, w, c = shape
    out = np.full((n, h + t + b, w + l + r, -(-c // 64)), 0xDEADBEEF, np.uint64)
    _core.bitpack_f32_padded(x, t, b, l, r, out, threads)
    want = np.zeros_like(out)
    want[:, t:t + h, l:l + w] = pack_bits_numpy(x)
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="out must have shape"):
        _core.bitpack_f32_padded(x, t + 1, b, l, r, out, threads)


@given(batch=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12), channels=st.integers(1, 200),
       threads=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
@example(batch=1, h=56, w=56, channels=64, threads=2, seed=0)  # PokeBNN's first SE squeeze
@example(batch=2, h=7, w=7, channels=2048, threads=3, seed=1)
def test_pack_with_channel_means(isa, batch, h, w, channels, threads, seed):
    """pack_bits(x, means=m): the same words as without, and m the per-image channel means
    (float32 sums, so within float rounding of float64 means), the same for every thread count."""
    x = _random(seed, (batch, h, w, channels), np.float32)
    means = np.full((batch, channels), np.nan, np.float32)
    packed = kernels.pack_bits(x, means=means, num_threads=threads)
    np.testing.assert_array_equal(packed, pack_bits_numpy(x))
    want = x.astype(np.float64).mean(axis=(1, 2))
    np.testing.assert_allclose(means, want, rtol=0, atol=1e-6 * np.sqrt(h * w) * np.abs(x).max() + 1e-7)
    one = np.empty_like(means)
    kernels.pack_bits(x, means=one, num_threads=1)
    np.testing.assert_array_equal(means, one)


@pytest.mark.parametrize("threads", [1, 2])
def test_padded_pack_with_channel_means(isa, threads):
    """The engine's padded packing writes the means of the image, not of the padded image."""
    from pocketbnn import _core
    x = _random(5, (2, 9, 11, 70), np.float32)
    out = np.empty((2, 11, 14, 2), np.uint64)
    means = np.empty((2, 70), np.float32)
    _core.bitpack_f32_padded(x, 1, 1, 2, 1, out, threads, means)
    np.testing.assert_allclose(means, x.astype(np.float64).mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_array_equal(out[:, 1:10, 2:13], pack_bits_numpy(x))
    with pytest.raises(ValueError, match="means must hold"):
        _core.bitpack_f32_padded(x, 1, 1, 2, 1, out, threads, np.empty((2, 69), np.float32))
