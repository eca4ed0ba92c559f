"""``out=`` of the public binary kernels, as the engine calls them: results equal the
allocating calls, whatever the buffer held before (bit-packed padding bits included)."""

import numpy as np
import pytest

from pocketbnn import kernels


@pytest.mark.parametrize("out_c", [8, 64, 70])
@pytest.mark.parametrize("packed", [False, True])
def test_bconv2d_out_overwrites_garbage(out_c, packed):
    rng = np.random.default_rng(out_c)
    cin = 96
    x = kernels.pack_bits(rng.standard_normal((1, 6, 7, cin)).astype(np.float32))
    w = kernels.pack_bits(rng.standard_normal((out_c, 3, 3, cin)).astype(np.float32))
    weights = kernels.BconvWeights(w, cin)
    kw = dict(thresholds=rng.integers(-50, 50, out_c).astype(np.int32)) if packed else \
        dict(multiplier=rng.standard_normal(out_c).astype(np.float32))
    want = kernels.bconv2d(x, weights, padding="same", **kw)
    out = np.full(want.shape, np.iinfo(np.uint64).max, np.uint64) if packed else \
        np.full(want.shape, np.nan, np.float32)
    got = kernels.bconv2d(x, weights, padding=(1, 1, 1, 1), out=out, **kw)
    assert got is out
    np.testing.assert_array_equal(out, want)


def test_bdense_and_bmaxpool_out():
    rng = np.random.default_rng(0)
    x = kernels.pack_bits(rng.standard_normal((3, 130)).astype(np.float32))
    w = kernels.pack_bits(rng.standard_normal((10, 130)).astype(np.float32))
    out = np.full((3, 10), np.nan, np.float32)
    assert kernels.bdense(x, w, 130, out=out) is out
    np.testing.assert_array_equal(out, kernels.bdense(x, w, 130))
    img = kernels.pack_bits(rng.standard_normal((1, 5, 5, 70)).astype(np.float32))
    pooled = np.full((1, 3, 3, 2), 7, np.uint64)
    assert kernels.bmaxpool(img, 2, 2, padding=(0, 1, 0, 1), out=pooled) is pooled
    np.testing.assert_array_equal(pooled, kernels.bmaxpool(img, 2, 2, padding="same"))


def test_out_is_checked():
    x = kernels.pack_bits(np.ones((1, 4, 4, 64), np.float32))
    w = kernels.pack_bits(np.ones((8, 1, 1, 64), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        kernels.bconv2d(x, w, 64, out=np.empty((1, 4, 4, 9), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        kernels.bmaxpool(x, 2, out=np.empty((1, 2, 2, 1), np.float32))
