"""Quantizers: forward values and pseudo-gradients against their closed forms, aliases, and
PokeBNN's int-b fake quantizer with its bounds (fixed, EMA-calibrated, max|w|)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from pocketbnn import quantizers as q

EPS32 = float(np.finfo(np.float32).eps)
finite = st.floats(-4.0, 4.0, width=32, allow_subnormal=False)


def value_and_grad(fn, x, dy=None):
    """fn(x) and d<fn(x), dy>/dx for an upstream gradient dy (random by default)."""
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    if dy is None:
        dy = torch.rand(y.shape, generator=torch.Generator().manual_seed(0)) + 0.5
    (dx,) = torch.autograd.grad(y, x, dy)
    return y.detach(), dx, dy


def around(v: float) -> torch.Tensor:
    """float32 values just below, at and just above v."""
    v32 = torch.tensor(v, dtype=torch.float32)
    return torch.stack([torch.nextafter(v32, torch.tensor(-math.inf)), v32,
                        torch.nextafter(v32, torch.tensor(math.inf))])


def sign_ref(x):
    return torch.where(x < 0, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Larq's sign family


SIGN_FNS = {
    "ste_sign": (q.ste_sign, lambda x: (x.abs() <= 1).float()),
    "approx_sign": (q.approx_sign, lambda x: torch.where(x.abs() <= 1, 2 - 2 * x.abs(), 0.0)),
    "swish_sign": (q.swish_sign, lambda x: 5 * (2 - 5 * x * torch.tanh(2.5 * x)) / (1 + torch.cosh(5 * x))),
}


@pytest.mark.parametrize("name", SIGN_FNS)
@given(values=st.lists(finite, min_size=1, max_size=20))
def test_sign_family_value_and_gradient_match_closed_form(name, values):
    fn, grad = SIGN_FNS[name]
    x = torch.tensor(values, dtype=torch.float32)
    y, dx, dy = value_and_grad(fn, x)
    torch.testing.assert_close(y, sign_ref(x), rtol=0, atol=0)
    torch.testing.assert_close(dx, dy * grad(x))


@pytest.mark.parametrize("name", SIGN_FNS)
def test_sign_of_zero_is_plus_one(name):
    fn, _ = SIGN_FNS[name]
    assert fn(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("clip", [1.0, 0.5, 2.0])
def test_ste_sign_gradient_is_one_up_to_and_including_clip_value(clip):
    x = torch.cat([-around(clip), around(clip)])
    _, dx, _ = value_and_grad(lambda v: q.ste_sign(v, clip), x, torch.ones(6))
    # -(clip-), -clip, -(clip+), clip-, clip, clip+
    assert dx.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def test_ste_sign_without_clip_passes_every_gradient():
    x = torch.tensor([-1e6, -3.0, 0.0, 7.0, 3e7])
    y, dx, dy = value_and_grad(lambda v: q.ste_sign(v, None), x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]  # exact even for |x| >> 1
    torch.testing.assert_close(dx, dy)


def test_approx_sign_gradient_is_bireal_approximation_derivative():
    # Bi-Real's F(x): -1 (x < -1), 2x + x^2 (-1 <= x < 0), 2x - x^2 (0 <= x < 1), 1 (x >= 1).
    x = torch.linspace(-1.5, 1.5, 61, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    f = torch.where(xr < -1, -1.0, torch.where(xr < 0, 2 * xr + xr**2, torch.where(xr < 1, 2 * xr - xr**2, 1.0)))
    (expected,) = torch.autograd.grad(f.sum(), xr)
    _, dx, _ = value_and_grad(q.approx_sign, x, torch.ones_like(x))
    torch.testing.assert_close(dx, expected)


@pytest.mark.parametrize("beta", [1.0, 5.0, 10.0])
def test_swish_sign_gradient_is_signswish_derivative(beta):
    x = torch.linspace(-3, 3, 121, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    s = torch.sigmoid(beta * xr)
    (expected,) = torch.autograd.grad((2 * s * (1 + beta * xr * (1 - s)) - 1).sum(), xr)
    _, dx, _ = value_and_grad(lambda v: q.swish_sign(v, beta), x, torch.ones_like(x))
    torch.testing.assert_close(dx, expected)
    assert q.SwishSign(beta)(torch.tensor([0.0])).item() == 1.0


def test_swish_sign_gradient_is_finite_far_from_zero():
    _, dx, _ = value_and_grad(q.swish_sign, torch.tensor([-1e4, -100.0, 100.0, 1e4]))
    assert torch.isfinite(dx).all() and dx.abs().max() < 1e-30


def test_ste_heaviside_values_and_clipped_gradient():
    x = torch.cat([-around(1.0), torch.tensor([-0.3, -0.0, 0.0, 0.3]), around(1.0)])
    y, dx, dy = value_and_grad(q.ste_heaviside, x)
    torch.testing.assert_close(y, (x > 0).float(), rtol=0, atol=0)
    assert y[3:7].tolist() == [0.0, 0.0, 0.0, 1.0]  # heaviside(0) = 0
    torch.testing.assert_close(dx, dy * (x.abs() <= 1).float())
    _, dx, _ = value_and_grad(lambda v: q.ste_heaviside(v, clip_value=None), torch.tensor([5.0]), torch.ones(1))
    assert dx.item() == 1.0


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (5, 7), (3, 2, 5)])
def test_magnitude_aware_sign_scales_per_output_channel(shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 0.6
    y, dx, dy = value_and_grad(q.magnitude_aware_sign, w)
    scale = torch.stack([w[o].abs().mean() for o in range(shape[0])]).reshape((-1,) + (1,) * (len(shape) - 1))
    torch.testing.assert_close(y, scale * sign_ref(w))
    # The scale is a stop-gradient: d/dw is the scaled clipped STE only.
    torch.testing.assert_close(dx, scale * dy * (w.abs() <= 1).float())
    assert len({round(v, 6) for v in scale.flatten().tolist()}) == shape[0]


def test_magnitude_aware_sign_keeps_sign_of_zero_and_clip():
    w = torch.tensor([[0.0, -2.0, 0.5, 3.0]])
    y, dx, _ = value_and_grad(lambda v: q.MagnitudeAwareSign(clip_value=2.0)(v), w, torch.ones_like(w))
    assert y.tolist() == [[1.375, -1.375, 1.375, 1.375]]
    assert dx.tolist() == [[1.375, 1.375, 1.375, 0.0]]


def test_ste_tern_thresholds_are_inclusive():
    d = 0.25  # exactly representable, so the boundary is unambiguous
    x = torch.cat([-around(d), torch.tensor([0.0]), around(d)])
    y, dx, dy = value_and_grad(lambda v: q.ste_tern(v, threshold_value=d), x)
    # -(d-), -d, -(d+), 0, d-, d, d+
    assert y.tolist() == [0.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(dx, dy)


def test_ste_tern_default_threshold_and_clip():
    x = torch.tensor([-1.5, -0.05, -0.04, 0.0, 0.04, 0.05, 1.0, 1.5])
    y, dx, _ = value_and_grad(q.SteTern(), x, torch.ones_like(x))
    assert y.tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert dx.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


@given(values=st.lists(finite, min_size=1, max_size=30))
def test_ste_tern_twn_threshold_is_seven_tenths_of_mean_abs(values):
    x = torch.tensor(values, dtype=torch.float32)
    d = 0.7 * x.abs().mean()
    expected = torch.where(x >= d, 1.0, torch.where(x <= -d, -1.0, 0.0))
    y = q.ste_tern(x, ternary_weight_networks=True)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    assert set(y.tolist()) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("k_bit", [1, 2, 4])
@given(values=st.lists(st.floats(-1.0, 2.0, width=32), min_size=1, max_size=30))
def test_dorefa_activations(k_bit, values):
    x = torch.tensor(values, dtype=torch.float32)
    n = 2**k_bit - 1
    y, dx, dy = value_and_grad(lambda v: q.dorefa(v, k_bit), x)
    torch.testing.assert_close(y, torch.round(x.clamp(0, 1) * n) / n, rtol=0, atol=0)
    torch.testing.assert_close(dx, dy * ((x >= 0) & (x <= 1)).float())
    assert set(torch.round(y * n).tolist()) <= set(map(float, range(n + 1)))


@pytest.mark.parametrize("k_bit", [1, 2, 3])
def test_dorefa_weights(k_bit):
    w = torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(2))
    n = 2**k_bit - 1
    y, dx, dy = value_and_grad(lambda v: q.DoReFa(k_bit, mode="weights")(v), w)
    t = torch.tanh(w)
    m = t.abs().max()
    torch.testing.assert_close(y, 2 * torch.round((t / (2 * m) + 0.5) * n) / n - 1)
    torch.testing.assert_close(dx, dy * (1 - t**2) / m)
    levels = torch.round((y + 1) / 2 * n)
    torch.testing.assert_close((y + 1) / 2 * n, levels)
    assert levels.min() >= 0 and levels.max() <= n
    assert y.max().item() == 1.0 and y.min().item() == -1.0  # the largest |w| reaches ±1


def test_dorefa_weights_of_all_zeros_is_finite():
    y, dx, _ = value_and_grad(lambda v: q.dorefa(v, 2, "weights"), torch.zeros(5))
    torch.testing.assert_close(y, torch.full((5,), 1 / 3))  # round(1.5) = 2 (half to even)
    assert torch.isfinite(dx).all()


def test_dorefa_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'kernel'"):
        q.DoReFa(2, mode="kernel")


def test_noop_is_identity_with_declared_precision():
    x = torch.randn(7)
    y, dx, dy = value_and_grad(q.NoOp(precision=1), x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(dx, dy)
    assert q.NoOp(4).precision == 4


# ---------------------------------------------------------------------------------------------
# Registry


ALIASES = [
    ("ste_sign", {}, q.SteSign, 1),
    ("approx_sign", {}, q.ApproxSign, 1),
    ("swish_sign", {"beta": 2.0}, q.SwishSign, 1),
    ("ste_heaviside", {}, q.SteHeaviside, 1),
    ("magnitude_aware_sign", {}, q.MagnitudeAwareSign, 1),
    ("ste_tern", {"threshold_value": 0.1}, q.SteTern, 2),
    ("dorefa_quantizer", {"k_bit": 3, "mode": "weights"}, q.DoReFa, 3),
    ("noop", {"precision": 8}, q.NoOp, 8),
    ("int_quantizer", {"bits": 4, "bound": 2.0}, q.IntQuantizer, 4),
]


@pytest.mark.parametrize(("name", "kwargs", "cls", "precision"), ALIASES, ids=[a[0] for a in ALIASES])
def test_alias_round_trip(name, kwargs, cls, precision):
    quantizer = q.get({"name": name, **kwargs})
    assert type(quantizer) is cls and quantizer.precision == precision
    assert repr(quantizer) == repr(cls(**kwargs))  # the keyword arguments reached the instance
    assert q.get(quantizer) is quantizer
    if not kwargs:
        assert type(q.get(name)) is cls


def test_get_passes_none_and_wraps_callables():
    assert q.get(None) is None

    def fn(x):
        return 2 * x

    fn.precision = 3
    wrapped = q.get(fn)
    assert isinstance(wrapped, nn.Module) and wrapped.precision == 3
    torch.testing.assert_close(wrapped(torch.ones(2)), torch.full((2,), 2.0))
    assert q.get(torch.tanh).precision == 32


@pytest.mark.parametrize("bad", ["ste_sing", {"name": "nope"}])
def test_get_unknown_name_raises_naming_it(bad):
    with pytest.raises(ValueError, match="'(ste_sing|nope)'"):
        q.get(bad)


@pytest.mark.parametrize("bad", [{"clip_value": 1.0}, 3])
def test_get_rejects_unusable_identifiers(bad):
    with pytest.raises(ValueError):
        q.get(bad)


def test_alias_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="ste_sign"):
        q.register_alias("ste_sign")(q.SteSign)


# ---------------------------------------------------------------------------------------------
# PokeBNN int-b fake quantizer


def int_scale(bits, mode, bound):
    qmax = {"signed": 2.0 ** (bits - 1) - 1, "signed_half_shift": 2.0 ** (bits - 1), "unsigned": 2.0**bits}[mode]
    return np.float32(qmax) / (np.float32(bound) + np.float32(EPS32))


@pytest.mark.parametrize(("bits", "qmax"), [(8, 127), (4, 7), (2, 1)])
@given(values=st.lists(st.floats(-5.0, 5.0, width=32), min_size=1, max_size=40),
       bound=st.floats(0.125, 4.0, width=32))
def test_signed_values_are_rounded_multiples_of_bound_over_qmax(bits, qmax, values, bound):
    x = torch.tensor(values, dtype=torch.float32)
    s = int_scale(bits, "signed", bound)
    y, dx, dy = value_and_grad(q.IntQuantizer(bits, bound=bound), x)
    levels = np.floor(np.clip(x.numpy() * s, -qmax, qmax) + np.float32(0.5))
    np.testing.assert_array_equal(y.numpy(), levels / s)
    assert np.abs(levels).max() <= qmax
    # Quantization error: at most half a step inside [-bound, bound].
    assert (y - x.clamp(-bound, bound)).abs().max() <= bound / qmax / 2 * (1 + 1e-5)
    inside = np.abs(x.numpy() * s) <= qmax
    torch.testing.assert_close(dx, dy * torch.from_numpy(inside).float())


def test_signed_8bit_covers_all_255_levels():
    x = torch.linspace(-1, 1, 10001)
    y = q.IntQuantizer(8, bound=1.0)(x)
    levels = torch.round(y * 127)
    torch.testing.assert_close(y * 127, levels, atol=1e-4, rtol=0)
    assert levels.unique().tolist() == list(map(float, range(-127, 128)))


def test_signed_rounds_ties_up():
    # x*scale = k + 0.5 exactly rounds to k + 1, also for negative k (floor(x + 0.5)).
    y = q.int_quantize(torch.tensor([-2.5, -0.5, 0.5, 1.5]), 7.0 - EPS32, bits=4)
    assert torch.round(y).tolist() == [-2.0, 0.0, 1.0, 2.0]


def test_binary_half_shift_gives_plus_minus_half_bound():
    bound = 3.0
    x = torch.cat([-around(bound), torch.tensor([-1.0, -1e-30, -0.0, 0.0, 1e-30, 1.0]), around(bound), around(6.0)])
    y, dx, dy = value_and_grad(q.IntQuantizer(1, mode="signed_half_shift", bound=bound), x)
    torch.testing.assert_close(y, sign_ref(x) * bound / 2)
    assert y[3:9].tolist() == pytest.approx([-1.5, -1.5, 1.5, 1.5, 1.5, 1.5])
    s = int_scale(1, "signed_half_shift", bound)
    inside = torch.from_numpy(np.abs(x.numpy() * s) <= np.float32(1 - 2**-7))
    torch.testing.assert_close(dx, dy * inside.float())
    assert inside.tolist()[:3] == [False, False, False] and inside[3:9].all()


def test_binary_half_shift_gradient_boundary_is_bound_times_one_minus_2_pow_minus_7():
    bound = 2.0  # scale = 1/(2 + eps) = 0.5 exactly in float32
    edge = bound * (1 - 2**-7)
    _, dx, _ = value_and_grad(q.IntQuantizer(1, mode="signed_half_shift", bound=bound),
                              torch.cat([-around(edge), around(edge)]), torch.ones(6))
    # -(edge-), -edge, -(edge+), edge-, edge, edge+
    assert dx.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def test_two_bit_half_shift_has_four_symmetric_levels():
    y = q.IntQuantizer(2, mode="signed_half_shift", bound=2.0)(torch.linspace(-3, 3, 601))
    assert y.unique().tolist() == [-1.5, -0.5, 0.5, 1.5]


@given(values=st.lists(st.floats(-2.0, 6.0, width=32), min_size=1, max_size=40),
       bound=st.floats(0.5, 4.0, width=32))
def test_unsigned_4bit_floors_to_16_levels(values, bound):
    x = torch.tensor(values, dtype=torch.float32)
    s = int_scale(4, "unsigned", bound)
    y, dx, dy = value_and_grad(q.IntQuantizer(4, mode="unsigned", bound=bound), x)
    raw = np.floor(x.numpy() * s)
    levels = np.clip(raw, 0, 15)
    np.testing.assert_array_equal(y.numpy(), levels / s)
    assert 0 <= levels.min() and levels.max() <= 15
    torch.testing.assert_close(dx, dy * torch.from_numpy((raw >= 0) & (raw <= 15)).float())


def test_unsigned_uses_floor_not_round():
    y = q.IntQuantizer(4, mode="unsigned", bound=16.0)(torch.tensor([-3.0, 0.0, 0.99, 1.0, 14.5, 15.99, 40.0]))
    assert torch.round(y).tolist() == [0.0, 0.0, 0.0, 1.0, 14.0, 15.0, 15.0]


def test_per_channel_fixed_bound_on_nchw():
    bounds = torch.tensor([1.0, 2.0, 4.0])
    quantizer = q.IntQuantizer(8, bound=q.FixedBound(bounds, channel_dim=1))
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3)) * 3
    y = quantizer(x)
    for c in range(3):
        torch.testing.assert_close(y[:, c], q.int_quantize(x[:, c], bounds[c].item(), bits=8))
    assert (y.abs().amax(dim=(0, 2, 3)) <= bounds * (1 + 1e-6)).all()


def test_bound_of_minus_one_passes_input_through():
    x = torch.randn(2, 3, 5) * 4
    y, dx, dy = value_and_grad(q.IntQuantizer(8, bound=-1.0), x)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    torch.testing.assert_close(dx, dy)
    # The sentinel needs every channel at -1 (AQT: all(bounds == -1)).
    partly = q.IntQuantizer(8, bound=q.FixedBound(torch.tensor([-1.0, 2.0, 2.0])))
    assert not torch.equal(partly(x), x)


def test_int_quantizer_keeps_low_precision_dtype():
    x = torch.randn(4, 3).to(torch.bfloat16)
    y = q.IntQuantizer(4, bound=2.0)(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, q.int_quantize(x.float(), 2.0, 4).to(torch.bfloat16))


@pytest.mark.parametrize(("bits", "mode"), [(1, "signed"), (0, "unsigned"), (8, "asymmetric")])
def test_int_quantizer_rejects_bad_configuration(bits, mode):
    with pytest.raises(ValueError, match=mode):
        q.IntQuantizer(bits, mode=mode, bound=1.0)


def test_max_abs_weight_bound_is_per_output_channel_without_gradient():
    w = torch.randn(5, 3, 3, 3, generator=torch.Generator().manual_seed(4), requires_grad=True)
    bound = q.MaxAbsWeightBound()(w)
    assert bound.shape == (5, 1, 1, 1) and not bound.requires_grad
    torch.testing.assert_close(bound.flatten(), torch.stack([w[o].abs().max() for o in range(5)]).detach())


def test_binary_weights_are_sign_times_half_max_abs_per_output_channel():
    w = torch.randn(4, 6, generator=torch.Generator().manual_seed(5))
    w[1, 2] = 0.0
    quantizer = q.IntQuantizer(1, mode="signed_half_shift", bound=q.MaxAbsWeightBound())
    y, dx, dy = value_and_grad(quantizer, w)
    half_max = w.abs().amax(dim=1, keepdim=True) / 2
    torch.testing.assert_close(y, sign_ref(w) * half_max)
    assert y[1, 2] > 0
    # Clip side effect: each channel's largest |w| gets no gradient, the rest pass it.
    largest = w.abs() > (1 - 2**-7) * w.abs().amax(dim=1, keepdim=True)
    torch.testing.assert_close(dx, dy * (~largest).float())
    assert largest.sum(dim=1).min() >= 1


def test_eight_bit_weights_use_127_levels_of_max_abs():
    w = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(6))
    y = q.IntQuantizer(8, bound=q.MaxAbsWeightBound())(w)
    step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    torch.testing.assert_close(y / step, torch.round(w / step), atol=2e-4, rtol=0)


class _ToyLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_quantizer = q.IntQuantizer(8, bound=1.0)
        self.weight_quantizer = q.IntQuantizer(1, mode="signed_half_shift", bound=q.MaxAbsWeightBound())


def test_set_weight_quantization_switches_only_weight_quantizers():
    model = nn.Sequential(_ToyLayer(), nn.ReLU(), _ToyLayer())
    w = torch.randn(3, 4)
    assert q.set_weight_quantization(model, False) == 2
    assert all(not layer.weight_quantizer.enabled for layer in (model[0], model[2]))
    assert model[0].input_quantizer.enabled
    torch.testing.assert_close(model[0].weight_quantizer(w), w, rtol=0, atol=0)
    assert q.set_weight_quantization(model, True) == 2
    assert not torch.equal(model[0].weight_quantizer(w), w)


# ---------------------------------------------------------------------------------------------
# EMA-of-batch-max activation bound


def batches(n, shape=(4, 3, 5, 5), seed=7):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) * (1 + i) for i in range(n)]


def ema_reference(xs, channel_dim=1, coeff=0.1):
    """EMA of per-channel max/min over non-zero entries, starting at 0; empty channels skip."""
    c = xs[0].shape[channel_dim]
    m, n = np.zeros(c), np.zeros(c)
    for x in xs:
        per = x.movedim(channel_dim, 0).reshape(c, -1).numpy()
        for ch in range(c):
            nz = per[ch][per[ch] != 0]
            if nz.size:
                m[ch] += coeff * (nz.max() - m[ch])
                n[ch] += coeff * (nz.min() - n[ch])
    return m, n


def test_ema_statistics_update_in_training_only():
    bound = q.EmaMaxBound(3, calibrate_at_step=100)
    xs = batches(5)
    for x in xs:
        bound(x)
    m, n = ema_reference(xs)
    np.testing.assert_allclose(bound.ema_max.numpy(), m, rtol=1e-6)
    np.testing.assert_allclose(bound.ema_min.numpy(), n, rtol=1e-6)
    assert bound.step.item() == 5
    state = {k: v.clone() for k, v in bound.state_dict().items()}
    bound.eval()
    bound(xs[0] * 10)
    for key, value in bound.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_ema_excludes_zeros_and_skips_empty_channels():
    x = torch.zeros(2, 3, 4)
    x[:, 0] = -torch.arange(1.0, 5.0)  # negatives plus no zeros: max is -1, not 0
    x[0, 1, 0] = 0.0
    x[1, 1, 1] = -2.0  # channel 1: zeros and one -2 -> max = min = -2
    # channel 2 stays all zeros: no statistic, the EMA keeps its value
    bound = q.EmaMaxBound(3, calibrate_at_step=100)
    bound(x)
    torch.testing.assert_close(bound.ema_max, torch.tensor([-0.1, -0.2, 0.0]))
    torch.testing.assert_close(bound.ema_min, torch.tensor([-0.4, -0.2, 0.0]))


def test_bound_is_written_once_at_the_calibration_step_then_frozen():
    k = 3
    bound = q.EmaMaxBound(3, calibrate_at_step=k, fixed_bound=0.5, mean_of_max_coeff=2.0)
    quantizer = q.IntQuantizer(8, bound=bound)
    xs = batches(8)
    for step, x in enumerate(xs):
        y = quantizer(x)
        if step < k:
            assert (bound.bound == -1).all()
            torch.testing.assert_close(y, x, rtol=0, atol=0)
        else:
            m, n = ema_reference(xs[: k + 1])  # statistics of steps 0..k, this call included
            expected = 0.5 + 2.0 * np.maximum(np.abs(m), np.abs(n))
            np.testing.assert_allclose(bound.bound.numpy(), expected, rtol=1e-6)
            assert not torch.equal(y, x)
            assert (y.abs().amax(dim=(0, 2, 3)) <= bound.bound * (1 + 1e-6)).all()
    assert not np.allclose(bound.ema_max.numpy(), ema_reference(xs[: k + 1])[0])  # stats moved on
    bound.eval()
    frozen = bound.bound.clone()
    torch.testing.assert_close(quantizer(xs[0]), q.int_quantize(xs[0], frozen.reshape(1, 3, 1, 1), 8))


def test_calibration_step_not_reached_in_eval_mode():
    bound = q.EmaMaxBound(3, calibrate_at_step=0, initial_bound=2.0).eval()
    bound(batches(1)[0])
    assert bound.bound.tolist() == [2.0, 2.0, 2.0] and bound.step.item() == 0


def test_set_bound_step_selects_the_calibration_call():
    model = nn.ModuleList([q.IntQuantizer(8, bound=q.EmaMaxBound(3, calibrate_at_step=10)) for _ in range(2)])
    assert q.set_bound_step(model, 10) == 2
    x = batches(1)[0]
    for quantizer in model:
        quantizer(x)
        assert (quantizer.bound.bound > 0).all() and quantizer.bound.step.item() == 11


@pytest.mark.parametrize(("shape", "channel_dim"), [((8, 3), 1), ((2, 5, 5, 3), -1), ((2, 5, 5, 3), 3)])
def test_ema_bound_channel_dim(shape, channel_dim):
    bound = q.EmaMaxBound(3, channel_dim, calibrate_at_step=0)
    x = batches(1, shape)[0]
    out = bound(x)
    m, n = ema_reference([x], channel_dim)
    np.testing.assert_allclose(bound.bound.numpy(), np.maximum(np.abs(m), np.abs(n)), rtol=1e-6)
    assert out.shape[channel_dim] == 3 and out.numel() == 3


def test_ema_bound_state_survives_state_dict():
    source = q.IntQuantizer(4, bound=q.EmaMaxBound(3, calibrate_at_step=1))
    for x in batches(3):
        source(x)
    target = q.IntQuantizer(4, bound=q.EmaMaxBound(3, calibrate_at_step=1))
    target.load_state_dict(source.state_dict())
    assert target.bound.step.item() == 3
    torch.testing.assert_close(target.bound.bound, source.bound.bound)
