"""The machine yardsticks of the kernel benchmarks (csrc/bench): they run and measure something,
on every ISA path."""

import pytest

from pocketbnn import _core, kernels

PEAK_LOOPS = {"portable": "xor_popcount_loop__portable", "avx2": "xor_popcount_loop__avx2_nibble_lookup",
              "avx512vpopcnt": "xor_popcount_loop__avx512vpopcnt"}


@pytest.mark.parametrize("isa", [i for i in kernels.available_isas() if i in PEAK_LOOPS])
def test_binary_peak_on_one_and_two_threads(isa):
    with kernels.use_isa(isa):
        assert kernels.selected_ukernel("xor_popcount_loop") == PEAK_LOOPS[isa]
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
