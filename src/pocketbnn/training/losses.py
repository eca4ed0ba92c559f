r"""Training losses: knowledge distillation and the L2 weight-decay term.

Distillation (Hinton et al., 2015) trains the student on the teacher's softened predictions;
PokeBNN trains on them alone (§1.11 of the reference spec: soft cross-entropy, temperature 1).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["decay_parameters", "distillation_loss", "kl_divergence", "l2_penalty", "soft_cross_entropy"]


def soft_cross_entropy(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    r"""Cross-entropy of the student against the teacher's softened distribution, batch mean:

    $$ L = -\frac{T^2}{N} \sum_{n} \sum_{k} p^{(n)}_k \log q^{(n)}_k, \qquad
       p = \operatorname{softmax}(t / T),\ q = \operatorname{softmax}(s / T) $$

    The $T^2$ keeps gradient magnitudes independent of $T$ (Hinton et al.). At $T = 1$ this is
    PokeBNN's loss, ``-sum(softmax(teacher) * log_softmax(student)) / batch``.
    """
    p = F.softmax(teacher_logits.detach() / temperature, dim=-1)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    return -(p * log_q).sum(dim=-1).mean() * temperature**2


def kl_divergence(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    r"""$T^2\,\mathrm{KL}(p \,\|\, q)$, batch mean: the soft cross-entropy minus the teacher's
    entropy, $T^2 \sum_k p_k (\log p_k - \log q_k)$. Same gradient as :func:`soft_cross_entropy`,
    and 0 when the student matches the teacher."""
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean() * temperature**2


def distillation_loss(student_logits: Tensor, labels: Tensor, teacher_logits: Tensor | None, *,
                      weight: float = 1.0, temperature: float = 1.0, kind: str = "soft_ce") -> Tensor:
    r"""$L = \alpha\, L_\text{KD}(s, t; T) + (1 - \alpha)\, \mathrm{CE}(s, y)$.

    Args:
        student_logits, labels: the student's output and the true classes.
        teacher_logits: the teacher's output; ``None`` gives plain cross-entropy.
        weight: $\alpha \in [0, 1]$; 1 is distillation only (PokeBNN).
        temperature: $T > 0$.
        kind: $L_\text{KD}$, ``"soft_ce"`` (:func:`soft_cross_entropy`) or ``"kl"``
            (:func:`kl_divergence`).
    """
    hard = F.cross_entropy(student_logits, labels)
    if teacher_logits is None:
        return hard
    soft = {"soft_ce": soft_cross_entropy, "kl": kl_divergence}[kind](student_logits, teacher_logits, temperature)
    return soft if weight == 1.0 else weight * soft + (1.0 - weight) * hard


def decay_parameters(model: nn.Module, rule: str, binary: Iterable[nn.Parameter] = ()) -> list[nn.Parameter]:
    """The parameters the L2 term applies to, by rule:

    * ``"kernels"``: every trainable parameter with ``ndim > 1`` (conv and dense kernels, latent
      binary weights included; not BatchNorm, biases, PReLU slopes). PokeBNN's rule.
    * ``"float_kernels"``: the same without the binary weights (``binary``), as the Bop paper
      decays only the real-valued kernels (a ±1 weight has nothing to decay).
    * ``"none"``: nothing.
    """
    if rule == "none":
        return []
    kernels = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    if rule == "kernels":
        return kernels
    if rule == "float_kernels":
        skip = {id(p) for p in binary}
        return [p for p in kernels if id(p) not in skip]
    raise ValueError(f"unknown weight decay rule {rule!r}; known: kernels, float_kernels, none")


def l2_penalty(parameters: Iterable[Tensor], coefficient: float) -> Tensor:
    r"""$\frac{\lambda}{2} \sum_i \lVert w_i \rVert^2$, added to the loss (L2 through the
    gradient, as PokeBNN does with Adam; not decoupled AdamW decay)."""
    total = sum((p.pow(2).sum() for p in parameters), torch.zeros(()))
    return 0.5 * coefficient * total
