"""``pocketbnn train``, ``pocketbnn eval`` and ``pocketbnn demo``.

Only the argument parsers live at module level; torch is imported when a command runs. Every
:class:`~pocketbnn.training.trainer.TrainConfig` field is a flag (``batch_size`` ->
``--batch-size``), documented from the class docstring, so the two never disagree.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_training_commands"]


def _config_fields() -> list[tuple[str, Any, str]]:
    """(name, default, help) of each TrainConfig field, help from its ``Attributes:`` entry."""
    import dataclasses

    from pocketbnn.training.config import TrainConfig

    doc = TrainConfig.__doc__ or ""
    helps: dict[str, str] = {}
    for match in re.finditer(r"^ {8}([\w, ]+): (.+?)(?=^ {8}[\w, ]+: |\Z)", doc, re.M | re.S):
        for name in match.group(1).split(", "):
            helps[name] = " ".join(match.group(2).split())
    return [(f.name, f.default, helps.get(f.name, "")) for f in dataclasses.fields(TrainConfig)]


def _add_config_flags(parser: argparse.ArgumentParser, overrides: dict[str, Any] | None = None) -> None:
    group = parser.add_argument_group("training hyper-parameters (TrainConfig)")
    for name, default, help_text in _config_fields():
        default = (overrides or {}).get(name, default)
        flag = "--" + name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS,
                                  "help": f"{help_text} (default: {default})"}
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif isinstance(default, tuple):
            group.add_argument(flag, nargs=len(default), type=type(default[0]), **kwargs)
        elif default is None:
            group.add_argument(flag, type=int, **kwargs)
        else:
            group.add_argument(flag, type=type(default), **kwargs)


def _config_from(args: argparse.Namespace, base: dict[str, Any] | None = None):
    from pocketbnn.training.config import TrainConfig

    values = dict(base or {})
    values.update({name: getattr(args, name) for name, _, _ in _config_fields() if hasattr(args, name)})
    return TrainConfig.from_dict(values)


def _parse_model_args(pairs: list[str]) -> dict[str, Any]:
    """``["widths=(32, 64)", "binary=False"]`` -> ``{"widths": (32, 64), "binary": False}``;
    values are Python literals, or plain strings when they do not parse as one."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--model-arg expects KEY=VALUE, got {pair!r}")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    return kwargs


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _dataset_errors(command):
    """Report a missing dataset as one line (it says how to get the data), exit status 2."""

    def run(args: argparse.Namespace) -> int:
        from pocketbnn.training.data import DatasetNotFoundError

        try:
            return command(args)
        except DatasetNotFoundError as error:
            print(f"pocketbnn {args.command}: {error}", file=sys.stderr)
            return 2

    return run


def _train(args: argparse.Namespace) -> int:
    import torch

    from pocketbnn.training.checkpoint import load_model
    from pocketbnn.training.data import load_dataset
    from pocketbnn.models import get_model
    from pocketbnn.training.config import write_config
    from pocketbnn.training.trainer import Trainer

    _set_threads(args.threads)
    config = _config_from(args)
    data = load_dataset(args.dataset)
    kwargs = {"num_classes": data.num_classes, "in_channels": data.train.shape[0], **_parse_model_args(args.model_arg)}
    torch.manual_seed(config.seed)
    model = get_model(args.model, **kwargs)
    teacher = load_model(args.teacher) if args.teacher else None
    out = Path(args.out or f"runs/{args.model}")
    trainer = Trainer(model, data, config, out_dir=out, teacher=teacher, resume=args.resume,
                      model_spec={"name": args.model, "kwargs": kwargs}, device=args.device)
    if trainer.dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out / "config.json", config, model=args.model, model_kwargs=kwargs,
                     dataset=args.dataset, teacher=args.teacher)
    result = trainer.fit()
    if trainer.dist.is_main:
        print(f"{args.model} on {data.name}: test accuracy {result['test_accuracy']:.4f}, "
              f"{result['steps']} steps in {result['seconds']:.0f} s; checkpoint {out / 'checkpoint.pt'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    from pocketbnn.training.augment import Augment
    from pocketbnn.training.checkpoint import load_checkpoint, load_model
    from pocketbnn.training.data import load_dataset
    from pocketbnn.training.trainer import evaluate

    _set_threads(args.threads)
    state = load_checkpoint(args.checkpoint)
    model = load_model(args.checkpoint)
    data = load_dataset(args.dataset or state["dataset"])
    norm = state["normalization"]
    augment = Augment(torch.tensor(norm["mean"]), torch.tensor(norm["std"]))
    metrics = evaluate(model, data.test, augment, batch_size=args.batch_size)
    record = {"checkpoint": str(args.checkpoint), "dataset": data.name, "images": len(data.test),
              "test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"]}
    print(json.dumps(record) if args.json else
          f"{data.name}: test accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f} "
          f"({len(data.test)} images)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pocketbnn.training.demo import run_demo

    _set_threads(args.threads)
    run_demo(Path(args.out), dataset=args.dataset, epochs=args.epochs, progress=args.progress)
    return 0


def add_training_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train``, ``eval`` and ``demo`` on the ``pocketbnn`` sub-command parser."""
    train = subparsers.add_parser(
        "train", help="train a zoo model on a dataset (also under torchrun)",
        description="Train MODEL (a registered zoo name, e.g. quicknet_mini) on a dataset. Re-running "
                    "with the same --out resumes from its checkpoint. Distributed: "
                    "torchrun --nproc-per-node N -m pocketbnn.cli train ...")
    train.add_argument("model", help="registered model name (pocketbnn.models.list_models())")
    train.add_argument("--dataset", default="auto",
                       help="NAME or NAME:PATH: auto, fashion_mnist, digits, idx, cifar10, image_folder, synthetic")
    train.add_argument("--out", help="output directory (default runs/MODEL)")
    train.add_argument("--teacher", help="checkpoint of a model to distil from (written by pocketbnn train)")
    train.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="builder keyword, value as a Python literal, e.g. --model-arg 'widths=(64, 128)'")
    train.add_argument("--device", default="cpu")
    train.add_argument("--threads", type=int, help="torch intra-op threads")
    train.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue from OUT/checkpoint.pt when present")
    _add_config_flags(train)
    train.set_defaults(run=_dataset_errors(_train))

    evaluate = subparsers.add_parser("eval", help="test accuracy of a checkpoint",
                                     description="Accuracy and loss of a checkpoint on its dataset's test split.")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--dataset", help="NAME[:PATH] (default: the dataset it was trained on)")
    evaluate.add_argument("--batch-size", type=int, default=500)
    evaluate.add_argument("--threads", type=int)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_dataset_errors(_eval))

    demo = subparsers.add_parser(
        "demo", help="train a small BNN end to end and write a report",
        description="Train a QuickNet-style BNN on Fashion-MNIST (or the bundled digits), print its "
                    "cost, and write a report directory (markdown + plots).")
    demo.add_argument("--out", default="pocketbnn-demo", help="report directory (default ./pocketbnn-demo)")
    demo.add_argument("--dataset", default="auto", help="auto (Fashion-MNIST if installed, else digits), ...")
    demo.add_argument("--epochs", type=int, help="override the recipe's epochs")
    demo.add_argument("--threads", type=int, default=1,
                      help="torch intra-op threads (default 1: on a busy machine OpenMP threads that spin "
                           "while waiting cost far more than they give; see docs/training.md)")
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                      help="progress bars (default: on a terminal)")
    demo.set_defaults(run=_dataset_errors(_demo))
