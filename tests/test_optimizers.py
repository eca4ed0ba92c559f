import copy
from functools import partial

import pytest
import torch
from torch import nn

from pocketbnn.layers import QuantConv2d, QuantLinear
from pocketbnn.optimizers import (
    Bop,
    CaseOptimizer,
    HyperparameterScheduler,
    binary_parameters,
    is_binary_weight,
    linear_decay,
    split_parameters,
    staircase_decay,
)
from pocketbnn.quantizers import NoOp, SteSign


def _bop_step(w, grad, **kwargs):
    """One Bop step on a fresh parameter ``w`` with gradient ``grad``; returns (new w, optimizer)."""
    param = nn.Parameter(torch.tensor(w, dtype=torch.float32))
    param.grad = torch.tensor(grad, dtype=torch.float32)
    optimizer = Bop([param], **kwargs)
    optimizer.step()
    return param.detach(), optimizer


# --- Bop's update rule ------------------------------------------------------------------------


def test_bop_flips_exactly_where_weight_times_momentum_exceeds_threshold():
    # gamma=1, so m_1 = g and w*m_1 = w*g: below, above and far above tau=0.5, for both signs of w.
    w = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0]
    g = [0.4, 0.6, 3.0, -0.4, -0.6, -3.0, -2.0, 2.0]
    new_w, _ = _bop_step(w, g, threshold=0.5, gamma=1.0)
    assert new_w.tolist() == [1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0]


def test_bop_tie_at_threshold_gives_plus_one_as_larq():
    # w*m == tau exactly: Larq's inner tf.sign gives 0 and the outer sign(0) = +1, so a -1 weight
    # becomes +1 and a +1 weight stays.
    new_w, _ = _bop_step([1.0, -1.0], [0.5, -0.5], threshold=0.5, gamma=1.0)
    assert new_w.tolist() == [1.0, 1.0]


def test_bop_zero_threshold_zero_momentum_keeps_signs():
    # threshold 0, m = 0: a tie for every weight, so all become +1 ...
    new_w, _ = _bop_step([1.0, -1.0], [0.0, 0.0], threshold=0.0, gamma=1.0)
    assert new_w.tolist() == [1.0, 1.0]
    # ... while with any positive threshold, w*m = 0 < tau keeps them.
    new_w, _ = _bop_step([1.0, -1.0], [0.0, 0.0], threshold=1e-8, gamma=1.0)
    assert new_w.tolist() == [1.0, -1.0]


def test_bop_maps_non_binary_initial_values_to_plus_minus_one():
    w = [0.3, -0.3, 0.0, -0.0, 2.5, -2.5, 0.3, -0.3]
    g = [0.0, 0.0, 5.0, -5.0, 0.0, 0.0, 1.0, -1.0]  # last two: w*g > tau, so they flip
    new_w, _ = _bop_step(w, g, threshold=1e-3, gamma=1.0)
    assert new_w.tolist() == [1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0]


def test_bop_momentum_is_exponential_average_over_steps():
    torch.manual_seed(0)
    param = nn.Parameter(torch.ones(50))
    gamma = 0.3
    optimizer = Bop([param], threshold=1e9, gamma=gamma)  # threshold so high nothing flips
    expected = torch.zeros(50, dtype=torch.float64)
    for _ in range(6):
        grad = torch.randn(50)
        param.grad = grad.clone()
        optimizer.step()
        expected = (1 - gamma) * expected + gamma * grad.double()
        torch.testing.assert_close(optimizer.state[param]["m"].double(), expected, rtol=1e-6, atol=1e-7)
    assert torch.equal(param.detach(), torch.ones(50))


