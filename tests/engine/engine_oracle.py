"""Straight-from-the-definition numpy binary ops, an oracle for the engine's compiled path."""

from __future__ import annotations

import numpy as np

from pocketbnn.kernels import pack_bits, unpack_bits


def unpack_signs(packed: np.ndarray, channels: int) -> np.ndarray:
    return unpack_bits(np.ascontiguousarray(packed), channels).astype(np.float64)


def bconv2d_dot(x_signs, w_signs, *, window, groups, pad_value):
    """Integer ±1 dot products: x_signs NHWC ±1, w_signs OHWI ±1 -> [N, OH, OW, O]."""
    w = window
    fill = 1.0 if pad_value == 1 else 0.0
    xp = np.pad(x_signs, ((0, 0), (w.top, w.bottom), (w.left, w.right), (0, 0)), constant_values=fill)
    n, hp, wp, cin = xp.shape
    o, kh, kw, cg = w_signs.shape
    oh = (hp - w.dh * (kh - 1) - 1) // w.sh + 1
    ow = (wp - w.dw * (kw - 1) - 1) // w.sw + 1
    og = o // groups
    out = np.zeros((n, oh, ow, o))
    for ky in range(kh):
        for kx in range(kw):
            view = xp[:, ky * w.dh:ky * w.dh + (oh - 1) * w.sh + 1:w.sh, kx * w.dw:kx * w.dw + (ow - 1) * w.sw + 1:w.sw]
            for g in range(groups):
                out[..., g * og:(g + 1) * og] += view[..., g * cg:(g + 1) * cg] @ w_signs[g * og:(g + 1) * og, ky, kx].T
    return out


class NumpyBackend:
    """Implements ``pocketbnn.engine.ops._backend``'s binary functions in numpy."""

    @staticmethod
    def prepare_bconv2d(weights, in_channels_per_group, groups):
        o, kh, kw, _ = weights.shape
        signs = unpack_signs(weights.reshape(-1, weights.shape[-1]), in_channels_per_group)
        return {"signs": signs.reshape(o, kh, kw, in_channels_per_group), "cg": in_channels_per_group, "groups": groups}

    @staticmethod
    def bconv2d(x, kernel, out, *, window, pad_value, clamp, multiplier, bias, thresholds, num_threads):
        cin = kernel["cg"] * kernel["groups"]
        dot = bconv2d_dot(unpack_signs(x, cin), kernel["signs"], window=window, groups=kernel["groups"],
                          pad_value=pad_value)
        dot = np.clip(dot, clamp[0], clamp[1])
        if thresholds is None:
            y = dot.astype(np.float32) * multiplier + bias
            np.copyto(out, y.reshape(out.shape))
        else:
            bits = np.where(dot < thresholds, -1.0, 1.0).astype(np.float32)
            np.copyto(out, pack_bits(np.ascontiguousarray(bits)).reshape(out.shape))

    @staticmethod
    def bmaxpool2d(x, out, *, window, num_threads):
        w = window
        xp = np.pad(x, ((0, 0), (w.top, w.bottom), (w.left, w.right), (0, 0)), constant_values=~np.uint64(0))
        oh, ow = out.shape[1:3]
        acc = np.full(out.shape, ~np.uint64(0), np.uint64)
        for _, _, view in w.taps(xp, oh, ow):
            acc &= view
        np.copyto(out, acc)
