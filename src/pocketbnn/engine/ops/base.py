"""What every engine op shares: the op interface, tensor specs, attribute/parameter checks.

An op is built once per node from its attributes and parameters (validated there, so a
malformed file fails at load time), infers output specs from input specs, declares the scratch
buffers it needs, and runs into preallocated outputs::

    op = OPS[node.op](node.attrs, node.params)
    out_specs = op.infer(in_specs)
    op.run(ins, outs, scratch)      # scratch: arrays shaped as op.scratch(in_specs) says
    call = op.bind(ins, outs, scratch); call()   # the same, arguments resolved once

The executor binds every step once per workspace (its buffers never move) and its hot loop
just calls the bound callables. An op overrides ``run`` or ``bind`` (each defaults to the other).

Op objects are read-only after construction, so one op serves concurrent runs; all mutable
state lives in the per-run buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np

from pocketbnn.engine.errors import ModelFormatError

OPS: dict[str, type[Op]] = {}
_MAX_DIM = 1 << 31


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of a value; ``channels`` is the unpacked last-axis length of a packed
    (uint64) value, whose last axis counts words."""

    shape: tuple[int, ...]
    dtype: np.dtype
    channels: int | None = None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


F32 = np.dtype(np.float32)
U64 = np.dtype(np.uint64)


def register(name: str) -> Callable[[type[Op]], type[Op]]:
    """Class decorator: make an op available to graphs as ``"op": name``."""

    def add(cls: type[Op]) -> type[Op]:
        if name in OPS:
            raise ValueError(f"op {name!r} registered twice")
        cls.name = name
        OPS[name] = cls
        return cls

    return add


