r"""Counting: MACs by precision, memory, ACE and CPU64 of a torch model, layer by layer.

The model runs once on a zero input of batch 1 (in eval mode, without gradients) with forward
hooks on every convolution, linear layer and module that owns parameters. Definitions
(PokeBNN, Zhang et al. 2022, Table 2; reference spec §1.12):

* **MACs** of one call, per image: a convolution does
  $H_\text{out} W_\text{out} \cdot k_h k_w \cdot (C_\text{in}/g) \cdot C_\text{out}$ (grouped and
  depthwise convolutions count only their own inputs), a linear layer
  $C_\text{in} C_\text{out}$ per row. Biases, BatchNorm, activations, pooling, additions and
  multiplies by a gate are not MACs.
* **Operand bits**: a quantized layer's weight bits are its ``weight_quantizer.precision`` and its
  activation bits its ``input_quantizer.precision``; an operand without a quantizer is floating
  point, with the bits of its dtype (32 for float32). A MAC is bucketed by the pair, written
  ``"WxA"`` (weight bits x activation bits), e.g. ``"1x1"``, ``"4x4"``, ``"8x8"``, ``"32x32"``.
* **ACE** (arithmetic computation effort) $= \sum \text{MACs}\cdot b_w b_a$, where a floating-point
  operand (wider than 8 bits) is charged ``fp_bits`` (default 16: bf16 x bf16 = 256 per MAC, the
  paper's assumption that FP32 work can run as BF16; ``fp_bits=32`` charges 1024).
* **CPU64** $= \text{MACs}_{1}/64 + \text{MACs}_{\le 4}/16 + \text{MACs}_{\le 8}/8 + \text{MACs}_\text{float}$,
  the number of 64-bit-wide operations, where a MAC's width is $\max(b_w, b_a)$ (2-bit ternary
  MACs go to the 4-bit lanes).
* **Kernel bits** (PokeBNN's "size"): conv/linear kernels only, at their weight bits; biases and
  per-channel parameters excluded.
* **Memory bits** (Larq's ``summary`` convention, which reproduces Larq Zoo's published
  "Parameters" and "Memory"): every parameter at its bits (kernels at their weight bits, all
  others 32); a BatchNorm counts 2 values per channel whether affine or not (its folded scale
  and offset; gamma/beta and the running statistics are not counted separately). Buffers such
  as running statistics and quantizer bounds are not parameters and are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pocketbnn.layers_base import QuantizedLayer

__all__ = [
    "WIDTH_CLASSES", "LayerCost", "ModelCost", "ace_bits", "cpu64_lanes", "mac_key", "profile", "width_class",
]

#: Operands wider than this are floating point; their ACE charge is ``fp_bits``.
MAX_INTEGER_BITS = 8

_COUNTED_OPS = (nn.modules.conv._ConvNd, nn.Linear)
_BATCH_NORM = nn.modules.batchnorm._BatchNorm


def mac_key(weight_bits: int, input_bits: int) -> str:
    """The bucket name of a MAC: ``f"{weight_bits}x{input_bits}"``."""
    return f"{weight_bits}x{input_bits}"


#: MAC width classes by the widest operand, as PokeBNN Table 2's columns, with MACs per 64-bit op.
WIDTH_CLASSES = {"binary": 64, "int4": 16, "int8": 8, "bf16": 1, "fp32": 1}


def width_class(weight_bits: int, input_bits: int) -> str:
    r"""Table 2 column of a MAC by $m = \max(b_w, b_a)$: ``"binary"`` (m = 1), ``"int4"``
    (2-4, so ternary MACs count as 4-bit), ``"int8"`` (5-8), ``"bf16"`` (9-16), ``"fp32"``."""
    width = max(weight_bits, input_bits)
    for name, limit in (("binary", 1), ("int4", 4), ("int8", MAX_INTEGER_BITS), ("bf16", 16)):
        if width <= limit:
            return name
    return "fp32"


def cpu64_lanes(weight_bits: int, input_bits: int) -> int:
    """MACs per 64-bit operation: 64 binary, 16 up to 4-bit, 8 up to 8-bit, else 1 (float)."""
    return WIDTH_CLASSES[width_class(weight_bits, input_bits)]


def ace_bits(bits: int, fp_bits: int) -> int:
    """Bits an operand is charged in ACE: its own, or ``fp_bits`` when it is floating point."""
    return fp_bits if bits > MAX_INTEGER_BITS else bits


@dataclass
class LayerCost:
    """The cost of one module. MAC-related fields are 0/``None`` for modules without a MAC op.

    Attributes:
        name: qualified module name (``""`` for the model itself).
        kind: module class name.
        output_shape: shape of the last output, batch dimension dropped; ``None`` if never called.
        input_bits, weight_bits: operand bits of the MAC op (``None`` without one).
        params: parameter count under the Larq convention (BatchNorm = 2 per channel).
        trainable_params: elements of the module's own parameters with ``requires_grad``.
        memory_bits: ``params`` at their bits (kernels at weight bits, the rest 32).
        kernel_bits: conv/linear kernel elements x weight bits.
        macs: MACs per image, summed over calls.
        ace, cpu64: see the module docstring.
    """

    name: str
    kind: str
    output_shape: tuple[int, ...] | None = None
    input_bits: int | None = None
    weight_bits: int | None = None
    params: int = 0
    trainable_params: int = 0
    memory_bits: int = 0
    kernel_bits: int = 0
    macs: int = 0
    ace: int = 0
    cpu64: float = 0.0

    @property
    def mac_key(self) -> str | None:
        """``"WxA"`` bucket of this layer's MACs, ``None`` without a MAC op."""
        if self.weight_bits is None or self.input_bits is None:
            return None
        return mac_key(self.weight_bits, self.input_bits)


