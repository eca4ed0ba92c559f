r"""Binary max-pool on bit-packed NHWC data.

With bit 1 = $-1$, the max of $\pm 1$ values is $-1$ only if all are $-1$, so the pooled word is
the bitwise AND over the window (taps in SAME padding are skipped, as max-pool pads with
$-\infty$). Equal to ``pack_bits(maxpool(unpack_bits(x)))`` because sign is monotone.
"""

from __future__ import annotations

import numpy as np

from pocketbnn import _core
from pocketbnn.kernels.bconv2d import _output, _require_array
from pocketbnn.kernels.geometry import pair, window_geometry
from pocketbnn.kernels.threads import resolve_num_threads


def bmaxpool(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    *,
    padding: str | tuple[int, int, int, int] = "valid",
    num_threads: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Max-pool packed ``x`` (uint64 ``(batch, height, width, words)``) over windows.

    Args:
        kernel_size: window (h, w) or one int.
        stride: (h, w) or one int; defaults to ``kernel_size``.
        padding: ``"valid"``, ``"same"`` (TensorFlow's rule) or explicit
            ``(top, bottom, left, right)``, each side smaller than the window.
        num_threads: threads for this call (default: :func:`set_num_threads`).
        out: an already-allocated uint64 output of the shape below (overwritten, returned).

    Returns:
        uint64 ``(batch, out_h, out_w, words)``.
    """
    _require_array(x, "x", np.uint64, 4)
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = pair(kernel_size if stride is None else stride, "stride")
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"x must have a non-empty image, got shape {x.shape}")
    out_h, pad_top = window_geometry(x.shape[1], kh, sh, 1, padding, axis=0)
    out_w, pad_left = window_geometry(x.shape[2], kw, sw, 1, padding, axis=1)
    out = _output(out, (x.shape[0], out_h, out_w, x.shape[3]), np.uint64)
    _core.bmaxpool(x, kh, kw, sh, sw, pad_top, pad_left, out, resolve_num_threads(num_threads))
    return out
