"""Binary max-pool: every ISA path against the reference kernel and a float max-pool of +-1 data."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketbnn import kernels
from references import maxpool_numpy, pack_bits_numpy


@given(batch=st.integers(1, 2), height=st.integers(1, 14), width=st.integers(1, 14),
       channels=st.integers(1, 200), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.sampled_from(["valid", "same"]), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1))
def test_bmaxpool_is_sign_of_float_maxpool(isa, batch, height, width, channels, kernel, stride,
                                           padding, threads, seed):
    if padding == "valid":
        height, width = height + kernel[0] - 1, width + kernel[1] - 1
    rng = np.random.default_rng(seed)
    # Mostly -1 so that windows of all -1 (output bit 1) are common.
    x = np.where(rng.random((batch, height, width, channels)) < 0.8, -1.0, 1.0).astype(np.float32)
    out = kernels.bmaxpool(kernels.pack_bits(x), kernel, stride, padding=padding, num_threads=threads)
    np.testing.assert_array_equal(out, pack_bits_numpy(maxpool_numpy(x, kernel, stride, padding)))
    with kernels.use_isa("reference"):
        np.testing.assert_array_equal(out, kernels.bmaxpool(kernels.pack_bits(x), kernel, stride,
                                                            padding=padding))


def test_default_stride_is_the_window(isa):
    x = kernels.pack_bits(-np.ones((1, 4, 6, 3), np.float32))
    assert kernels.bmaxpool(x, 2).shape == (1, 2, 3, 1)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: kernels.bmaxpool(np.zeros((1, 4, 4, 1), np.int64), 2), TypeError, "uint64"),
        (lambda: kernels.bmaxpool(np.zeros((4, 4, 1), np.uint64), 2), ValueError, "4 axes"),
        (lambda: kernels.bmaxpool(np.zeros((1, 4, 4, 2), np.uint64)[..., :1], 2), ValueError, "C-contiguous"),
        (lambda: kernels.bmaxpool(np.zeros((1, 4, 4, 1), np.uint64), 0), ValueError, "kernel_size"),
        (lambda: kernels.bmaxpool(np.zeros((1, 4, 4, 1), np.uint64), 5), ValueError, "no output"),
        (lambda: kernels.bmaxpool(np.zeros((1, 4, 4, 1), np.uint64), 2, padding="x"), ValueError, "'valid'"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
