"""The engine's one seam to the compiled binary kernels.

Calls the core (``pocketbnn._core``) with the engine's preplanned output buffers, so a run
allocates nothing; ``pocketbnn.kernels`` wraps the same calls for users, allocating outputs.
Weights are re-laid out once per model by ``kernels.BconvWeights``.
"""

from __future__ import annotations

import numpy as np

from pocketbnn import _core, kernels


def pack(x: np.ndarray, out: np.ndarray) -> None:
    """Bit-pack float32 ``x`` along its last axis into ``out`` (uint64)."""
    _core.bitpack_f32(x, out)


def prepare_bconv2d(weights: np.ndarray, in_channels_per_group: int, groups: int) -> kernels.BconvWeights:
    """Packed OHWI weights, re-laid out for the micro-kernels."""
    return kernels.BconvWeights(np.ascontiguousarray(weights), in_channels_per_group * groups, groups=groups)


def bconv2d(x, kernel, out, *, window, pad_value, clamp, multiplier, bias, thresholds, num_threads) -> None:
    """Binary convolution into ``out`` (float32, or uint64 when ``thresholds`` is given); the
    output size, and so the bottom/right padding, is ``out``'s."""
    packed_out = thresholds is not None
    if packed_out:
        out.fill(0)  # the kernel sets bits into a zeroed buffer (kernels.bconv2d allocates np.zeros)
    _core.bconv2d(x, kernel.weights, kernel._packed, window.sh, window.sw, window.dh, window.dw,
                  window.top, window.left, pad_value, multiplier, bias, clamp[0], clamp[1], thresholds,
                  None if packed_out else out, out if packed_out else None, num_threads)


def bmaxpool2d(x, out, *, window, num_threads) -> None:
    """Binary max-pool (AND over the window) into ``out``."""
    _core.bmaxpool(x, window.kh, window.kw, window.sh, window.sw, window.top, window.left, out, num_threads)
