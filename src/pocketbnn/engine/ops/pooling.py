"""Float pooling on NHWC float32: max, average (padding counted or not), global average.

All three run in the compiled core (``csrc/float_ops``), which handles the padding itself (no
padded copy); global average pooling is an average pool whose window is the whole image."""

from __future__ import annotations

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.ops import _backend
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

    mode: int

    def bind(self, ins, outs, scratch):
        return _backend.bind_pool2d(ins[0], outs[0], mode=self.mode, window=self.window,
                                    num_threads=self.num_threads)


@register("maxpool2d")
class MaxPool2d(_Pool):
    r"""$y[n,oy,ox,c] = \max_{ky,kx} x[n, oy s_h - p_t + ky d_h, ox s_w - p_l + kx d_w, c]$;
    padded positions never win (they are skipped)."""

    mode = _backend.POOL_MAX


@register("avgpool2d")
class AvgPool2d(_Pool):
    r"""$y = \frac{1}{D} \sum_{\text{window}} x_{pad}$ with zero padding; $D = k_h k_w$ when
    ``count_include_pad`` (TF-SAME in PokeBNN's shortcut divides by 9), else the number of
    window positions inside the image."""

    def __init__(self, attrs, params):
        super().__init__(attrs, params)
        self.count_include_pad = bool(attrs.get("count_include_pad", True))
        self.mode = _backend.POOL_AVG_INCLUDE_PAD if self.count_include_pad else _backend.POOL_AVG_EXCLUDE_PAD


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

    def bind(self, ins, outs, scratch):
        # An average pool whose one window is the whole image (compiled, threaded).
        x, out = ins[0], outs[0]
        n, h, w, c = x.shape
        return _backend.bind_pool2d(x, out.reshape(n, 1, 1, c), mode=_backend.POOL_AVG_INCLUDE_PAD,
                                    window=Window(h, w), num_threads=self.num_threads)
