"""The ``pocketbnn`` command line."""

from __future__ import annotations

import argparse
import sys


def _info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    import pocketbnn
    from pocketbnn import kernels

    console = Console()
    console.print(f"pocketbnn {pocketbnn.__version__}; word size {kernels.WORD_BITS} bits; "
                  f"kernels run as [bold]{kernels.active_isa()}[/bold] "
                  f"(available: {', '.join(kernels.available_isas())})")
    table = Table("op", "micro-kernel", "ISA", "on this CPU", "selected")
    for k in kernels.list_ukernels():
        selected = kernels.selected_ukernel(k["op"]) == k["name"]
        table.add_row(k["op"], k["name"], k["isa"], "yes" if k["available"] else "no",
                      "*" if selected else "")
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pocketbnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="version, CPU features and the selected micro-kernels")
    info.set_defaults(run=_info)
    from pocketbnn.cost.cli import add_summary_command; add_summary_command(commands)
    from pocketbnn.training.cli import add_training_commands
    add_training_commands(commands)
    from pocketbnn.engine.cli import add_engine_commands; add_engine_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
