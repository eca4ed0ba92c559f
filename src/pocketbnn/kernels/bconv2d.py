r"""Binary 2-D convolution and binary dense on bit-packed NHWC data.

For output pixel $p$ and channel $c$ the kernel computes the $\pm 1$ dot product over the
receptive field, from packed words:

$$ \text{dot} = \sum_{\text{taps}} \left( C_g - 2\,\text{popcount}(x \oplus w) \right) $$

with $C_g$ the input channels per group; a tap in the SAME padding counts as an input of all
$+1$ (``pad_value=1``, free: the bit pattern 0) or as 0 (``pad_value=0``, exact correction).
Then either float32 output

$$ y_c = \text{clamp}(\text{dot}, lo, hi) \cdot m_c + b_c \; (+ r_c) $$

(with an optional residual $r$ of the output's shape, a fused shortcut connection), then
optionally a per-channel epilogue (:mod:`pocketbnn.kernels.epilogue`: the activation, SE gate
and BatchNorm that follow, applied to each block of the output while it is still in cache)

or bit-packed output $\text{bit}_c = [\text{dot} < t_c]$ with integer thresholds, which
:func:`bitpacked_output_params` derives so that $\text{bit}_c = [y_c < 0]$ exactly.
"""

from __future__ import annotations

import numpy as np

from pocketbnn import _core
from pocketbnn.kernels.bitpack import WORD_BITS, packed_words
from pocketbnn.kernels.epilogue import ChannelEpilogue
from pocketbnn.kernels.geometry import pair, window_geometry
from pocketbnn.kernels.threads import resolve_num_threads

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# residual_map names -> the core's ResidualMap (csrc/bconv2d/bconv2d.h).
RESIDUAL_MAPS = {None: 0, "tile": 1, "zeropad": 2}


def _require_array(x: object, name: str, dtype: type, ndim: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"{name} must be {np.dtype(dtype)}, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    return x


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``out`` checked against the expected shape and dtype, or a new array."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != shape:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a {np.dtype(dtype)} array of shape {shape}, got {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    return out


def _per_channel(v: object, name: str, channels: int, dtype: type) -> np.ndarray:
    if isinstance(v, np.ndarray) and v.dtype == dtype and v.shape == (channels,) and v.flags.c_contiguous:
        return v
    a = np.ascontiguousarray(np.asarray(v), dtype=dtype)
    if a.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), got {a.shape}")
    return a


