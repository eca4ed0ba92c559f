"""``pocketbnn convert | run | profile | bench``: the engine's commands (``add_engine_commands``)."""

from __future__ import annotations

import argparse
import time

import numpy as np


def add_engine_commands(commands: argparse._SubParsersAction) -> None:
    """Register the engine's subcommands on the ``pocketbnn`` parser."""
    p = commands.add_parser("convert", help="convert a zoo model name or a torch checkpoint to a .pbnn file")
    p.add_argument("model", help="zoo model name (pocketbnn.models) or a file saved with torch.save(model)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=1000)
    p.set_defaults(run=_convert)
    for name, fn, text in (("run", _run, "run a .pbnn model on random input and print the outputs"),
                           ("profile", _profile, "per-op latency table of a .pbnn model")):
        p = commands.add_parser(name, help=text)
        p.add_argument("model")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--repeats", type=int, default=20)
        p.set_defaults(run=fn)
    p = commands.add_parser("bench", help="latency of a .pbnn model per thread count, optionally beside torch")
    p.add_argument("model")
    p.add_argument("--threads", default="1")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--torch-model", help="zoo name or torch checkpoint to time side by side (1 thread)")
    p.set_defaults(run=_bench)


def _load_torch_model(spec: str, num_classes: int = 1000):
    import os

    import torch

    if os.path.exists(spec):
        return torch.load(spec, weights_only=False).eval()
    from pocketbnn import models
    return models.get_model(spec, num_classes=num_classes).eval()


def _convert(args) -> int:
    import torch

    from pocketbnn import converter, engine
    model = _load_torch_model(args.model, args.num_classes)
    graph = converter.convert(model, torch.randn(1, 3, args.input_size, args.input_size))
    engine.save(graph, args.output)
    print(f"wrote {args.output}: {len(graph.nodes)} ops, "
          f"{sum(n.op == 'bconv2d' for n in graph.nodes)} binary convs")
    return 0


def _input(interp):
    shape = interp.input_shapes[0]
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _run(args) -> int:
    from pocketbnn import engine
    interp = engine.load(args.model, num_threads=args.threads)
    y = interp.run(_input(interp))
    print(np.array2string(np.asarray(y), precision=4, threshold=20))
    return 0


def _profile(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from pocketbnn import engine
    interp = engine.load(args.model, num_threads=args.threads)
    profile = interp.profile(_input(interp), repeats=args.repeats)
    table = Table("node", "op", "output", "ms", "%")
    for t in profile.ops:
        table.add_row(t.node, t.op, str(t.output_shape), f"{t.ms:.3f}", f"{100 * t.ms / profile.total_ms:.1f}")
    console = Console()
    console.print(table)
    console.print(f"total {profile.total_ms:.2f} ms; outside ops {profile.total_ms - profile.ops_ms:.3f} ms; "
                  f"by op: " + ", ".join(f"{k} {v:.2f}" for k, v in profile.by_op_type().items()))
    return 0


def _bench(args) -> int:
    from pocketbnn import engine
    for threads in (int(t) for t in args.threads.split(",")):
        interp = engine.load(args.model, num_threads=threads)
        print(f"engine {threads} thread(s): {interp.profile(_input(interp), repeats=args.repeats).total_ms:.2f} ms")
    if args.torch_model:
        import torch
        model = _load_torch_model(args.torch_model).to(memory_format=torch.channels_last)
        x = torch.from_numpy(_input(interp)).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        torch.set_num_threads(1)
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
        print(f"torch 1 thread (fp32, channels_last, inference_mode): {np.median(times):.2f} ms")
    return 0