@dataclass
class ModelCost:
    """Per-layer costs and their totals. Sizes use MiB = 2^20 bytes (Larq's "MB")."""

    layers: list[LayerCost]
    input_shape: tuple[int, ...]
    fp_bits: int = 16
    include_per_channel: bool = False
    macs: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        buckets: dict[tuple[int, int], int] = {}
        for layer in self.layers:
            if layer.macs:
                pair = (layer.weight_bits, layer.input_bits)
                buckets[pair] = buckets.get(pair, 0) + layer.macs
        self.macs = {mac_key(w, a): n for (w, a), n in sorted(buckets.items(),
                                                              key=lambda kv: (max(kv[0]), kv[0]))}

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def memory_bits(self) -> int:
        return sum(layer.memory_bits for layer in self.layers)

    @property
    def kernel_bits(self) -> int:
        return sum(layer.kernel_bits for layer in self.layers)

    @property
    def size_mib(self) -> float:
        """Kernel bits (or all memory bits with ``include_per_channel``) / 8 / 2^20."""
        bits = self.memory_bits if self.include_per_channel else self.kernel_bits
        return bits / 8 / 2**20

    @property
    def memory_mib(self) -> float:
        """Larq's "Memory": all parameters at their bits, in MiB."""
        return self.memory_bits / 8 / 2**20

    @property
    def float32_mib(self) -> float:
        """The same parameters stored as float32 ("Float-32 Equivalent")."""
        return self.params * 32 / 8 / 2**20

    @property
    def compression_ratio(self) -> float:
        """Float-32 equivalent / memory."""
        return self.params * 32 / self.memory_bits if self.memory_bits else 1.0

    @property
    def macs_by_width(self) -> dict[str, int]:
        """MACs per :data:`WIDTH_CLASSES` column (PokeBNN Table 2), every class present."""
        totals = dict.fromkeys(WIDTH_CLASSES, 0)
        for key, n in self.macs.items():
            totals[width_class(*map(int, key.split("x")))] += n
        return totals

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def binary_mac_fraction(self) -> float:
        """Fraction of MACs with 1-bit weights and 1-bit activations."""
        return self.macs.get("1x1", 0) / self.total_macs if self.total_macs else 0.0

    @property
    def ace(self) -> int:
        return sum(layer.ace for layer in self.layers)

    @property
    def cpu64(self) -> float:
        return sum(layer.cpu64 for layer in self.layers)

    def to_dict(self) -> dict:
        """Machine-readable totals under stable keys, plus the per-layer records and the
        conventions used (units are stated in key names or in ``conventions``)."""
        return {
            "input_shape": list(self.input_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "size_mib": self.size_mib,
            "memory_mib": self.memory_mib,
            "float32_mib": self.float32_mib,
            "compression_ratio": self.compression_ratio,
            "macs": dict(self.macs),
            "macs_by_width": self.macs_by_width,
            "binary_mac_fraction": self.binary_mac_fraction,
            "ace": self.ace,
            "cpu64": self.cpu64,
            "conventions": {
                "mib": "2**20 bytes",
                "size": "kernels and per-channel parameters" if self.include_per_channel
                        else "conv/linear kernels only",
                "macs_key": "weight_bits x activation_bits",
                "ace_float_bits": self.fp_bits,
                "macs_by_width": "max(w, a): binary 1, int4 2-4, int8 5-8, bf16 9-16, fp32 wider",
                "cpu64": "binary/64 + int4/16 + int8/8 + (bf16 + fp32)/1",
                "rounding": "none (exact counts; CPU64 and sizes are floats)",
            },
            "layers": [
                {"name": l.name, "kind": l.kind,
                 "output_shape": None if l.output_shape is None else list(l.output_shape),
                 "input_bits": l.input_bits, "weight_bits": l.weight_bits, "params": l.params,
                 "memory_bits": l.memory_bits, "kernel_bits": l.kernel_bits, "macs": l.macs,
                 "mac_key": l.mac_key, "ace": l.ace, "cpu64": l.cpu64}
                for l in self.layers
            ],
        }


def _dtype_bits(t: Tensor) -> int:
    return t.element_size() * 8


def _weight_bits(module: nn.Module) -> int:
    quantizer = getattr(module, "weight_quantizer", None) if isinstance(module, QuantizedLayer) else None
    return getattr(quantizer, "precision", 32) if quantizer is not None else _dtype_bits(module.weight)


def _input_bits(module: nn.Module, x: Tensor) -> int:
    quantizer = getattr(module, "input_quantizer", None) if isinstance(module, QuantizedLayer) else None
    return getattr(quantizer, "precision", 32) if quantizer is not None else _dtype_bits(x)


def _static_cost(name: str, module: nn.Module) -> LayerCost:
    """Parameter counts and bits of one module (its own parameters, not its children's)."""
    cost = LayerCost(name, type(module).__name__)
    own = list(module.parameters(recurse=False))
    cost.trainable_params = sum(p.numel() for p in own if p.requires_grad)
    if isinstance(module, _BATCH_NORM):
        cost.params = 2 * module.num_features
        cost.memory_bits = cost.params * 32
        return cost
    cost.params = sum(p.numel() for p in own)
    kernel = getattr(module, "weight", None) if isinstance(module, _COUNTED_OPS) else None
    for p in own:
        bits = _weight_bits(module) if p is kernel else _dtype_bits(p)
        cost.memory_bits += p.numel() * bits
    if kernel is not None:
        cost.weight_bits = _weight_bits(module)
        cost.kernel_bits = kernel.numel() * cost.weight_bits
    return cost


def _macs_per_image(module: nn.Module, output: Tensor) -> int:
    """MACs of one call per image (batch is 1): kernel elements x output positions."""
    positions = output[0, 0].numel() if isinstance(module, nn.modules.conv._ConvNd) \
        else output[0].numel() // output.shape[-1]
    return module.weight.numel() * positions


def profile(model: nn.Module, input_size: Sequence[int] | None = None, *,
            example: Tensor | None = None, fp_bits: int = 16,
            include_per_channel: bool = False) -> ModelCost:
    """Count the cost of ``model`` by running it once.

    Args:
        model: any ``nn.Module`` of pocketbnn and torch layers.
        input_size: one input's shape without the batch dimension, e.g. ``(3, 224, 224)``.
        example: a batch-1 input tensor instead of ``input_size``.
        fp_bits: ACE charge per floating-point operand (16: bf16, the paper's rule; or 32).
        include_per_channel: ``size_mib`` counts all parameters (Larq memory) rather than
            conv/linear kernels only.

    Returns:
        A :class:`ModelCost`; layers in ``named_modules`` order, those without parameters or
        MACs omitted.

    Raises:
        ValueError: neither or both of ``input_size``/``example``, a batch other than 1, or a
            transposed convolution (not counted).
    """
    if (input_size is None) == (example is None):
        raise ValueError("give exactly one of input_size and example")
    if example is None:
        first = next(iter(model.parameters()), None)
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        device = first.device if first is not None else None
        example = torch.zeros((1, *input_size), dtype=dtype, device=device)
    if example.shape[0] != 1:
        raise ValueError(f"example must have batch size 1, got shape {tuple(example.shape)}")
    costs: dict[nn.Module, LayerCost] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            raise ValueError(f"{name}: transposed convolutions are not counted")
        owns_parameters = any(True for _ in module.parameters(recurse=False))
        if isinstance(module, _COUNTED_OPS + (_BATCH_NORM,)) or owns_parameters:
            costs.setdefault(module, _static_cost(name, module))

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        cost = costs[module]
        if isinstance(output, Tensor):
            cost.output_shape = tuple(output.shape[1:])
        if isinstance(module, _COUNTED_OPS):
            cost.input_bits = _input_bits(module, inputs[0])
            macs = _macs_per_image(module, output)
            cost.macs += macs
            w, a = cost.weight_bits, cost.input_bits
            cost.ace += macs * ace_bits(w, fp_bits) * ace_bits(a, fp_bits)
            cost.cpu64 += macs / cpu64_lanes(w, a)

    handles = [m.register_forward_hook(hook) for m in costs]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return ModelCost(list(costs.values()), tuple(example.shape[1:]), fp_bits, include_per_channel)
