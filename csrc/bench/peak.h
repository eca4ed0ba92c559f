// Machine micro-benchmarks that give the kernels' benchmarks their yardsticks.
#pragma once

namespace pocketbnn {

// Core clock in GHz, from a chain of dependent 1-cycle integer adds timed for ~`seconds` of
// the thread's CPU time
// (x86-64; every x86 core of the last 20 years retires one dependent ADD per cycle).
double measure_clock_ghz(double seconds);

// Binary MACs per nanosecond of the loop acc += VPOPCNTQ(x XOR y) on independent zmm
// accumulators (512 MACs per XOR/POPCOUNT/ADD triple), run for ~`seconds` of the thread's CPU
// time (time spent descheduled on a shared machine is not counted): the physical
// limit of any binary dot-product kernel on this core. Needs AVX-512 VPOPCNTDQ.
double measure_binary_peak(double seconds);

// The same loop on `threads` threads of the kernels' pool at once, each running the
// iterations one thread runs in ~`seconds`: all their MACs per nanosecond of wall time. Over
// measure_binary_peak it is the machine's multi-thread scaling at that moment (on a shared VM
// a second vCPU may deliver less than a core), the yardstick of the kernels' thread scaling.
double measure_binary_peak_threads(double seconds, int threads);

namespace avx512_vpopcnt {
// `iterations` rounds of 12 XOR/POPCOUNT/ADD triples on zmm registers; returns the MACs done.
// Untimed: the timing lives in baseline code, so no shared inline function is ever compiled
// with AVX-512 flags.
double xor_popcount_loop(long iterations);
}  // namespace avx512_vpopcnt

}  // namespace pocketbnn
