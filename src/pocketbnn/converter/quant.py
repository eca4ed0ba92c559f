r"""Lowering of quantizers and quantized weights.

Activation quantizers become engine ops: a binarizer (SteSign, ApproxSign, SwishSign, or an
``IntQuantizer`` with 1 bit, half-shift) becomes ``sign`` with its value $a$ ($\pm a$ out,
$a = 0.5/s$ for PokeBNN's $\pm B/2$); an ``IntQuantizer`` with b > 1 bits becomes ``fake_quant``
with the per-channel scale $s = Q/(B + \epsilon)$ computed by torch's own float32 arithmetic.

Weights are the values the layer's op uses, ``layer.quantized_weight()``. Weights of 2 to 8
bits that are integer multiples of a per-output-channel step are stored as codes and the step
(``weights`` + ``weights_scale``): $w = q\,\Delta_o$, $\Delta_o = \max|w_o| / (2^{b-1}-1)$; codes
of up to 4 bits two per byte (``int4_pairs``), wider ones as int8.
Binary weights stay float ($\pm s_o$) until the binarize pass packs them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from pocketbnn import activations, quantizers
from pocketbnn.converter.errors import ConversionError
from pocketbnn.converter.lower import Lowering, Value
from pocketbnn.engine.ops.base import int4_pairs

_SIGN_QUANTIZERS = (quantizers.SteSign, quantizers.ApproxSign, quantizers.SwishSign)


def lower_activation_quantizer(lw: Lowering, q: nn.Module | None, x: Value, example: Tensor) -> Value:
    """Emit what ``q`` does to ``x`` (whose value on the example input is ``example``)."""
    if q is None or isinstance(q, quantizers.NoOp):
        return x
    if isinstance(q, activations.LearnableThresholdSign):
        threshold = q.threshold.detach().float()
        shifted = lw.emit("scale_shift", [x], x.shape, {"channels": x.channels}, {"shift": -threshold.numpy()})
        return lower_activation_quantizer(lw, q.quantizer, shifted,
                                          example - threshold.view(1, -1, *([1] * (x.rank - 2))))
    if isinstance(q, _SIGN_QUANTIZERS):
        return lw.emit("sign", [x], x.shape, {"scale": 1.0})
    if isinstance(q, quantizers.IntQuantizer):
        return _lower_int(lw, q, x, example)
    raise lw.fail(f"activation quantizer {type(q).__name__}")


def _lower_int(lw: Lowering, q: quantizers.IntQuantizer, x: Value, example: Tensor) -> Value:
    if not q.enabled:
        return x
    bound = q.bound(example).detach().to(torch.float32)
    if bool((bound == -1).all()):
        return x
    bits = q.precision
    channels = x.channels
    if q.mode == "signed_half_shift":
        if bits != 1:
            raise lw.fail(f"{bits}-bit half-shift quantizer")
        scale = quantizers._scale(1.0, bound)
        value = (torch.tensor(0.5) / scale).flatten()
        if not bool((value == value[0]).all()):
            raise lw.fail("binarizer with a different value per channel")
        return lw.emit("sign", [x], x.shape, {"scale": float(value[0])})
    qmax = 2.0 ** (bits - 1) - 1.0 if q.mode == "signed" else 2.0 ** bits - 1.0
    levels = qmax if q.mode == "signed" else 2.0 ** bits
    scale = quantizers._scale(levels, bound).flatten()
    scale = np.ascontiguousarray(np.broadcast_to(scale.numpy(), (channels,)), np.float32)
    return lw.emit("fake_quant", [x], x.shape, {"mode": q.mode, "qmax": qmax, "channels": channels},
                   {"scale": scale})


def weight_params(layer: nn.Module, weight: Tensor, out_axis_last: np.ndarray) -> dict[str, np.ndarray]:
    """Parameters ``weights`` (+ ``weights_scale``) for a weight already laid out for the
    engine (``out_axis_last``: output channels on the last axis)."""
    bits = getattr(layer, "weight_precision", 32)
    if 2 <= bits <= 8:
        codes, step = _int_codes(out_axis_last, bits)
        if codes is not None:
            return {"weights": int4_pairs(codes) if bits <= 4 else codes, "weights_scale": step}
    return {"weights": out_axis_last.astype(np.float32)}


def _int_codes(w: np.ndarray, bits: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    qmax = 2 ** (bits - 1) - 1
    flat = w.reshape(-1, w.shape[-1]).astype(np.float64)
    step = np.abs(flat).max(axis=0) / qmax
    step = np.where(step == 0, 1.0, step).astype(np.float32)
    codes = np.round(flat / step)
    if np.abs(codes).max() > qmax or not np.allclose(codes * step, flat, rtol=1e-5, atol=1e-12):
        return None, None
    return codes.astype(np.int8).reshape(w.shape), step


def quantized_weight(layer: nn.Module) -> Tensor:
    """The weight the layer's op uses (eval mode), detached float32."""
    w = layer.quantized_weight() if hasattr(layer, "quantized_weight") else layer.weight
    if not isinstance(w, Tensor):
        raise ConversionError(f"{type(layer).__name__} has no weight tensor")
    return w.detach().to(torch.float32)
