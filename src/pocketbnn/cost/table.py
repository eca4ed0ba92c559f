"""Rendering: a :class:`~pocketbnn.cost.profile.ModelCost` as rich tables. Formatting only."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from pocketbnn.cost.profile import ModelCost, ace_bits, cpu64_lanes

__all__ = ["layers_table", "precision_table", "render", "summary_table"]


def _shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "x".join(map(str, shape))


def _bits(bits: int | None) -> str:
    return "-" if bits is None else str(bits)


def layers_table(cost: ModelCost) -> Table:
    """One row per module with parameters or MACs, then a total row."""
    table = Table(title="Layers", show_footer=True)
    table.add_column("Layer", footer="Total")
    table.add_column("Type")
    table.add_column("Output")
    table.add_column("In bits", justify="right")
    table.add_column("W bits", justify="right")
    table.add_column("Params", justify="right", footer=f"{cost.params:,}")
    table.add_column("Memory (KiB)", justify="right", footer=f"{cost.memory_bits / 8192:,.2f}")
    table.add_column("MACs", justify="right", footer=f"{cost.total_macs:,}")
    table.add_column("WxA", justify="center")
    table.add_column("ACE", justify="right", footer=f"{cost.ace:,}")
    table.add_column("CPU64", justify="right", footer=f"{cost.cpu64:,.0f}")
    for l in cost.layers:
        table.add_row(l.name or "(model)", l.kind, _shape(l.output_shape), _bits(l.input_bits),
                      _bits(l.weight_bits), f"{l.params:,}", f"{l.memory_bits / 8192:,.2f}",
                      f"{l.macs:,}" if l.macs else "-", l.mac_key or "-",
                      f"{l.ace:,}" if l.macs else "-", f"{l.cpu64:,.0f}" if l.macs else "-")
    return table


def precision_table(cost: ModelCost) -> Table:
    """MACs, ACE and CPU64 per ``"WxA"`` bucket."""
    table = Table(title=f"MACs by precision (float operands charged {cost.fp_bits} bits in ACE)")
    for name in ("WxA", "MACs", "ACE / MAC", "ACE", "MACs / 64-bit op", "CPU64"):
        table.add_column(name, justify="right")
    for key, macs in cost.macs.items():
        w, a = map(int, key.split("x"))
        per_mac = ace_bits(w, cost.fp_bits) * ace_bits(a, cost.fp_bits)
        lanes = cpu64_lanes(w, a)
        table.add_row(key, f"{macs:,}", str(per_mac), f"{macs * per_mac:,}", str(lanes),
                      f"{macs / lanes:,.0f}")
    return table


def summary_table(cost: ModelCost) -> Table:
    """Larq's summary rows plus ACE and CPU64, each with its unit."""
    table = Table(title="Summary", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    size_rule = "all parameters" if cost.include_per_channel else "conv/linear kernels"
    rows = [
        ("Input shape", _shape(cost.input_shape)),
        ("Total params (BatchNorm = 2/channel)", f"{cost.params:,}"),
        ("Trainable params", f"{cost.trainable_params:,}"),
        (f"Model size, {size_rule} (MiB = 2^20 B)", f"{cost.size_mib:.3f}"),
        ("Memory, all parameters (MiB)", f"{cost.memory_mib:.3f}"),
        ("Float-32 equivalent (MiB)", f"{cost.float32_mib:.3f}"),
        ("Compression ratio of memory", f"{cost.compression_ratio:.2f}"),
        ("Number of MACs", f"{cost.total_macs:,}"),
        ("Ratio of MACs that are binary (1x1)", f"{cost.binary_mac_fraction:.4f}"),
        (f"ACE (float = {cost.fp_bits}x{cost.fp_bits} bits)", f"{cost.ace:,} = {cost.ace / 1e9:.4f}e9"),
        ("CPU64 (64-bit ops)", f"{cost.cpu64:,.0f} = {cost.cpu64 / 1e6:.4f}e6"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def render(cost: ModelCost) -> Group:
    """All three tables, ready for ``rich.console.Console.print``."""
    return Group(layers_table(cost), precision_table(cost), summary_table(cost))