def test_bop_flip_follows_momentum_not_raw_gradient():
    # tau = 0.1, gamma = 0.5, w = +1. Step 1: w*g = 0.15 > tau but m_1 = 0.075: keep.
    # Step 2: m_2 = 0.1125 > tau: flip. Step 3: w*g = 0.3 > tau but m_3 = -0.09375, w*m_3 < tau: keep.
    param = nn.Parameter(torch.tensor([1.0]))
    optimizer = Bop([param], threshold=0.1, gamma=0.5)
    weights, momenta = [], []
    for grad in (0.15, 0.15, -0.3):
        param.grad = torch.tensor([grad])
        optimizer.step()
        weights.append(param.item())
        momenta.append(optimizer.state[param]["m"].item())
    assert weights == [1.0, -1.0, -1.0]
    assert momenta == pytest.approx([0.075, 0.1125, -0.09375])


def test_bop_skips_parameters_without_gradient():
    param = nn.Parameter(torch.tensor([0.3, -2.0]))
    optimizer = Bop([param])
    optimizer.step()
    assert param.tolist() == pytest.approx([0.3, -2.0])
    assert param not in optimizer.state


@pytest.mark.parametrize("kwargs", [{"gamma": -0.1}, {"gamma": 1.5}, {"threshold": -1.0}])
def test_bop_rejects_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        Bop([nn.Parameter(torch.ones(1))], **kwargs)


def test_bop_solves_binary_teacher_problem():
    # A student with ±1 weights (NoOp(1): Bop keeps them binary) learns the ±1 weights of 8 teacher
    # perceptrons from ±1 inputs. Chance agreement is 0.5.
    data = torch.Generator().manual_seed(0)
    d, k, n, batch = 64, 8, 1024, 32
    teacher = torch.where(torch.rand(k, d, generator=data) < 0.5, -1.0, 1.0)
    x = torch.where(torch.rand(n, d, generator=data) < 0.5, -1.0, 1.0)
    y = torch.sign(x @ teacher.T + 0.5)
    torch.manual_seed(1)
    student = QuantLinear(d, k, bias=False, weight_quantizer=NoOp(precision=1))
    optimizer = Bop(student.parameters(), threshold=1e-6, gamma=1e-2)
    initial_agreement = (torch.sign(student.weight) == teacher).float().mean().item()
    for i in range(0, n, batch):
        z = student(x[i:i + batch]) / d**0.5
        loss = nn.functional.softplus(-y[i:i + batch] * z).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(student.weight.unique().tolist()) <= {-1.0, 1.0}
    agreement = (student.weight == teacher).float().mean().item()
    accuracy = (torch.sign(student(x) + 0.5) == y).float().mean().item()
    assert initial_agreement < 0.6
    assert agreement >= 0.95
    assert accuracy >= 0.95


# --- routing -----------------------------------------------------------------------------------


class _Net(nn.Module):
    """Full-precision stem, a Bop-trained binary conv, a latent-weight binary conv, a float head."""

    def __init__(self):
        super().__init__()
        self.stem = QuantConv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.bop_conv = QuantConv2d(4, 4, 3, padding=1, bias=False, weight_quantizer=NoOp(precision=1))
        self.ste_conv = QuantConv2d(4, 4, 3, padding=1, bias=False, input_quantizer=SteSign(),
                                    weight_quantizer=SteSign(), weight_constraint="weight_clip")
        self.int8_conv = QuantConv2d(4, 4, 1, weight_quantizer=NoOp(precision=8))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.bn(self.stem(x))
        x = self.int8_conv(self.ste_conv(self.bop_conv(x)))
        return self.head(x.mean((2, 3)))


def _ids(params):
    return {id(p) for p in params}


def test_binary_parameters_are_exactly_precision_one_weights():
    net = _Net()
    assert _ids(binary_parameters(net)) == {id(net.bop_conv.weight), id(net.ste_conv.weight)}
    assert is_binary_weight(net.bop_conv, "weight")
    assert not is_binary_weight(net.int8_conv, "weight")
    assert not is_binary_weight(net.stem, "weight")


def test_split_parameters_partitions_and_leaves_frozen_out():
    net = _Net()
    net.head.bias.requires_grad_(False)
    binary, bn, rest = split_parameters(net, is_binary_weight, lambda m, n: isinstance(m, nn.BatchNorm2d))
    assert _ids(bn) == {id(net.bn.weight), id(net.bn.bias)}
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert len(binary) + len(bn) + len(rest) == len(trainable)
    assert _ids(binary) | _ids(bn) | _ids(rest) == _ids(trainable)


