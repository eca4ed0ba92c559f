r"""Per-channel epilogues: the float work that follows a layer, fused into its output.

A :class:`ChannelStage` is one per-channel piecewise-linear map, for channel $c$:

$$ z = x\,a_c + s_c, \qquad z = \begin{cases} p_c z & z \ge 0 \\ n_c z & z < 0 \end{cases} + q_c,
   \qquad y = \min(\max(z, lo), hi) $$

with $a$ = ``scale``, $s$ = ``shift``, $p$ / $n$ = ``pos`` / ``neg`` and $q$ = ``post``. It covers
BatchNorm as a scale and shift, ReLU, clamps, PReLU, DPReLU (PokeBNN), RPReLU (ReActNet), and an
SE gate's product (``scale`` = the gate). A :class:`ChannelEpilogue` is one or two stages in
order, after an optional addend: $y = \text{stage}_2(\text{stage}_1(x + r))$. A binary
convolution runs it on each block of its output as soon as the block is written
(``Bconv2d(..., epilogue=)``), while the block is still in cache, instead of a pass of its own
over the whole output.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pocketbnn import _core


class ChannelStage(NamedTuple):
    """One stage (module docstring). Each vector is float32, C-contiguous, of shape ``(C,)``,
    or ``(N, C)`` for a value per image of an N-image batch (an SE gate)."""

    scale: np.ndarray
    shift: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    post: np.ndarray
    lo: float = -np.inf
    hi: float = np.inf


class ChannelEpilogue:
    """One or two :class:`ChannelStage` s, checked once.

    The vectors are referenced, not copied: each run reads their values at that time, so a
    vector that an earlier layer writes (an SE gate) can be bound once and reused.

    Attributes:
        channels: C, the channel count of every vector.
        images: N if some vector holds a row per image, else 0 (any batch).

    Raises:
        TypeError: a vector is not a float32 numpy array.
        ValueError: no stage or more than two, vectors of other shapes or disagreeing channel
            or image counts, a non-contiguous vector, or ``lo > hi``.
    """

    def __init__(self, stages: list[ChannelStage] | tuple[ChannelStage, ...]) -> None:
        stages = [ChannelStage(*s) for s in stages]
        for s in stages:
            for name in ChannelStage._fields[:5]:
                v = getattr(s, name)
                if not isinstance(v, np.ndarray) or v.dtype != np.float32:
                    raise TypeError(f"stage vector {name} must be a float32 numpy array, got "
                                    f"{getattr(v, 'dtype', type(v).__name__)}")
                if not v.flags.c_contiguous:
                    raise ValueError(f"stage vector {name} must be C-contiguous")
        self.stages = tuple(stages)
        self._core = _core.ChannelEpilogue([tuple(s[:5]) + (float(s.lo), float(s.hi)) for s in stages])

    @property
    def channels(self) -> int:
        return self._core.channels

    @property
    def images(self) -> int:
        return self._core.images
