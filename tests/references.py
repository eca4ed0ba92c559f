"""Plain numpy oracles the compiled kernels are tested against."""

import numpy as np

WORD_BITS = 64


def pack_bits_numpy(x: np.ndarray, zero_point: int = 0) -> np.ndarray:
    """Bit i of word j of a row = (x[..., 64*j + i] < zero_point); rows padded with 0 bits."""
    channels = x.shape[-1]
    words = -(-channels // WORD_BITS)
    bits = np.zeros(x.shape[:-1] + (words * WORD_BITS,), dtype=np.uint64)
    bits[..., :channels] = x < zero_point
    bits = bits.reshape(x.shape[:-1] + (words, WORD_BITS))
    weights = np.uint64(1) << np.arange(WORD_BITS, dtype=np.uint64)
    return (bits * weights).sum(axis=-1, dtype=np.uint64)


def unpack_bits_numpy(packed: np.ndarray, channels: int) -> np.ndarray:
    """+1 for bit 0, -1 for bit 1, first `channels` values of each row."""
    shifts = np.arange(WORD_BITS, dtype=np.uint64)
    bits = (packed[..., None] >> shifts) & np.uint64(1)
    bits = bits.reshape(packed.shape[:-1] + (-1,))[..., :channels]
    return 1.0 - 2.0 * bits.astype(np.float32)


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """TensorFlow SAME along one axis: (output size, padding before, padding after)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2, total - total // 2


def conv2d_pm1_numpy(x, w, stride=(1, 1), dilation=(1, 1), padding="valid", pad_value=1.0, groups=1):
    """Float64 convolution of NHWC x with OHWI w (values +-1), padding filled with `pad_value`.

    The integer dot products a binary convolution must produce, computed without bits: one
    strided slice and one einsum per tap.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    (sh, sw), (dh, dw) = stride, dilation
    _, kh, kw, cpg = w.shape
    if padding == "same":
        oh, top, bottom = same_padding(x.shape[1], kh, sh, dh)
        ow, left, right = same_padding(x.shape[2], kw, sw, dw)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    else:
        oh = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
        ow = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    n, out_c = x.shape[0], w.shape[0]
    wg = w.reshape(groups, out_c // groups, kh, kw, cpg)
    out = np.zeros((n, oh, ow, groups, out_c // groups))
    for ky in range(kh):
        for kx in range(kw):
            patch = x[:, ky * dh: ky * dh + (oh - 1) * sh + 1: sh, kx * dw: kx * dw + (ow - 1) * sw + 1: sw]
            patch = patch.reshape(n, oh, ow, groups, cpg)
            out += np.einsum("nyxgi,goi->nyxgo", patch, wg[:, :, ky, kx, :])
    return out.reshape(n, oh, ow, out_c)


def maxpool_numpy(x, kernel, stride, padding="valid"):
    """Max over windows of NHWC x; SAME pads with -inf (TensorFlow's rule)."""
    (kh, kw), (sh, sw) = kernel, stride
    if padding == "same":
        oh, top, bottom = same_padding(x.shape[1], kh, sh, 1)
        ow, left, right = same_padding(x.shape[2], kw, sw, 1)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    else:
        oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.full((x.shape[0], oh, ow, x.shape[3]), -np.inf)
    for ky in range(kh):
        for kx in range(kw):
            out = np.maximum(out, x[:, ky: ky + (oh - 1) * sh + 1: sh, kx: kx + (ow - 1) * sw + 1: sw])
    return out
