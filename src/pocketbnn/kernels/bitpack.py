"""Bit-packing of float32 / int8 arrays along the last axis, and unpacking (±1)."""

from __future__ import annotations

import numpy as np

from pocketbnn import _core
from pocketbnn.kernels.threads import resolve_num_threads

WORD_BITS: int = _core.WORD_BITS


def packed_words(channels: int) -> int:
    """Words per packed row: ``ceil(channels / WORD_BITS)``."""
    return -(-channels // WORD_BITS)


def _require_c_contiguous(x: np.ndarray, name: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least one axis, got a scalar")


def pack_bits(x: np.ndarray, zero_point: int = 0, *, num_threads: int | None = None,
              means: np.ndarray | None = None) -> np.ndarray:
    r"""Pack the signs of ``x`` along its last axis into uint64 words.

    $$ \text{bit}_i = \begin{cases} 1 & x_i < z \\ 0 & x_i \ge z \end{cases} $$

    with $z = 0$ for float32 and $z$ = ``zero_point`` for int8; so sign(0) = +1 packs to 0.
    With ``means`` (float32 NHWC ``x`` only), the same pass also writes each image's channel
    means, $\text{means}[n, c] = \frac{1}{HW} \sum_{h,w} x[n, h, w, c]$ (the squeeze of an SE
    block that reads the map being binarized); they come out the same for any thread count.

    Args:
        x: float32 or int8 array of shape ``(..., C)``, C-contiguous.
        zero_point: the int8 value that stands for 0 (int8 input only).
        num_threads: threads for float32 input (default: :func:`set_num_threads`); rows are
            split between them when there are at least 32 K values.
        means: float32 array of shape ``(N, C)`` to write the channel means into, or None.

    Returns:
        uint64 array of shape ``(..., ceil(C / 64))``; padding bits are 0.

    Raises:
        TypeError: ``x`` is not a float32 or int8 numpy array.
        ValueError: ``x`` is not C-contiguous, is a scalar, or ``zero_point`` is out of range;
            ``means`` is given with ``x`` not a non-empty float32 NHWC image, or is not a
            writable C-contiguous float32 ``(N, C)`` array.
    """
    _require_c_contiguous(x, "x")
    out = np.empty(x.shape[:-1] + (packed_words(x.shape[-1]),), dtype=np.uint64)
    if means is not None:
        if x.dtype != np.float32 or x.ndim != 4 or x.shape[1] * x.shape[2] == 0:
            raise ValueError(f"means need a non-empty float32 NHWC image, got {x.dtype} {x.shape}")
        want = (x.shape[0], x.shape[3])
        if (not isinstance(means, np.ndarray) or means.dtype != np.float32 or means.shape != want
                or not means.flags.c_contiguous or not means.flags.writeable):
            got = f"{means.dtype} {means.shape}" if isinstance(means, np.ndarray) else type(means).__name__
            raise ValueError(f"means must be a writable C-contiguous float32 array of shape {want}, got {got}")
        _core.bitpack_f32_padded(x, 0, 0, 0, 0, out, resolve_num_threads(num_threads), means)
        return out
    if x.dtype == np.float32:
        if zero_point != 0:
            raise ValueError("zero_point applies to int8 input only")
        _core.bitpack_f32(x, out, resolve_num_threads(num_threads))
    elif x.dtype == np.int8:
        if not -128 <= zero_point <= 127:
            raise ValueError(f"zero_point must be in [-128, 127], got {zero_point}")
        _core.bitpack_i8(x, int(zero_point), out)
    else:
        raise TypeError(f"pack_bits takes float32 or int8 input, got {x.dtype}")
    return out


def unpack_bits(packed: np.ndarray, channels: int, dtype: type = np.float32) -> np.ndarray:
    r"""Inverse of :func:`pack_bits`: bit 0 becomes +1, bit 1 becomes -1.

    Args:
        packed: uint64 array of shape ``(..., ceil(channels / 64))``, C-contiguous.
        channels: the unpacked length of the last axis (cannot be inferred from the words).
        dtype: ``np.float32`` or ``np.int8``.

    Returns:
        array of shape ``(..., channels)`` with values in {-1, +1}.
    """
    _require_c_contiguous(packed, "packed")
    if packed.dtype != np.uint64:
        raise TypeError(f"packed must be uint64, got {packed.dtype}")
    if channels < 0 or packed.shape[-1] != packed_words(channels):
        raise ValueError(
            f"packed has {packed.shape[-1]} words per row; {channels} channels need "
            f"{packed_words(max(channels, 0))}"
        )
    dtype = np.dtype(dtype)
    out = np.empty(packed.shape[:-1] + (channels,), dtype=dtype)
    if dtype == np.float32:
        _core.unpack_f32(packed, out)
    elif dtype == np.int8:
        _core.unpack_i8(packed, out)
    else:
        raise TypeError(f"unpack_bits produces float32 or int8, got {dtype}")
    return out
