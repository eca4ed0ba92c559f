"""``pocketbnn summary MODEL``: the cost of a zoo model, as tables or JSON."""

from __future__ import annotations

import argparse
import inspect
import json
import sys


def _summary(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from pocketbnn.cost import summary
    from pocketbnn.cost.profile import profile
    from pocketbnn.models import get_model_builder

    config = {"num_classes": args.num_classes, "in_channels": args.in_channels}
    try:
        builder = get_model_builder(args.model)
        if "input_size" in inspect.signature(builder).parameters:
            config["input_size"] = args.input_size  # models whose layer sizes depend on it
        # Costs depend on shapes only: build and run on the meta device, no weights allocated.
        with torch.device("meta"):
            model = builder(**config)
    except ValueError as error:
        print(f"pocketbnn summary: {error}", file=sys.stderr)
        return 2
    input_size = (args.in_channels, args.input_size, args.input_size)
    options = {"fp_bits": args.fp_bits, "include_per_channel": args.include_per_channel}
    if args.json:
        cost = profile(model, input_size, **options)
        print(json.dumps(cost.to_dict(), indent=1))
    else:
        summary(model, input_size, console=Console(width=max(Console().width, 150)), **options)
    return 0


def add_summary_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``summary MODEL [--input-size N] [--num-classes K] [--in-channels C] [--json]
    [--fp-bits 16|32] [--include-per-channel]`` on ``subparsers``."""
    parser = subparsers.add_parser(
        "summary", help="MACs by precision, memory, ACE and CPU64 of a zoo model",
        description="Per-layer cost of a zoo model: MACs by (weight bits x activation bits), "
                    "memory, ACE and CPU64 (definitions: pocketbnn.cost.profile).")
    parser.add_argument("model", help="registered model name, e.g. pokebnn-1.0x")
    parser.add_argument("--input-size", type=int, default=224, help="image height = width (default 224)")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the totals and layers as JSON")
    parser.add_argument("--fp-bits", type=int, choices=(16, 32), default=16,
                        help="ACE charge per floating-point operand (16 = bf16, the paper's rule)")
    parser.add_argument("--include-per-channel", action="store_true",
                        help="size_mib counts every parameter, not only conv/linear kernels")
    parser.set_defaults(run=_summary)
    return parser
