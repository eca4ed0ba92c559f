"""Which instruction set the compiled kernels use.

The core picks, per op, the micro-kernel of the richest ISA this CPU supports. The
environment variable ``POCKETBNN_ISA`` (``reference``, ``portable``, ``avx2`` or
``avx512vpopcnt``) or :func:`set_isa` forces a choice, so every path can be tested on one
machine. ``reference`` selects the straightforward test oracles. Forcing an ISA the CPU lacks
raises ``RuntimeError``; nothing falls back silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pocketbnn import _core


def active_isa() -> str:
    """Name of the ISA the kernels are selected for."""
    return _core.active_isa()


def available_isas() -> list[str]:
    """ISAs this CPU can run, plainest first."""
    return _core.available_isas()


def set_isa(name: str) -> None:
    """Select kernels for ISA ``name`` in the whole process.

    Raises:
        ValueError: ``name`` is not an ISA name.
        RuntimeError: this CPU lacks the ISA.
    """
    _core.set_isa(name)


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[None]:
    """Context manager: run the block with kernels for ISA ``name``, then restore."""
    previous = active_isa()
    set_isa(name)
    try:
        yield
    finally:
        set_isa(previous)


def list_ukernels(op: str = "") -> list[dict]:
    """Every listed micro-kernel (of ``op`` only, if given): ``op``, ``isa``, ``name``, ``available``."""
    return _core.list_ukernels(op)


def selected_ukernel(op: str) -> str:
    """Name of the micro-kernel ``op`` runs with under the active ISA."""
    return _core.selected_ukernel(op)
