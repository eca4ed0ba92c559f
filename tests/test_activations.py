"""Activations: values and gradients against their closed forms, per-channel parameters on
(N, C) and (N, C, H, W) inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from pocketbnn import activations as A
from pocketbnn import quantizers

SHAPES = [(6, 3), (2, 3, 4, 5)]


def grads(y, inputs, seed=0):
    """d<y, dy>/d inputs for a random upstream gradient dy, and dy."""
    dy = torch.rand(y.shape, generator=torch.Generator().manual_seed(seed)) + 0.5
    return torch.autograd.grad(y, inputs, dy), dy


def channel(p, x):
    return p.reshape((1, -1) + (1,) * (x.dim() - 2))


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_hard_tanh_clips_with_gradient_one_up_to_the_boundary():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    y = A.hard_tanh(x)
    assert y.tolist() == [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]
    (dx,) = torch.autograd.grad(y.sum(), x)
    assert dx.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("alpha", [0.2, 0.5])
@given(values=st.lists(st.floats(-5.0, 5.0, width=32), min_size=1, max_size=30))
def test_leaky_tanh_matches_piecewise_form(alpha, values):
    x = torch.tensor(values, dtype=torch.float32, requires_grad=True)
    y = A.leaky_tanh(x, alpha)
    expected = torch.where(x > 1, 1 + alpha * (x - 1), torch.where(x < -1, -1 + alpha * (x + 1), x))
    torch.testing.assert_close(y, expected)
    (dx,), dy = grads(y, x)
    slope = torch.where(x.abs() < 1, 1.0, torch.where(x.abs() > 1, alpha, 1 + alpha))
    torch.testing.assert_close(dx, dy * slope)


def test_leaky_tanh_module_and_boundary_gradient():
    x = torch.tensor([-1.0, 1.0], requires_grad=True)
    (dx,) = torch.autograd.grad(A.LeakyTanh(0.25)(x).sum(), x)
    assert dx.tolist() == [1.25, 1.25]


@pytest.mark.parametrize("shape", SHAPES)
def test_dprelu_starts_as_prelu_with_quarter_slope(shape):
    x = randn(shape, 1)
    torch.testing.assert_close(A.DPReLU(shape[1])(x), F.prelu(x, torch.tensor([0.25])))


@pytest.mark.parametrize("shape", SHAPES)
def test_dprelu_matches_closed_form_per_channel(shape):
    c = shape[1]
    act = A.DPReLU(c)
    with torch.no_grad():
        for seed, p in enumerate(act.parameters()):
            p.copy_(randn(c, 10 + seed))
    x = randn(shape, 2).requires_grad_(True)
    y = act(x)
    bx, by, pos, neg = (channel(p, x) for p in (act.bias_x, act.bias_y, act.pos_slope, act.neg_slope))
    z = x - bx
    torch.testing.assert_close(y, torch.where(z >= 0, pos * z, neg * z) - by)

    (dx, dbx, dby, dpos, dneg), dy = grads(y, (x, act.bias_x, act.bias_y, act.pos_slope, act.neg_slope))
    slope = torch.where(z >= 0, pos, neg)
    dims = [d for d in range(x.dim()) if d != 1]
    torch.testing.assert_close(dx, dy * slope)
    torch.testing.assert_close(dbx, -(dy * slope).sum(dims))
    torch.testing.assert_close(dby, -dy.sum(dims))
    torch.testing.assert_close(dpos, (dy * z * (z >= 0)).sum(dims))
    torch.testing.assert_close(dneg, (dy * z * (z < 0)).sum(dims))


def test_dprelu_uses_positive_slope_at_the_kink():
    act = A.DPReLU(2)
    with torch.no_grad():
        act.bias_x.copy_(torch.tensor([0.5, -1.0]))
        act.pos_slope.copy_(torch.tensor([2.0, 3.0]))
    x = torch.tensor([[0.5, -1.0]], requires_grad=True)  # z = 0 in both channels
    (dx,) = torch.autograd.grad(act(x).sum(), x)
    assert dx.tolist() == [[2.0, 3.0]]


@pytest.mark.parametrize("shape", SHAPES)
def test_rprelu_matches_closed_form(shape):
    c = shape[1]
    act = A.RPReLU(c)
    x = randn(shape, 3)
    torch.testing.assert_close(act(x), F.prelu(x, torch.tensor([0.25])))  # initial state
    with torch.no_grad():
        act.gamma.copy_(randn(c, 4))
        act.zeta.copy_(randn(c, 5))
        act.slope.copy_(randn(c, 6))
    x.requires_grad_(True)
    y = act(x)
    gamma, zeta, beta = (channel(p, x) for p in (act.gamma, act.zeta, act.slope))
    torch.testing.assert_close(y, torch.where(x > gamma, x - gamma + zeta, beta * (x - gamma) + zeta))
    (dx, dgamma, dzeta), dy = grads(y, (x, act.gamma, act.zeta))
    dims = [d for d in range(x.dim()) if d != 1]
    slope = torch.where(x > gamma, 1.0, beta)
    torch.testing.assert_close(dx, dy * slope)
    torch.testing.assert_close(dgamma, -(dy * slope).sum(dims))
    torch.testing.assert_close(dzeta, dy.sum(dims))


@pytest.mark.parametrize("shape", SHAPES)
def test_learnable_threshold_sign_binarizes_around_per_channel_threshold(shape):
    c = shape[1]
    act = A.LearnableThresholdSign(c)
    with torch.no_grad():
        act.threshold.copy_(torch.linspace(-0.5, 0.5, c))
    x = randn(shape, 7)
    x[0, :] = channel(act.threshold.detach(), x)[0]  # x == threshold -> +1 (sign(0) = +1)
    x.requires_grad_(True)
    y = act(x)
    alpha = channel(act.threshold, x)
    torch.testing.assert_close(y, torch.where(x < alpha, -1.0, 1.0))
    assert (y[0] == 1).all()
    (dx, dalpha), dy = grads(y, (x, act.threshold))
    mask = ((x - alpha).abs() <= 1).float()
    torch.testing.assert_close(dx, dy * mask)
    torch.testing.assert_close(dalpha, -(dy * mask).sum([d for d in range(x.dim()) if d != 1]))
    assert act.precision == 1


def test_learnable_threshold_sign_takes_any_quantizer():
    act = A.LearnableThresholdSign(1, quantizer="approx_sign")
    assert isinstance(act.quantizer, quantizers.ApproxSign)
    x = torch.tensor([[-1.5], [-0.25], [0.0], [0.5]], requires_grad=True)
    (dx,) = torch.autograd.grad(act(x).sum(), x)
    assert dx.flatten().tolist() == [0.0, 1.5, 2.0, 1.0]
    assert A.LearnableThresholdSign(1, quantizer=lambda v: v).precision == 32
    assert A.LearnableThresholdSign(4, quantizers.SteTern()).precision == 2
