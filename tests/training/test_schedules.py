import math

import pytest

from pocketbnn.training.schedules import constant, cosine_with_warmup, get_schedule, linear_to_zero


def test_cosine_with_warmup_key_steps():
    f = cosine_with_warmup(total_steps=110, warmup_steps=10)
    assert f(0) == 0.0
    assert f(5) == pytest.approx(0.5)
    assert f(10) == 1.0
    assert f(60) == pytest.approx(0.5)           # halfway through the cosine part
    assert f(35) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert f(110) == pytest.approx(0.0, abs=1e-12)
    assert f(500) == pytest.approx(0.0, abs=1e-12)


def test_cosine_without_warmup_starts_at_one_and_decreases():
    f = cosine_with_warmup(total_steps=100)
    values = [f(t) for t in range(101)]
    assert values[0] == 1.0
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_linear_to_zero_key_steps():
    f = linear_to_zero(total_steps=100)
    assert (f(0), f(25), f(50), f(100), f(150)) == (1.0, 0.75, 0.5, 0.0, 0.0)
    g = linear_to_zero(total_steps=100, warmup_steps=20)
    assert (g(0), g(10), g(20), g(60), g(100)) == (0.0, 0.5, 1.0, 0.5, 0.0)


def test_constant_with_warmup():
    f = constant(total_steps=100, warmup_steps=4)
    assert [f(t) for t in (0, 2, 4, 99)] == [0.0, 0.5, 1.0, 1.0]


def test_get_schedule_names_and_errors():
    assert get_schedule("linear", 10)(5) == 0.5
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("step", 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_with_warmup(total_steps=10, warmup_steps=10)
