#include <time.h>

#include <chrono>
#include <stdexcept>
#include <vector>

#include "bench/peak.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace pocketbnn {
namespace {

// CPU time of the calling thread: on a shared machine, time spent descheduled is not counted.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

double measure_clock_ghz(double seconds) {
#if defined(__x86_64__)
  constexpr long kAddsPerIteration = 16;
  long iterations = 1 << 16, total = 0;
  const double start = thread_seconds();
  double elapsed = 0;
  while (elapsed < seconds) {
    long value = 0, count = iterations;
    // 16 adds on one register: each waits for the previous, one per cycle; the loop counter
    // runs on a separate chain in parallel.
    asm volatile(
        "1:\n\t"
        ".rept 16\n\t"
        "addq $1, %0\n\t"
        ".endr\n\t"
        "decq %1\n\t"
        "jnz 1b\n\t"
        : "+r"(value), "+r"(count));
    total += iterations;
    iterations *= 2;
    elapsed = thread_seconds() - start;
  }
  return double(total) * kAddsPerIteration / elapsed * 1e-9;
#else
  (void)seconds;
  throw std::runtime_error("measure_clock_ghz needs an x86-64 CPU");
#endif
}

namespace {

void require_vpopcnt() {
  if (!isa_available(Isa::kAvx512Vpopcnt)) {
    throw std::runtime_error("the binary peak needs AVX-512 VPOPCNTDQ, which this CPU lacks");
  }
}

}  // namespace

double measure_binary_peak(double seconds) {
  require_vpopcnt();
  avx512_vpopcnt::xor_popcount_loop(1 << 12);  // warm up the vector units
  long iterations = 1 << 12;
  double macs = 0, elapsed = 0;
  const double start = thread_seconds();
  while (elapsed < seconds) {
    macs += avx512_vpopcnt::xor_popcount_loop(iterations);
    iterations *= 2;
    elapsed = thread_seconds() - start;
  }
  return macs / elapsed * 1e-9;
}

double measure_binary_peak_threads(double seconds, int threads) {
  require_vpopcnt();
  if (threads < 1) throw std::invalid_argument("threads must be >= 1");
  avx512_vpopcnt::xor_popcount_loop(1 << 12);
  long iterations = 1 << 12;
  for (double start = thread_seconds(); thread_seconds() - start < seconds / 4;) {
    avx512_vpopcnt::xor_popcount_loop(iterations);
    iterations *= 2;
  }
  iterations *= 2;  // now about `seconds` of one thread's work
  std::vector<double> macs(std::size_t(threads), 0.0);
  const auto start = std::chrono::steady_clock::now();
  parallel_for(threads, std::size_t(threads), [&](int, std::size_t unit) {
    macs[unit] = avx512_vpopcnt::xor_popcount_loop(iterations);
  });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0;
  for (double m : macs) total += m;
  return total / wall * 1e-9;
}

}  // namespace pocketbnn
