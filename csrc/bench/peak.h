// Machine micro-benchmarks that give the kernels' benchmarks their yardsticks.
#pragma once

namespace pocketbnn {

// Core clock in GHz, from a chain of dependent 1-cycle integer adds timed for ~`seconds` of
// the thread's CPU time
// (x86-64; every x86 core of the last 20 years retires one dependent ADD per cycle).
double measure_clock_ghz(double seconds);

// Binary MACs per nanosecond of the fastest XOR/POPCOUNT/ADD loop of the active ISA (the
// xor_popcount_loop dispatched like the kernels, so POCKETBNN_ISA / set_isa pick the loop of
// the path being measured), run for ~`seconds` of the thread's CPU time (time spent
// descheduled on a shared machine is not counted): the physical limit of any binary
// dot-product kernel of that ISA on this core.
double measure_binary_peak(double seconds);

// The same loop on `threads` threads of the kernels' pool at once, each running the
// iterations one thread runs in ~`seconds`: all their MACs per nanosecond of wall time. Over
// measure_binary_peak it is the machine's multi-thread scaling at that moment (on a shared VM
// a second vCPU may deliver less than a core), the yardstick of the kernels' thread scaling.
double measure_binary_peak_threads(double seconds, int threads);

// `iterations` rounds of acc += popcount(x XOR y) on independent accumulators; returns the
// binary MACs done. Untimed: the timing lives in baseline code, so no shared inline function
// is ever compiled with ISA flags.
using XorPopcountLoopFn = double (*)(long iterations);

namespace portable {
// 64-bit words, the compiler's popcount without POPCNT (the portable kernels' arithmetic).
double xor_popcount_loop(long iterations);
}  // namespace portable
namespace avx2 {
// ymm words split into nibbles, as bconv2d's AVX2 tiles read them: two XORs, two PSHUFB
// lookups and a byte add per 256-bit XOR, a PSADBW per 31 rounds (about 480 binary MACs/ns on
// Zen 3, against 434 for Harley-Seal's carry-save adders and 315 for a lookup on whole words).
double xor_popcount_loop(long iterations);
}  // namespace avx2
namespace avx512_vpopcnt {
// zmm words, VPOPCNTQ: 12 independent XOR/POPCOUNT/ADD triples per round.
double xor_popcount_loop(long iterations);
}  // namespace avx512_vpopcnt

}  // namespace pocketbnn