def test_split_parameters_rejects_a_parameter_claimed_twice():
    with pytest.raises(ValueError, match="bop_conv.weight"):
        split_parameters(_Net(), is_binary_weight, lambda m, n: m is not None and n == "weight")


def test_split_parameters_counts_a_shared_parameter_once():
    first = QuantLinear(4, 4, weight_quantizer=NoOp(precision=1))
    second = QuantLinear(4, 4, weight_quantizer=NoOp(precision=1))
    second.weight = first.weight
    binary, _ = split_parameters(nn.Sequential(first, second), is_binary_weight)
    assert _ids(binary) == {id(first.weight)}


def test_case_optimizer_routes_binary_weights_to_bop_and_the_rest_to_adam():
    net = _Net()
    optimizer = CaseOptimizer(net, (is_binary_weight, Bop), default=partial(torch.optim.Adam, lr=1e-2))
    bop, adam = optimizer.optimizers
    assert isinstance(bop, Bop) and isinstance(adam, torch.optim.Adam)
    assert _ids(bop.param_groups[0]["params"]) == _ids(binary_parameters(net))
    assert _ids(adam.param_groups[0]["params"]) == _ids(net.parameters()) - _ids(binary_parameters(net))
    assert optimizer.param_groups == bop.param_groups + adam.param_groups


def test_case_optimizer_rejects_an_empty_case_and_warns_on_untrained_parameters():
    net = _Net()
    with pytest.raises(ValueError, match="claims no parameter"):
        CaseOptimizer(net, (lambda m, n: False, Bop), default=torch.optim.Adam)
    with pytest.warns(UserWarning, match="not be trained"):
        optimizer = CaseOptimizer(net, (is_binary_weight, Bop))
    assert len(optimizer.optimizers) == 1


def test_case_optimizer_needs_a_case():
    with pytest.raises(ValueError, match="at least one"):
        CaseOptimizer(_Net(), default=torch.optim.Adam)


def test_case_optimizer_step_evaluates_closure_once_and_returns_its_loss():
    net = _Net()
    optimizer = _bop_and_adam(net)
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = net(torch.randn(2, 3, 6, 6)).sum()
        loss.backward()
        return loss

    before = net.head.weight.detach().clone()
    loss = optimizer.step(closure)
    assert len(calls) == 1 and loss.requires_grad
    assert not torch.equal(net.head.weight, before)


def _train(net, optimizer, steps, seed):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 3, 6, 6, generator=generator)
        target = torch.randint(0, 2, (4,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), target).backward()
        optimizer.step()


def _bop_and_adam(net):
    return CaseOptimizer(net, (is_binary_weight, partial(Bop, threshold=1e-5, gamma=0.1)),
                         default=partial(torch.optim.Adam, lr=1e-2))


def test_case_optimizer_steps_each_part_with_its_rule():
    torch.manual_seed(0)
    net = _Net()
    head_before = net.head.weight.detach().clone()
    _train(net, _bop_and_adam(net), steps=3, seed=0)
    for weight in binary_parameters(net):
        assert set(weight.unique().tolist()) <= {-1.0, 1.0}  # Bop binarizes even SteSign's latents
    # Adam: every head weight moved by about lr per step, and none became ±1.
    assert (net.head.weight - head_before).abs().min() > 1e-3
    assert not set(net.head.weight.unique().tolist()) & {-1.0, 1.0}


