"""Output sizes and padding of windowed ops, TensorFlow's VALID / SAME rules (as LCE)."""

from __future__ import annotations


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """``v`` -> ``(v, v)``; checks both entries are ints >= 1."""
    if type(value) is int and value >= 1:
        return value, value
    pair_ = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair_) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair_):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair_


def window_geometry(size: int, kernel: int, stride: int, dilation: int, padding,
                    axis: int = 0) -> tuple[int, int]:
    r"""(output size, padding before) along one axis.

    With the effective kernel $e = (k - 1) d + 1$: VALID gives $\lfloor (n - e) / s \rfloor + 1$
    outputs and no padding; SAME gives $\lceil n / s \rceil$ outputs and pads
    $\max((o - 1) s + e - n, 0)$ in total, the smaller half before. Explicit padding
    ``(top, bottom, left, right)`` gives $\lfloor (n + p_0 + p_1 - e) / s \rfloor + 1$ outputs
    (``axis`` 0 uses top/bottom, 1 left/right).
    """
    effective = (kernel - 1) * dilation + 1
    if not isinstance(padding, str):
        pads = tuple(padding) if isinstance(padding, (tuple, list)) else ()
        if len(pads) != 4 or not all(type(p) is int and p >= 0 for p in pads):
            raise ValueError(f"padding must be 'valid', 'same' or 4 ints >= 0 (top, bottom, left, right), got {padding!r}")
        before, after = pads[2 * axis], pads[2 * axis + 1]
        span = size + before + after - effective
        if span < 0:
            raise ValueError(f"padded input size {size + before + after} is smaller than the (dilated) kernel {effective}")
        return span // stride + 1, before
    if padding == "valid":
        if size < effective:
            raise ValueError(
                f"input size {size} is smaller than the (dilated) kernel {effective}; "
                "VALID padding gives no output"
            )
        return (size - effective) // stride + 1, 0
    if padding == "same":
        out = -(-size // stride)
        return out, max((out - 1) * stride + effective - size, 0) // 2
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
