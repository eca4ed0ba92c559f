#include <time.h>

#include <chrono>
#include <stdexcept>
#include <vector>

#include "bench/peak.h"
#include "core/types.h"
#include "dispatch/config.h"
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

namespace portable {

double xor_popcount_loop(long iterations) {
  constexpr int kChains = 8, kRows = 16;
  Word data[kRows];
  volatile Word seed = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < kRows; ++i) data[i] = seed * Word(i + 1);
  Word x[kChains], acc[kChains];
  for (int c = 0; c < kChains; ++c) {
    x[c] = seed + Word(c);
    acc[c] = 0;
  }
  for (long it = 0; it < iterations; ++it) {
    const Word y = data[it % kRows];
    for (int c = 0; c < kChains; ++c) acc[c] += Word(__builtin_popcountll(x[c] ^ y));
  }
  Word sum = 0;
  for (int c = 0; c < kChains; ++c) sum += acc[c];
  volatile Word sink = sum;
  (void)sink;
  return double(iterations) * kChains * kWordBits;
}

}  // namespace portable

namespace {

XorPopcountLoopFn peak_loop() { return select_ukernel<ops::xor_popcount_loop>().fn; }

}  // namespace

double measure_binary_peak(double seconds) {
  const XorPopcountLoopFn loop = peak_loop();
  loop(1 << 12);  // warm up the vector units
  long iterations = 1 << 12;
  double macs = 0, elapsed = 0;
  const double start = thread_seconds();
  while (elapsed < seconds) {
    macs += loop(iterations);
    iterations *= 2;
    elapsed = thread_seconds() - start;
  }
  return macs / elapsed * 1e-9;
}

double measure_binary_peak_threads(double seconds, int threads) {
  if (threads < 1) throw std::invalid_argument("threads must be >= 1");
  const XorPopcountLoopFn loop = peak_loop();
  loop(1 << 12);
  long iterations = 1 << 12;
  for (double start = thread_seconds(); thread_seconds() - start < seconds / 4;) {
    loop(iterations);
    iterations *= 2;
  }
  iterations *= 2;  // now about `seconds` of one thread's work
  std::vector<double> macs(std::size_t(threads), 0.0);
  const auto start = std::chrono::steady_clock::now();
  parallel_for(threads, std::size_t(threads), [&](int, std::size_t unit) {
    macs[unit] = loop(iterations);
  });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0;
  for (double m : macs) total += m;
  return total / wall * 1e-9;
}

}  // namespace pocketbnn