class BconvWeights:
    """Bit-packed OHWI weights of a binary convolution, re-laid out once for the kernels.

    Pass it instead of the raw array to :func:`bconv2d` / :func:`bdense` to keep the
    re-layout (blocks of 8 output channels, k-major) out of every call, as a converted
    model does.

    Args:
        weights: uint64 array ``(out_channels, kh, kw, ceil(in_channels / groups / 64))``,
            packed with :func:`pack_bits` along the input-channel axis.
        in_channels: the true (unpacked) input channel count.
        groups: channel groups; ``in_channels / groups`` must be a multiple of 64 when
            ``groups > 1``, and ``out_channels`` a multiple of ``groups``.
    """

    def __init__(self, weights: np.ndarray, in_channels: int, *, groups: int = 1) -> None:
        _require_array(weights, "weights", np.uint64, 4)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be a positive int, got {groups!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        if in_channels % groups or (groups > 1 and (in_channels // groups) % WORD_BITS):
            raise ValueError(
                f"groups={groups} needs in_channels / groups to be a whole multiple of "
                f"{WORD_BITS} (groups must start on word boundaries); in_channels={in_channels}"
            )
        if weights.shape[0] % groups:
            raise ValueError(f"out_channels {weights.shape[0]} is not divisible by groups {groups}")
        per_group = in_channels // groups
        if weights.shape[3] != packed_words(per_group):
            raise ValueError(
                f"weights hold {weights.shape[3]} words per tap; {per_group} input channels per "
                f"group need {packed_words(per_group)}"
            )
        self.weights = weights
        self.in_channels = in_channels
        self.groups = groups
        self._packed = _core.pack_bconv2d_weights(weights, groups, per_group)

    @property
    def out_channels(self) -> int:
        return self.weights.shape[0]

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weights.shape[1], self.weights.shape[2]


class Bconv2d:
    r"""A binary convolution prepared for one input shape: weights, geometry and output
    transform are checked and resolved once, so a call costs one input check and the kernel
    (the create-once / run-many form of XNNPACK operators, and what a converted model uses).

    Args:
        weights: a :class:`BconvWeights`, or a raw uint64 OHWI array with ``in_channels``.
        input_shape: ``(batch, height, width, words)`` of the packed input.
        in_channels, stride, dilation, padding, pad_value, groups, multiplier, bias, clamp,
        thresholds, num_threads: as in :func:`bconv2d`.

    Attributes:
        output_shape, output_dtype: what a call returns.

    Raises:
        TypeError, ValueError: as :func:`bconv2d`, at construction.
    """

    def __init__(
        self,
        weights: np.ndarray | BconvWeights,
        input_shape: tuple[int, int, int, int],
        in_channels: int | None = None,
        *,
        stride: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        padding: str = "valid",
        pad_value: int = 1,
        groups: int = 1,
        multiplier: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        clamp: tuple[int, int] | None = None,
        thresholds: np.ndarray | None = None,
        num_threads: int | None = None,
    ) -> None:
        if not isinstance(weights, BconvWeights):
            if in_channels is None:
                raise ValueError("in_channels is required with a raw weights array")
            weights = BconvWeights(weights, in_channels, groups=groups)
        elif in_channels not in (None, weights.in_channels) or groups not in (1, weights.groups):
            raise ValueError("in_channels / groups disagree with the BconvWeights passed")
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(f"x must have 4 axes, got shape {input_shape}")
        if input_shape[3] != packed_words(weights.in_channels):
            raise ValueError(
                f"x has {input_shape[3]} words per pixel; {weights.in_channels} input channels need "
                f"{packed_words(weights.in_channels)}"
            )
        if input_shape[1] < 1 or input_shape[2] < 1:
            raise ValueError(f"x must have a non-empty image, got shape {input_shape}")
        (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
        if pad_value not in (0, 1):
            raise ValueError(f"pad_value must be 0 or 1, got {pad_value!r}")
        kh, kw = weights.kernel_size
        out_h, pad_top = window_geometry(input_shape[1], kh, sh, dh, padding, axis=0)
        out_w, pad_left = window_geometry(input_shape[2], kw, sw, dw, padding, axis=1)
        c = weights.out_channels
        lo, hi = (_INT32_MIN, _INT32_MAX) if clamp is None else clamp
        if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer)) and lo <= hi):
            raise ValueError(f"clamp must be a pair of ints (lo, hi) with lo <= hi, got {clamp!r}")
        if thresholds is not None:
            if multiplier is not None or bias is not None or clamp is not None:
                raise ValueError(
                    "thresholds select bit-packed output; fold multiplier, bias and clamp into them "
                    "with bitpacked_output_params()"
                )
            thresholds = _per_channel(thresholds, "thresholds", c, np.int32)
            self.output_shape, self.output_dtype = (input_shape[0], out_h, out_w, packed_words(c)), np.uint64
        else:
            multiplier = np.ones(c, np.float32) if multiplier is None else _per_channel(
                multiplier, "multiplier", c, np.float32)
            bias = np.zeros(c, np.float32) if bias is None else _per_channel(bias, "bias", c, np.float32)
            self.output_shape, self.output_dtype = (input_shape[0], out_h, out_w, c), np.float32
        self.input_shape = input_shape
        self.weights = weights
        self._bits = thresholds is not None
        self._core = _core.PreparedBconv2d(
            input_shape, weights.weights, weights._packed, sh, sw, dh, dw, pad_top, pad_left, pad_value, out_h,
            out_w, None if self._bits else multiplier, None if self._bits else bias, int(lo), int(hi),
            thresholds, resolve_num_threads(num_threads))

    def __call__(self, x: np.ndarray, *, residual: np.ndarray | None = None, residual_map: str | None = None,
                 addend: np.ndarray | None = None, addend_map: str | None = None,
                 epilogue: ChannelEpilogue | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Run on packed ``x`` of ``input_shape``; ``residual``, ``residual_map``, ``addend``,
        ``addend_map``, ``epilogue`` and ``out`` as in :func:`bconv2d`."""
        if self._bits and (residual is not None or epilogue is not None):
            raise ValueError("residual and epilogue need float output (no thresholds)")
        for name, value in (("residual_map", residual_map), ("addend_map", addend_map)):
            if value not in RESIDUAL_MAPS:
                raise ValueError(f"{name} must be one of {sorted(k for k in RESIDUAL_MAPS if k)} or None, "
                                 f"got {value!r}")
        if epilogue is not None and not isinstance(epilogue, ChannelEpilogue):
            raise TypeError(f"epilogue must be a ChannelEpilogue, got {type(epilogue).__name__}")
        if addend is not None and epilogue is None:
            raise ValueError("addend is added before an epilogue; without one, pass it as residual")
        if out is None:
            out = np.empty(self.output_shape, self.output_dtype)
        try:
            if self._bits:
                self._core.run_bits(x, out)
            else:
                self._core.run_float(x, out, residual, RESIDUAL_MAPS[residual_map], addend, RESIDUAL_MAPS[addend_map],
                                     None if epilogue is None else epilogue._core)
        except (TypeError, ValueError):
            self._explain(x, residual, residual_map, addend, addend_map, out)
            raise
        return out

    def _explain(self, x, residual, residual_map, addend, addend_map, out) -> None:
        """Raise the clearest error for arguments the core refused (its own message otherwise)."""
        _require_array(x, "x", np.uint64, 4)
        if x.shape != self.input_shape:
            raise ValueError(f"x has shape {x.shape}; this convolution was prepared for {self.input_shape}")
        _output(out, self.output_shape, self.output_dtype)
        if residual is not None:
            _require_array(residual, "residual", np.float32, 4)
            if residual_map is None and residual.shape != out.shape:
                raise ValueError(f"residual has shape {residual.shape}; the output has {out.shape}")
        if addend is not None:
            _require_array(addend, "addend", np.float32, 4)
            if addend_map is None and addend.shape != out.shape:
                raise ValueError(f"addend has shape {addend.shape}; the output has {out.shape}")


def bconv2d(
    x: np.ndarray,
    weights: np.ndarray | BconvWeights,
    in_channels: int | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    padding: str = "valid",
    pad_value: int = 1,
    groups: int = 1,
    multiplier: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    clamp: tuple[int, int] | None = None,
    residual: np.ndarray | None = None,
    residual_map: str | None = None,
    addend: np.ndarray | None = None,
    addend_map: str | None = None,
    epilogue: ChannelEpilogue | None = None,
    thresholds: np.ndarray | None = None,
    num_threads: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    r"""Binary convolution of packed NHWC input with packed OHWI weights (see module doc).

    Args:
        x: uint64 ``(batch, height, width, ceil(in_channels / 64))``; channel padding bits 0.
        weights: uint64 OHWI array as for :class:`BconvWeights`, or a :class:`BconvWeights`.
        in_channels: true input channel count (taken from ``weights`` if a
            :class:`BconvWeights`).
        stride, dilation: ints or (h, w) pairs.
        padding: ``"valid"``, ``"same"`` (TensorFlow's rule: the smaller half before), or
            explicit ``(top, bottom, left, right)`` pixel counts.
        pad_value: what SAME padding holds, ``1`` (+1, free) or ``0`` (adds 0 to the dot).
        groups: channel groups (with a raw weights array).
        multiplier, bias: float32 per output channel (default 1 and 0); float output.
        clamp: ``(lo, hi)`` applied to the integer dot product before the multiplier.
        residual: float32 of the output's shape, added to the float output (a shortcut
            connection fused into the output stage); may be ``out`` itself. With
            ``residual_map``, of the output's batch, height and width but $r$ channels, a
            multiple of 64 and at most the output's (``groups`` 1; not overlapping ``out``).
        residual_map: how such a residual maps onto the output channels (PokeBNN's
            shortcuts): ``"tile"``, channel $c$ adds ``residual[..., c % r]``; ``"zeropad"``,
            channel $c$ adds ``residual[..., c]`` for $c < r$ and nothing after.
        addend: float32 of the output's shape (not overlapping ``out``), added after the
            residual and before the epilogue (a second shortcut); needs ``epilogue``. With
            ``addend_map`` (``"tile"`` / ``"zeropad"``, as ``residual_map``), of the output's
            batch, height and width and any number of channels up to the output's.
        epilogue: a :class:`~pocketbnn.kernels.epilogue.ChannelEpilogue` of the output's
            channels (per-image vectors: of its batch), applied to the float output: the
            output is $\text{epilogue}(y + \text{addend})$.
        thresholds: int32 per output channel; selects bit-packed output, bit = dot < t.
        num_threads: threads for this call (default: :func:`set_num_threads`).
        out: an already-allocated C-contiguous output of the shape and dtype described under
            Returns; it is overwritten completely (bit-packed output included: every channel
            bit and the last word's padding bits, which are set to 0, so ``np.empty`` will
            do) and returned.

    Returns:
        float32 ``(batch, out_h, out_w, out_channels)``, or with ``thresholds`` uint64
        ``(batch, out_h, out_w, ceil(out_channels / 64))`` with padding bits 0.

    Raises:
        TypeError: an array has the wrong type or dtype.
        ValueError: shapes disagree, groups are unsupported, an array is not C-contiguous, or
            an option is out of range.

    Calling a prepared :class:`Bconv2d` skips the per-call checks of everything but ``x``.
    """
    _require_array(x, "x", np.uint64, 4)
    conv = Bconv2d(weights, x.shape, in_channels, stride=stride, dilation=dilation, padding=padding,
                   pad_value=pad_value, groups=groups, multiplier=multiplier, bias=bias, clamp=clamp,
                   thresholds=thresholds, num_threads=num_threads)
    return conv(x, residual=residual, residual_map=residual_map, addend=addend, addend_map=addend_map,
                epilogue=epilogue, out=out)


def bdense(
    x: np.ndarray,
    weights: np.ndarray | BconvWeights,
    in_features: int | None = None,
    **kwargs,
) -> np.ndarray:
    r"""Binary fully-connected layer: a 1x1 :func:`bconv2d` whose pixels are the batch rows.

    Args:
        x: uint64 ``(batch, ceil(in_features / 64))``.
        weights: uint64 ``(out_features, ceil(in_features / 64))``, or a
            :class:`BconvWeights` built from it reshaped to ``(out, 1, 1, words)``.
        in_features: true input feature count (not needed with a :class:`BconvWeights`).
        **kwargs: ``multiplier``, ``bias``, ``clamp``, ``thresholds``, ``num_threads`` as in
            :func:`bconv2d`; ``out``: an already-allocated ``(batch, out_features)`` float32
            or ``(batch, ceil(out_features / 64))`` uint64 output, returned.

    Returns:
        float32 ``(batch, out_features)``, or uint64 ``(batch, ceil(out_features / 64))``.
    """
    _require_array(x, "x", np.uint64, 2)
    if not isinstance(weights, BconvWeights):
        _require_array(weights, "weights", np.uint64, 2)
        weights = weights.reshape(weights.shape[0], 1, 1, weights.shape[1])
    out = kwargs.pop("out", None)
    if out is not None:
        if not isinstance(out, np.ndarray) or out.ndim != 2 or not out.flags.c_contiguous:
            raise ValueError("out must be a C-contiguous 2-D array (batch, out_features or words)")
        kwargs["out"] = out.reshape(1, out.shape[0], 1, out.shape[1])
    result = bconv2d(x.reshape(1, x.shape[0], 1, x.shape[1]), weights, in_features, **kwargs)
    return out if out is not None else result.reshape(x.shape[0], result.shape[-1])


def bitpacked_output_params(
    weights: np.ndarray,
    in_channels: int,
    multiplier: np.ndarray,
    bias: np.ndarray,
    *,
    clamp: tuple[int, int] | None = None,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Weights and integer thresholds that turn float output into its sign bits.

    For a channel with multiplier $m$, bias $b$ and clamp $[lo, hi]$, bit-packed output must
    be $[y < 0]$ with $y = \text{clamp}(\text{dot}, lo, hi)\, m + b$. For $m > 0$ and
    $r = -b/m$: if $r > hi$ the bit is always 1, if $r \le lo$ always 0, and otherwise
    $y < 0 \iff \text{dot} < \lceil r \rceil$ (dot is an integer). For $m < 0$ the channel's
    weights are negated (dot becomes $-$dot) and the clamp mirrored to $[-hi, -lo]$, which
    reduces to the case $|m|$. For $m = 0$ the bit is $[b < 0]$. Constant bits use thresholds
    ``INT32_MAX`` (always 1) and ``INT32_MIN`` (always 0). Computed in float64, where
    $-b/m$ of float32 values is close enough to decide the integer comparison exactly.

    Args:
        weights: packed OHWI uint64 weights.
        in_channels: true input channel count (to flip only real channel bits).
        multiplier, bias: float per output channel.
        clamp: ``(lo, hi)`` of the float output, if any.
        groups: channel groups of the convolution.

    Returns:
        ``(weights, thresholds)``: uint64 weights with the negative-multiplier channels
        negated (padding bits still 0), and int32 thresholds for :func:`bconv2d`.
    """
    _require_array(weights, "weights", np.uint64, 4)
    c = weights.shape[0]
    m = _per_channel(multiplier, "multiplier", c, np.float64)
    b = _per_channel(bias, "bias", c, np.float64)
    lo, hi = (-np.inf, np.inf) if clamp is None else (float(clamp[0]), float(clamp[1]))
    negative = m < 0
    lo_c = np.where(negative, -hi, lo)
    hi_c = np.where(negative, -lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = -b / np.abs(m)
    t = np.ceil(np.clip(r, _INT32_MIN, _INT32_MAX))
    t = np.where(r > hi_c, _INT32_MAX, t)
    t = np.where(r <= lo_c, _INT32_MIN, t)
    t = np.where(m == 0, np.where(b < 0, _INT32_MAX, _INT32_MIN), t)
    thresholds = t.astype(np.int32)

    per_group = in_channels // groups
    valid = np.zeros(weights.shape[3] * WORD_BITS, dtype=bool)
    valid[:per_group] = True
    mask = (valid.reshape(-1, WORD_BITS).astype(np.uint64) << np.arange(WORD_BITS, dtype=np.uint64)).sum(
        axis=1, dtype=np.uint64
    )
    flipped = weights.copy()
    flipped[negative] ^= mask
    return flipped, thresholds