class Op:
    """Base class of engine ops; see the module docstring for the life cycle."""

    name: ClassVar[str] = ""
    num_inputs: ClassVar[int] = 1
    num_threads: int = 1
    # A channel map another op can apply to this op's input while adding it as a residual
    # (``can_fuse_mapped_add``): "tile" / "zeropad", or None.
    residual_map: ClassVar[str | None] = None

    def __init__(self, attrs: dict[str, Any], params: dict[str, np.ndarray]) -> None:
        self.attrs, self.params = attrs, params

    def check_inputs(self, inputs: list[TensorSpec]) -> None:
        if len(inputs) != self.num_inputs:
            raise ModelFormatError(f"{self.name} takes {self.num_inputs} inputs, got {len(inputs)}")

    def infer(self, inputs: list[TensorSpec]) -> list[TensorSpec]:
        raise NotImplementedError

    def scratch(self, inputs: list[TensorSpec]) -> list[TensorSpec]:
        """Scratch buffers a run needs; their content is undefined between runs unless an op
        writes the same parts every time (padding borders are never written, so stay as
        initialised: zero, or ``scratch_fill``)."""
        return []

    scratch_fill: ClassVar[float] = 0.0

    def run(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray]) -> None:
        if type(self).bind is Op.bind:
            raise NotImplementedError(f"{type(self).__name__} overrides neither run nor bind")
        self.bind(ins, outs, scratch)()

    def bind(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray]) -> Callable[[], None]:
        """A zero-argument callable running the op on these buffers (which must stay put)."""
        return partial(self.run, ins, outs, scratch)

    def can_fuse_relu(self, inputs: list[TensorSpec]) -> bool:
        """Whether :meth:`bind_relu` can apply a following ReLU inside this op's kernel."""
        return False

    def bind_relu(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray]) -> Callable[[], None]:
        r"""As :meth:`bind`, with $\max(y, 0)$ applied to the output (if :meth:`can_fuse_relu`)."""
        raise NotImplementedError

    def can_fuse_scale_shift(self, inputs: list[TensorSpec]) -> bool:
        """Whether :meth:`bind_scale_shift` can apply a following per-channel scale and shift."""
        return False

    def bind_scale_shift(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray],
                         affine: Op) -> Callable[[], None]:
        r"""As :meth:`bind`, with $y \cdot a_c + b_c$ applied to the output, ``a`` and ``b`` being
        the ``scale`` and ``shift`` of ``affine`` (a scale_shift op; if :meth:`can_fuse_scale_shift`)."""
        raise NotImplementedError

    def channel_stage(self, channels: int) -> tuple | None:
        """This op as one stage of the compiled per-channel kernel (``_backend.channel_stage``),
        or None. A stage op can also take an add of its input in its pass (:meth:`bind_channel`),
        and an SE gate's mul can apply it before the gate (``Mul.bind_gate``)."""
        return None

    def bind_channel(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray], *,
                     addend: np.ndarray | None) -> Callable[[], None]:
        """As :meth:`bind` on ``ins[0] + addend`` (if :meth:`channel_stage` is not None)."""
        raise NotImplementedError

    def pass_map(self, inputs: list[TensorSpec]) -> int | None:
        """If this op is one pass of the per-channel kernel over a map (:meth:`channel_pass`),
        the map's position among ``inputs``; else None."""
        return None

    def channel_pass(self, ins: list[np.ndarray], *, before: Op | None = None,
                     affine: Op | None = None) -> tuple[np.ndarray, list]:
        """The map this op's pass reads and the ``kernels.ChannelStage`` s it applies to it, the
        stage of ``before`` (an op whose output only this one read) first and a following
        scale_shift ``affine`` folded into the last (if :meth:`pass_map` is not None)."""
        raise NotImplementedError

    def can_fuse_epilogue(self, inputs: list[TensorSpec]) -> bool:
        """Whether :meth:`bind_epilogue` can run a per-channel pass on this op's output."""
        return False

    def bind_epilogue(self, ins: list[np.ndarray], out: np.ndarray, scratch: list[np.ndarray], *,
                      residual: np.ndarray | None, residual_map: str | None, addend: np.ndarray | None,
                      addend_map: str | None, stages: list) -> Callable[[], None]:
        """As :meth:`bind` (with ``residual`` as :meth:`bind_mapped_residual`, if not None), then
        ``addend`` added (through the channel map ``addend_map``, if not None) and ``stages``
        applied to each block of the output as it is written, into ``out`` (if
        :meth:`can_fuse_epilogue`)."""
        raise NotImplementedError

    def can_fuse_add(self, inputs: list[TensorSpec]) -> bool:
        """Whether :meth:`bind_residual` can add a same-shape array to this op's output."""
        return False

    def bind_residual(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray],
                      residual: np.ndarray) -> Callable[[], None]:
        """As :meth:`bind`, with ``residual`` added to the output (if :meth:`can_fuse_add`)."""
        raise NotImplementedError

    def can_fuse_mapped_add(self, inputs: list[TensorSpec], residual: TensorSpec, residual_map: str) -> bool:
        """Whether :meth:`bind_mapped_residual` can add ``residual``, a channel tile or zero-pad
        (``residual_map``, the :class:`ChannelTile` / :class:`ChannelZeroPad` maps) of it, to
        this op's output."""
        return False

    def bind_mapped_residual(self, ins: list[np.ndarray], outs: list[np.ndarray], scratch: list[np.ndarray],
                             residual: np.ndarray, residual_map: str) -> Callable[[], None]:
        """As :meth:`bind`, with ``residual`` mapped onto the output channels and added (if
        :meth:`can_fuse_mapped_add`)."""
        raise NotImplementedError


# --- attribute and parameter checks (raise ModelFormatError naming the field) -----------------

