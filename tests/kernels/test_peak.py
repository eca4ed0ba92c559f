"""The machine yardsticks of the kernel benchmarks (csrc/bench): they run and measure something."""

import pytest

from pocketbnn import _core, kernels

needs_vpopcnt = pytest.mark.skipif("avx512vpopcnt" not in kernels.available_isas(),
                                   reason="the binary peak loop needs AVX-512 VPOPCNTDQ")


@needs_vpopcnt
def test_binary_peak_on_one_and_two_threads():
    one = _core.measure_binary_peak(0.01)
    assert one > 0
    # Two threads of the pool run the same loop: more than nothing, at most 2x a core (3x
    # leaves room for a clock or neighbour change between the two measurements).
    two = _core.measure_binary_peak_threads(0.01, 2)
    assert 0 < two < 3 * one
    with pytest.raises(ValueError, match="threads must be >= 1"):
        _core.measure_binary_peak_threads(0.01, 0)


def test_clock_estimate_is_a_plausible_frequency():
    assert 0.2 < _core.measure_clock_ghz(0.005) < 10
