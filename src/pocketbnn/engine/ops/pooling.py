"""Float pooling on NHWC float32: max, average (padding counted or not), global average."""

from __future__ import annotations

import numpy as np

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.ops.base import F32, Op, TensorSpec, register
from pocketbnn.engine.ops.window import Window


class _Pool(Op):
    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.window = Window.from_attrs(attrs)

    def infer(self, inputs):
        self.check_inputs(inputs)
        if inputs[0].dtype != F32:
            raise ModelFormatError(f"{self.name} takes float32 input")
        n, _, _, oh, ow = self.window.output_hw(inputs[0], self.name)
        return [TensorSpec((n, oh, ow, inputs[0].shape[3]), F32)]

    def scratch(self, inputs):
        return [TensorSpec(self.window.padded_shape(inputs[0]), F32)] if self.window.padded else []

    def _padded(self, x, scratch):
        return self.window.fill_padded(x, scratch[0]) if self.window.padded else x


@register("maxpool2d")
class MaxPool2d(_Pool):
    r"""$y[n,oy,ox,c] = \max_{ky,kx} x[n, oy s_h - p_t + ky d_h, ox s_w - p_l + kx d_w, c]$;
    padded positions never win (the padded buffer is filled with $-\infty$)."""

    scratch_fill = -np.inf

    def run(self, ins, outs, scratch):
        x, out = self._padded(ins[0], scratch), outs[0]
        _, oh, ow, _ = out.shape
        for ky, kx, view in self.window.taps(x, oh, ow):
            if ky == 0 and kx == 0:
                np.copyto(out, view)
            else:
                np.maximum(out, view, out=out)


@register("avgpool2d")
class AvgPool2d(_Pool):
    r"""$y = \frac{1}{D} \sum_{\text{window}} x_{pad}$ with zero padding; $D = k_h k_w$ when
    ``count_include_pad`` (TF-SAME in PokeBNN's shortcut divides by 9), else the number of
    window positions inside the image."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.count_include_pad = bool(attrs.get("count_include_pad", True))
        self._divisors: dict[tuple[int, int], np.ndarray] = {}

    def infer(self, inputs):
        specs = super().infer(inputs)
        _, h, w, oh, ow = self.window.output_hw(inputs[0], self.name)
        # Depends on H, W only; computed once per planned input size, read by every run.
        self._divisors[(h, w)] = self._divisor(h, w, oh, ow)
        return specs

    def _divisor(self, h, w, oh, ow):
        if self.count_include_pad:
            return np.float32(self.window.kh * self.window.kw)
        inside = np.pad(np.ones((1, h, w, 1), np.float32),
                        ((0, 0), (self.window.top, self.window.bottom), (self.window.left, self.window.right), (0, 0)))
        count = sum(view for _, _, view in self.window.taps(inside, oh, ow))
        return np.ascontiguousarray(count[0])

    def run(self, ins, outs, scratch):
        divisor = self._divisors[ins[0].shape[1:3]]
        x, out = self._padded(ins[0], scratch), outs[0]
        _, oh, ow, _ = out.shape
        for ky, kx, view in self.window.taps(x, oh, ow):
            if ky == 0 and kx == 0:
                np.copyto(out, view)
            else:
                np.add(out, view, out=out)
        np.divide(out, divisor, out=out)


@register("global_avgpool")
class GlobalAvgPool(Op):
    r"""$y[n,c] = \frac{1}{HW}\sum_{h,w} x[n,h,w,c]$; output ``[N,1,1,C]`` if ``keepdims`` else ``[N,C]``."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.keepdims = bool(attrs.get("keepdims", False))

    def infer(self, inputs):
        self.check_inputs(inputs)
        if len(inputs[0].shape) != 4 or inputs[0].dtype != F32:
            raise ModelFormatError(f"global_avgpool needs a float32 NHWC input, got {inputs[0]}")
        n, _, _, c = inputs[0].shape
        return [TensorSpec((n, 1, 1, c) if self.keepdims else (n, c), F32)]

    def run(self, ins, outs, scratch):
        x, out = ins[0], outs[0]
        np.mean(x, axis=(1, 2), out=out.reshape(x.shape[0], x.shape[3]))