def test_case_optimizer_state_dict_round_trip_gives_identical_steps():
    torch.manual_seed(0)
    net = _Net()
    optimizer = _bop_and_adam(net)
    _train(net, optimizer, steps=3, seed=0)
    saved_net, saved_optimizer = copy.deepcopy(net.state_dict()), copy.deepcopy(optimizer.state_dict())
    _train(net, optimizer, steps=3, seed=1)

    torch.manual_seed(123)
    resumed = _Net()
    resumed.load_state_dict(saved_net)
    resumed_optimizer = _bop_and_adam(resumed)
    resumed_optimizer.load_state_dict(saved_optimizer)
    _train(resumed, resumed_optimizer, steps=3, seed=1)
    for (name, a), b in zip(net.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(net.bop_conv.weight, torch.as_tensor(saved_net["bop_conv.weight"]))


def test_case_optimizer_load_state_dict_rejects_a_different_layout():
    net = _Net()
    with pytest.warns(UserWarning):
        bop_only = CaseOptimizer(net, (is_binary_weight, Bop))
    with pytest.raises(ValueError, match="holds 2 optimizers"):
        bop_only.load_state_dict(_bop_and_adam(net).state_dict())


def test_torch_lr_scheduler_drives_the_inner_optimizer():
    net = _Net()
    optimizer = CaseOptimizer(net, (is_binary_weight, partial(torch.optim.Adam, lr=1e-2)),
                              default=partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer.optimizers[1], step_size=1, gamma=0.5)
    _train(net, optimizer, steps=1, seed=0)
    scheduler.step()
    assert optimizer.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.05)
    assert optimizer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-2)


# --- scheduling --------------------------------------------------------------------------------


def test_hyperparameter_scheduler_sets_gamma_only_in_bop_groups():
    net = _Net()
    optimizer = _bop_and_adam(net)
    scheduler = HyperparameterScheduler(optimizer, "gamma", staircase_decay(1e-2, every=2))
    gammas = [optimizer.optimizers[0].param_groups[0]["gamma"]]
    for _ in range(4):
        scheduler.step()
        gammas.append(optimizer.optimizers[0].param_groups[0]["gamma"])
    assert gammas == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3, 1e-4])
    assert "gamma" not in optimizer.optimizers[1].param_groups[0]

    resumed = HyperparameterScheduler(_bop_and_adam(net), "gamma", staircase_decay(1e-2, every=2))
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.last_step == 4


def test_hyperparameter_scheduler_passes_current_value_to_two_argument_schedules():
    param = nn.Parameter(torch.ones(1))
    optimizer = Bop([param], threshold=1e-3)
    scheduler = HyperparameterScheduler(optimizer, "threshold", lambda t, current: current * 2)
    scheduler.step()
    assert optimizer.param_groups[0]["threshold"] == pytest.approx(4e-3)


def test_hyperparameter_scheduler_rejects_unknown_name():
    with pytest.raises(ValueError, match="'gamma'"):
        HyperparameterScheduler(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1), "gamma", lambda t: 0.1)


def test_scheduled_gamma_changes_the_momentum_update():
    param = nn.Parameter(torch.ones(3))
    optimizer = Bop([param], threshold=1.0, gamma=0.5)
    gammas = [0.5, 0.1, 0.0]
    scheduler = HyperparameterScheduler(optimizer, "gamma", lambda t: gammas[t])
    grads = [torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 1.0, -1.0]), torch.tensor([9.0, 9.0, 9.0])]
    m = torch.zeros(3)
    for t, grad in enumerate(grads):
        param.grad = grad
        optimizer.step()
        m = m + gammas[t] * (grad - m)
        torch.testing.assert_close(optimizer.state[param]["m"], m)
        if t + 1 < len(gammas):
            scheduler.step()
    assert param.tolist() == [1.0, 1.0, 1.0]  # w*m stayed below the threshold 1.0


def test_decay_schedules_follow_their_formulas():
    staircase = staircase_decay(1e-4, every=100)
    assert [staircase(t) for t in (0, 99, 100, 250)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-6])
    linear = linear_decay(1e-4, 1e-6, steps=150)
    assert [linear(t) for t in (0, 75, 150, 300)] == pytest.approx([1e-4, 5.05e-5, 1e-6, 1e-6])
    with pytest.raises(ValueError):
        staircase_decay(1e-4, every=0)
    with pytest.raises(ValueError):
        linear_decay(1e-4, 1e-6, steps=0)
