"""Shared geometry of sliding-window ops (convolutions, pooling) on NHWC arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pocketbnn.engine.ops.base import TensorSpec, attr_ints, pooled_size, same_rank_4d


@dataclass(frozen=True)
class Window:
    r"""Kernel, stride, dilation and explicit (top, bottom, left, right) padding.

    Output pixel (oy, ox) reads input rows $iy = oy\,s_h - p_t + ky\,d_h$ and columns
    $ix = ox\,s_w - p_l + kx\,d_w$.
    """

    kh: int
    kw: int
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    @classmethod
    def from_attrs(cls, attrs: dict) -> Window:
        kh, kw = attr_ints(attrs, "kernel", 2, lo=1)
        sh, sw = attr_ints(attrs, "stride", 2, lo=1, default=[1, 1])
        dh, dw = attr_ints(attrs, "dilation", 2, lo=1, default=[1, 1])
        top, bottom, left, right = attr_ints(attrs, "pads", 4, default=[0, 0, 0, 0])
        return cls(kh, kw, sh, sw, dh, dw, top, bottom, left, right)

    @property
    def padded(self) -> bool:
        return bool(self.top or self.bottom or self.left or self.right)

    def output_hw(self, spec: TensorSpec, what: str) -> tuple[int, int, int, int, int]:
        """(N, H, W, OH, OW) of an NHWC input."""
        n, h, w, _ = same_rank_4d(spec, what)
        oh = pooled_size(h, self.kh, self.sh, self.dh, self.top, self.bottom)
        ow = pooled_size(w, self.kw, self.sw, self.dw, self.left, self.right)
        return n, h, w, oh, ow

    def padded_shape(self, spec: TensorSpec) -> tuple[int, int, int, int]:
        n, h, w, c = spec.shape
        return n, h + self.top + self.bottom, w + self.left + self.right, c

    def fill_padded(self, x: np.ndarray, padded: np.ndarray) -> np.ndarray:
        """Copy ``x`` into the interior of ``padded`` (whose border keeps its fill value)."""
        h, w = x.shape[1:3]
        np.copyto(padded[:, self.top:self.top + h, self.left:self.left + w], x)
        return padded

    def taps(self, padded: np.ndarray, oh: int, ow: int):
        """Yield (ky, kx, view): the input seen by tap (ky, kx) for every output pixel."""
        for ky in range(self.kh):
            y0 = ky * self.dh
            for kx in range(self.kw):
                x0 = kx * self.dw
                yield ky, kx, padded[:, y0:y0 + (oh - 1) * self.sh + 1:self.sh,
                                     x0:x0 + (ow - 1) * self.sw + 1:self.sw]
