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
