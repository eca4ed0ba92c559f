r"""Learning-rate schedules as multipliers of the base rate, one value per optimizer step.

Each factory returns ``f(step) -> factor``; the trainer hands it to
``torch.optim.lr_scheduler.LambdaLR`` for every inner optimizer, so Adam on the binary weights
and SGD on the rest follow the same shape from their own base rates (QuickNet's recipe).
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["constant", "cosine_with_warmup", "get_schedule", "linear_to_zero"]

Schedule = Callable[[int], float]


def cosine_with_warmup(total_steps: int, warmup_steps: int = 0) -> Schedule:
    r"""Linear warm-up from 0, then cosine decay to 0 (Larq Zoo's ``CosineDecayWithWarmup``).

    $$ f(t) = \begin{cases} t / W & t < W \\
       \tfrac12\big(1 + \cos(\pi \,\min(t - W,\ T - W) / (T - W))\big) & t \ge W \end{cases} $$

    with $W$ = ``warmup_steps`` and $T$ = ``total_steps``: $f(0) = 0$, $f(W) = 1$,
    $f((T+W)/2) = 1/2$, $f(T) = 0$, and 0 after $T$.
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        progress = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def linear_to_zero(total_steps: int, warmup_steps: int = 0) -> Schedule:
    r"""Optional linear warm-up, then linear decay to 0 at ``total_steps`` (PokeBNN's schedule
    with no warm-up):

    $$ f(t) = \begin{cases} t / W & t < W \\ \max\big(0,\ (T - t) / (T - W)\big) & t \ge W \end{cases} $$
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / (total_steps - warmup_steps))

    return factor


def constant(total_steps: int, warmup_steps: int = 0) -> Schedule:
    r"""Optional linear warm-up, then $f(t) = 1$."""
    del total_steps
    return lambda step: step / warmup_steps if step < warmup_steps else 1.0


_SCHEDULES: dict[str, Callable[[int, int], Schedule]] = {
    "constant": constant,
    "cosine": cosine_with_warmup,
    "linear": linear_to_zero,
}


def get_schedule(name: str, total_steps: int, warmup_steps: int = 0) -> Schedule:
    """The schedule called ``name`` (``"cosine"``, ``"linear"``, ``"constant"``).

    Raises:
        ValueError: unknown name.
    """
    if name not in _SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(sorted(_SCHEDULES))}")
    return _SCHEDULES[name](total_steps, warmup_steps)
