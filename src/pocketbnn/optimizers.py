r"""Optimizers for binarized networks: Bop, per-parameter routing, and hyper-parameter schedules.

Binary weights are the weights of quantized layers whose ``weight_quantizer`` has
``precision == 1`` (:func:`is_binary_weight`). Typical set-ups::

    # Bop flips the binary weights (kept at ±1 by Bop itself: NoOp(precision=1)), Adam trains the rest.
    opt = CaseOptimizer(model, (is_binary_weight, partial(Bop, gamma=1e-4)),
                        default=partial(torch.optim.Adam, lr=1e-2))
    gamma = HyperparameterScheduler(opt, "gamma", staircase_decay(1e-4, every=100))

    # QuickNet: Adam on the latent binary weights, SGD with momentum on everything else.
    opt = CaseOptimizer(model, (is_binary_weight, partial(torch.optim.Adam, lr=1e-2)),
                        default=partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt.optimizers[1], T_max=600)
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from pocketbnn.layers_base import QuantizedLayer
from pocketbnn.math import sign

__all__ = [
    "Bop",
    "CaseOptimizer",
    "HyperparameterScheduler",
    "binary_parameters",
    "is_binary_weight",
    "linear_decay",
    "split_parameters",
    "staircase_decay",
]

ParameterPredicate = Callable[[nn.Module, str], bool]
"""``predicate(module, name)``: does parameter ``name`` of ``module`` (its own, not a child's) belong
to a case? The parameter itself is ``getattr(module, name)``."""

OptimizerFactory = Callable[[list[nn.Parameter]], Optimizer]
"""Builds an optimizer from a list of parameters, e.g. ``partial(torch.optim.Adam, lr=1e-3)``."""


class Bop(Optimizer):
    r"""Binary optimizer: flips a ±1 weight when its gradient momentum agrees with it strongly enough.

    Per parameter $w$ with gradient $g$ and momentum $m$ ($m_0 = 0$, no bias correction):

    $$ m_t = m_{t-1} + \gamma\,(g_t - m_{t-1}) $$

    $$ w_t = \operatorname{sign}\!\big(-\operatorname{sign}_0(w_{t-1} m_t - \tau)\, w_{t-1}\big) $$

    where $\operatorname{sign}_0$ is the ordinary sign ($\operatorname{sign}_0(0) = 0$) and the outer
    $\operatorname{sign}$ has $\operatorname{sign}(0) = +1$, exactly as Larq computes it. So a weight
    flips where $w_{t-1} m_t > \tau$ (the loss decreases in the flipped direction and the momentum
    exceeds the threshold), keeps its sign where $w_{t-1} m_t < \tau$, and becomes $+1$ at an exact
    tie $w_{t-1} m_t = \tau$. Weights come out in $\{-1, +1\}$ after the first step whatever their
    initial values (0 maps to $+1$), so they need no quantizer: mark them with ``NoOp(precision=1)``.

    ``gamma`` and ``threshold`` are param-group entries, so :class:`HyperparameterScheduler` (or any
    code editing ``param_groups``) schedules them. State per parameter: ``"m"``.

    Args:
        params: parameters or param-group dicts, as for any ``torch.optim.Optimizer``.
        threshold: $\tau \ge 0$; larger values make flips rarer.
        gamma: $\gamma \in [0, 1]$, the momentum's adaptivity rate.

    References:
        Helwegen et al., "Latent Weights Do Not Exist: Rethinking Binarized Neural Network
        Optimization", NeurIPS 2019. https://arxiv.org/abs/1906.02107
    """

    def __init__(self, params: Iterable[Any], threshold: float = 1e-8, gamma: float = 1e-4) -> None:
        if not threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        super().__init__(params, {"threshold": threshold, "gamma": gamma})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Bop update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is None:
                    continue
                if w.grad.is_sparse:
                    raise RuntimeError("Bop does not support sparse gradients")
                state = self.state[w]
                if "m" not in state:
                    state["m"] = torch.zeros_like(w, memory_format=torch.preserve_format)
                m = state["m"]
                m.add_(w.grad - m, alpha=group["gamma"])
                w.copy_(sign(-torch.sign(w * m - group["threshold"]) * w))
        return loss


def is_binary_weight(module: nn.Module, name: str) -> bool:
    """True for the ``weight`` of a quantized layer whose ``weight_quantizer`` has precision 1.

    This covers latent weights binarized by a sign quantizer (``SteSign``: train them with Adam,
    as QuickNet does) and weights Bop keeps at ±1 (``NoOp(precision=1)``). Larq's
    ``Bop.is_binary_variable``.
    """
    return name == "weight" and isinstance(module, QuantizedLayer) and module.weight_precision == 1


def split_parameters(model: nn.Module, *predicates: ParameterPredicate) -> list[list[nn.Parameter]]:
    """Partition the trainable parameters of ``model`` by predicate.

    Returns one list per predicate, in order, then a last list of the parameters no predicate
    claims. A parameter shared by several modules is counted once. Parameters with
    ``requires_grad=False`` are left out.

    Raises:
        ValueError: a parameter is claimed by more than one predicate.
    """
    groups: list[list[nn.Parameter]] = [[] for _ in range(len(predicates) + 1)]
    owner: dict[int, int] = {}
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            claims = [i for i, predicate in enumerate(predicates) if predicate(module, name)]
            if len(claims) > 1:
                qualified = f"{module_name}.{name}" if module_name else name
                raise ValueError(f"parameter {qualified!r} is claimed by predicates {claims}")
            index = claims[0] if claims else len(predicates)
            if id(param) in owner:
                if owner[id(param)] != index:
                    raise ValueError(f"shared parameter {name!r} of {module_name!r} falls in groups "
                                     f"{owner[id(param)]} and {index} through different modules")
                continue
            owner[id(param)] = index
            groups[index].append(param)
    return groups


def binary_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of ``model`` for which :func:`is_binary_weight` holds."""
    return split_parameters(model, is_binary_weight)[0]


class CaseOptimizer:
    """Routes each parameter of a model to one of several optimizers (Larq's ``CaseOptimizer``).

    Each case is ``(predicate, factory)``: the parameters ``predicate(module, name)`` claims are
    handed to ``factory`` to build that case's optimizer. Unclaimed parameters go to ``default``.
    The result behaves as one optimizer: ``step``, ``zero_grad``, ``state_dict``,
    ``load_state_dict`` and ``param_groups`` (the inner optimizers' groups, concatenated, so
    :class:`HyperparameterScheduler` reaches Bop's ``gamma`` through it). ``optimizers`` lists the
    inner optimizers, cases first and the default last, e.g. for a torch LR scheduler.

    Args:
        model: the module whose trainable parameters are routed (see :func:`split_parameters`).
        *cases: ``(predicate, factory)`` pairs.
        default: factory for the unclaimed parameters; if ``None`` they are not trained.

    Raises:
        ValueError: a parameter is claimed by two cases, or a case claims no parameter.

    Warns:
        UserWarning: some parameters are unclaimed and ``default`` is ``None``.
    """

    def __init__(self, model: nn.Module, *cases: tuple[ParameterPredicate, OptimizerFactory],
                 default: OptimizerFactory | None = None) -> None:
        if not cases:
            raise ValueError("CaseOptimizer needs at least one (predicate, factory) case")
        *claimed, unclaimed = split_parameters(model, *(predicate for predicate, _ in cases))
        for i, params in enumerate(claimed):
            if not params:
                raise ValueError(f"case {i} ({cases[i][0]!r}) claims no parameter of the model")
        self.optimizers: list[Optimizer] = [factory(params) for (_, factory), params in zip(cases, claimed)]
        if unclaimed and default is None:
            warnings.warn(f"{len(unclaimed)} parameters match no case and there is no default "
                          "optimizer: they will not be trained", stacklevel=2)
        elif unclaimed:
            self.optimizers.append(default(unclaimed))

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """All inner optimizers' param groups (the dicts themselves: editing them takes effect)."""
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Evaluate ``closure`` once (if given), then step every inner optimizer; returns the loss.

        Optimizers that re-evaluate the closure themselves (LBFGS) are not supported.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict["optimizers"]
        if len(states) != len(self.optimizers):
            raise ValueError(f"state_dict holds {len(states)} optimizers, this CaseOptimizer has "
                             f"{len(self.optimizers)}")
        for optimizer, state in zip(self.optimizers, states):
            optimizer.load_state_dict(state)

    def __repr__(self) -> str:
        inner = "\n".join(f"  {optimizer!r}".replace("\n", "\n  ") for optimizer in self.optimizers)
        return f"CaseOptimizer(\n{inner}\n)"


Schedule = Callable[[int], float] | Callable[[int, float], float]


class HyperparameterScheduler:
    r"""Sets a param-group hyper-parameter (e.g. Bop's ``gamma`` or ``threshold``) from a schedule.

    Like a torch LR scheduler: construction applies $h \leftarrow s(0)$; each :meth:`step` advances
    $t$ by one and applies $h \leftarrow s(t)$. Call ``step()`` once per epoch or once per
    optimizer step, whichever unit the schedule counts in. A schedule taking two arguments gets
    the group's current value too: $h \leftarrow s(t, h)$. Every param group that has the entry
    ``name`` is updated; others (e.g. Adam's inside a :class:`CaseOptimizer`) are left alone.

    Args:
        optimizer: anything with ``param_groups``: a :class:`Bop`, a :class:`CaseOptimizer`, ...
        name: the param-group key to set.
        schedule: ``s(t)`` or ``s(t, current)``.

    Raises:
        ValueError: no param group of ``optimizer`` has the entry ``name``.
    """

    def __init__(self, optimizer: Bop | CaseOptimizer | Optimizer, name: str, schedule: Schedule) -> None:
        self.groups = [group for group in optimizer.param_groups if name in group]
        if not self.groups:
            raise ValueError(f"no param group of {type(optimizer).__name__} has a {name!r} entry")
        self.name = name
        self.schedule = schedule
        parameters = inspect.signature(schedule).parameters.values()
        self._passes_current = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters) >= 2
        self.last_step = 0
        self._apply()

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        for group in self.groups:
            args = (self.last_step, group[self.name]) if self._passes_current else (self.last_step,)
            group[self.name] = self.schedule(*args)

    def state_dict(self) -> dict[str, int]:
        """The step counter; the values themselves live in the optimizer's state_dict."""
        return {"last_step": self.last_step}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.last_step = state_dict["last_step"]


def staircase_decay(initial: float, every: int, factor: float = 0.1) -> Callable[[int], float]:
    r"""$s(t) = \text{initial}\cdot\text{factor}^{\lfloor t / \text{every} \rfloor}$.

    The Bop paper's CIFAR-10 schedule is ``staircase_decay(1e-4, every=100)`` stepped per epoch.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    return lambda t: initial * factor ** (t // every)


def linear_decay(initial: float, final: float, steps: int) -> Callable[[int], float]:
    r"""$s(t) = \text{initial} + (\text{final} - \text{initial})\,\min(t, \text{steps})/\text{steps}$.

    The Bop paper's ImageNet schedule is ``linear_decay(1e-4, 1e-6, steps)`` over the whole run.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return lambda t: initial + (final - initial) * min(t, steps) / steps