def attr_int(attrs: dict, key: str, lo: int = 0, hi: int = _MAX_DIM, default: int | None = None) -> int:
    value = attrs.get(key, default)
    if type(value) is not int or not lo <= value <= hi:
        raise ModelFormatError(f"attribute {key!r} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def attr_ints(attrs: dict, key: str, n: int, lo: int = 0, default: list | None = None) -> tuple[int, ...]:
    value = attrs.get(key, default)
    if (not isinstance(value, list) or len(value) != n
            or not all(type(v) is int and lo <= v <= _MAX_DIM for v in value)):
        raise ModelFormatError(f"attribute {key!r} must be {n} integers >= {lo}, got {value!r}")
    return tuple(value)


def attr_float(attrs: dict, key: str, default: float | None = None) -> float:
    value = attrs.get(key, default)
    if type(value) not in (int, float) or not np.isfinite(value):
        raise ModelFormatError(f"attribute {key!r} must be a finite number, got {value!r}")
    return float(value)


def attr_choice(attrs: dict, key: str, choices: tuple, default: Any = None) -> Any:
    value = attrs.get(key, default)
    if value not in choices:
        raise ModelFormatError(f"attribute {key!r} must be one of {choices}, got {value!r}")
    return value


def param(params: dict, role: str, dtype: Any, shape: tuple | None = None, ndim: int | None = None,
          optional: bool = False) -> np.ndarray | None:
    """The parameter ``role`` as an aligned C-contiguous array, checked for dtype and shape."""
    array = params.get(role)
    if array is None:
        if optional:
            return None
        raise ModelFormatError(f"missing parameter {role!r}")
    if array.dtype != np.dtype(dtype):
        raise ModelFormatError(f"parameter {role!r} must be {np.dtype(dtype)}, got {array.dtype}")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise ModelFormatError(f"parameter {role!r} must have shape {tuple(shape)}, got {tuple(array.shape)}")
    if ndim is not None and array.ndim != ndim:
        raise ModelFormatError(f"parameter {role!r} must have {ndim} axes, got shape {tuple(array.shape)}")
    return np.require(array, requirements=["C", "A"])


def channel_vector(params: dict, role: str, channels: int, default: float | None = None) -> np.ndarray:
    """A float32 per-channel parameter of length ``channels`` (or 1, broadcast); ``default``
    fills it when absent."""
    array = params.get(role)
    if array is None and default is not None:
        return np.full(channels, default, np.float32)
    array = param(params, role, np.float32, ndim=1)
    if array.shape[0] not in (1, channels):
        raise ModelFormatError(f"parameter {role!r} has {array.shape[0]} values for {channels} channels")
    return np.ascontiguousarray(np.broadcast_to(array, (channels,)))


def float_weights(params: dict, role: str, ndim: int) -> np.ndarray:
    r"""A float32 weight tensor, stored either as float32 or quantized.

    Quantized storage is ``<role>`` as codes $q$ plus ``<role>_scale`` float32 per output
    channel (last axis) $s$; the weight used is $w = q \cdot s$, computed once here. Codes are
    int8, one per weight, or uint8 holding two 4-bit codes (``int4_pairs``): the last axis then
    has ``ceil(C / 2)`` bytes for the ``C`` values of ``<role>_scale``.
    """
    quantized = weight_codes(params, role, ndim)
    if quantized is not None:
        codes, scale = quantized
        return codes.astype(np.float32) * scale
    return param(params, role, np.float32, ndim=ndim)


def weight_codes(params: dict, role: str, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The int8 codes $q$ (4-bit ones widened) and per-output-channel scale $s$ of a quantized
    weight tensor (``float_weights``), or None if it is stored as float32."""
    array = params.get(role)
    if array is None or array.dtype not in (np.int8, np.uint8):
        return None
    codes = param(params, role, array.dtype, ndim=ndim)
    scale = param(params, f"{role}_scale", np.float32, ndim=1)
    if array.dtype == np.uint8:
        if codes.shape[-1] != (scale.shape[0] + 1) // 2:
            raise ModelFormatError(f"parameter {role!r}: {codes.shape[-1]} bytes of 4-bit codes per row "
                                   f"for {scale.shape[0]} channels")
        codes = int4_codes(codes, scale.shape[0])
    return codes, channel_vector(params, f"{role}_scale", codes.shape[-1])


def int4_pairs(codes: np.ndarray) -> np.ndarray:
    """int8 codes in [-8, 7] packed two per byte along the last axis: channel 2j in the low
    nibble of byte j, 2j + 1 in the high one (two's complement; a last odd channel's high
    nibble 0)."""
    if codes.shape[-1] % 2:
        codes = np.concatenate([codes, np.zeros_like(codes[..., :1])], axis=-1)
    nibbles = codes.astype(np.uint8) & 0x0F
    return np.ascontiguousarray(nibbles[..., 0::2] | (nibbles[..., 1::2] << 4))


def int4_codes(pairs: np.ndarray, channels: int) -> np.ndarray:
    """The int8 codes of ``int4_pairs``, ``channels`` of them along the last axis."""
    nibbles = np.stack([pairs & 0x0F, pairs >> 4], axis=-1).reshape(*pairs.shape[:-1], -1)[..., :channels]
    return (nibbles.astype(np.int8) ^ 8) - 8


def same_rank_4d(spec: TensorSpec, what: str) -> tuple[int, int, int, int]:
    if len(spec.shape) != 4:
        raise ModelFormatError(f"{what} needs a 4-D NHWC input, got shape {spec.shape}")
    return spec.shape  # type: ignore[return-value]


def pooled_size(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    r"""Output length of a window op: $\lfloor (n + p_0 + p_1 - d(k-1) - 1) / s \rfloor + 1$."""
    span = size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        raise ModelFormatError(f"window {kernel} (dilation {dilation}) larger than padded input {size + before + after}")
    return span // stride + 1
