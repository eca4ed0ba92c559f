import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pocketbnn.constraints import WeightClip
from pocketbnn.layers import QuantConv2d
from pocketbnn.quantizers import SteSign
from pocketbnn.training.losses import (decay_parameters, distillation_loss, kl_divergence, l2_penalty,
                                       soft_cross_entropy)


def test_soft_cross_entropy_matches_closed_form():
    student = torch.tensor([[1.0, 2.0, 0.5]])
    teacher = torch.tensor([[0.0, 1.0, 3.0]])
    for t in (1.0, 2.0, 4.0):
        p = [math.exp(v / t) for v in teacher[0].tolist()]
        p = [v / sum(p) for v in p]
        z = sum(math.exp(v / t) for v in student[0].tolist())
        log_q = [v / t - math.log(z) for v in student[0].tolist()]
        expected = -t * t * sum(pi * lq for pi, lq in zip(p, log_q))
        assert soft_cross_entropy(student, teacher, t).item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_with_one_hot_teacher_is_cross_entropy():
    student = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8) % 5
    one_hot_logits = 1e4 * F.one_hot(labels, 5).float()
    assert soft_cross_entropy(student, one_hot_logits).item() == pytest.approx(
        F.cross_entropy(student, labels).item(), rel=1e-6)


def test_kl_is_soft_ce_minus_teacher_entropy_with_the_same_gradient():
    g = torch.Generator().manual_seed(1)
    student = torch.randn(6, 4, generator=g, requires_grad=True)
    teacher = torch.randn(6, 4, generator=g)
    p = F.softmax(teacher / 2, dim=-1)
    entropy = -(p * p.log()).sum(-1).mean() * 4
    kl, ce = kl_divergence(student, teacher, 2.0), soft_cross_entropy(student, teacher, 2.0)
    assert kl.item() == pytest.approx((ce - entropy).item(), abs=1e-6)
    assert kl_divergence(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    (grad_kl,) = torch.autograd.grad(kl, student)
    (grad_ce,) = torch.autograd.grad(soft_cross_entropy(student, teacher, 2.0), student)
    torch.testing.assert_close(grad_kl, grad_ce)


def test_distillation_mixes_soft_and_hard_terms():
    g = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 1, 2, 0])
    hard = F.cross_entropy(student, labels)
    soft = soft_cross_entropy(student, teacher, 3.0)
    assert distillation_loss(student, labels, None).item() == pytest.approx(hard.item())
    assert distillation_loss(student, labels, teacher, temperature=3.0).item() == pytest.approx(soft.item())
    mixed = distillation_loss(student, labels, teacher, weight=0.25, temperature=3.0)
    assert mixed.item() == pytest.approx(0.25 * soft.item() + 0.75 * hard.item(), rel=1e-6)


def test_teacher_gets_no_gradient():
    teacher = torch.randn(2, 3, requires_grad=True)
    soft_cross_entropy(torch.randn(2, 3, requires_grad=True), teacher).backward()
    assert teacher.grad is None


def _model():
    conv = QuantConv2d(2, 2, 3, bias=False, input_quantizer=SteSign(), weight_quantizer=SteSign(),
                       weight_constraint=WeightClip(1.0))
    return nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), conv, nn.Flatten(), nn.Linear(2, 3))


def test_decay_rules_select_kernels():
    model = _model()
    stem, bn, binary, _, dense = model
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay_parameters(model, "kernels")) == ids([stem.weight, binary.weight, dense.weight])
    assert ids(decay_parameters(model, "float_kernels", [binary.weight])) == ids([stem.weight, dense.weight])
    assert decay_parameters(model, "none") == []
    with pytest.raises(ValueError, match="weight decay rule"):
        decay_parameters(model, "all")


def test_l2_penalty_value_and_gradient():
    w = torch.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    penalty = l2_penalty([w], 0.1)
    assert penalty.item() == pytest.approx(0.05 * (1 + 4 + 9 + 0.25))
    penalty.backward()
    torch.testing.assert_close(w.grad, 0.1 * w.detach())
