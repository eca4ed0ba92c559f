#include <immintrin.h>

#include "bench/peak.h"
#include "core/popcount_avx2.h"
#include "core/types.h"

namespace pocketbnn::avx2 {
namespace {

// Carry-save adder: a + b + c = 2 * high + low, bitwise.
inline void csa(__m256i& high, __m256i& low, __m256i a, __m256i b, __m256i c) {
  const __m256i u = _mm256_xor_si256(a, b);
  high = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
  low = _mm256_xor_si256(u, c);
}

// The lane counts of Harley-Seal's running sums: 4 * fours + 2 * twos + ones, added bytewise
// (at most 56 a byte) before one lane sum.
inline __m256i popcount_lanes_weighted(__m256i ones, __m256i twos, __m256i fours) {
  __m256i high = popcount_bytes(fours), mid = popcount_bytes(twos);
  high = _mm256_add_epi8(high, high);
  mid = _mm256_add_epi8(mid, high);
  const __m256i low = _mm256_add_epi8(popcount_bytes(ones), _mm256_add_epi8(mid, mid));
  return _mm256_sad_epu8(low, _mm256_setzero_si256());
}

}  // namespace

double xor_popcount_loop(long iterations) {
  constexpr int kRows = 16, kInputs = 8;
  alignas(32) Word data[kRows * kInputs * 4];
  volatile Word seed = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < kRows * kInputs * 4; ++i) data[i] = seed * Word(i + 1);
  const __m256i x = _mm256_set1_epi64x(static_cast<long long>(seed));
  __m256i ones = _mm256_setzero_si256(), twos = ones, fours = ones, total = ones;
  for (long it = 0; it < iterations; ++it) {
    // 8 new XORs per round, from a row that changes every round (loads, not ALU work).
    const __m256i* y = reinterpret_cast<const __m256i*>(data) + (it % kRows) * kInputs;
    __m256i d[kInputs];
#pragma GCC unroll 8
    for (int i = 0; i < kInputs; ++i) d[i] = _mm256_xor_si256(x, _mm256_load_si256(y + i));
    __m256i twos_a, twos_b, fours_a, fours_b, eights;
    csa(twos_a, ones, ones, d[0], d[1]);
    csa(twos_b, ones, ones, d[2], d[3]);
    csa(fours_a, twos, twos, twos_a, twos_b);
    csa(twos_a, ones, ones, d[4], d[5]);
    csa(twos_b, ones, ones, d[6], d[7]);
    csa(fours_b, twos, twos, twos_a, twos_b);
    csa(eights, fours, fours, fours_a, fours_b);
    total = _mm256_add_epi64(total, popcount_lanes(eights));
  }
  // The count; only its being computed matters.
  total = _mm256_add_epi64(_mm256_slli_epi64(total, 3), popcount_lanes_weighted(ones, twos, fours));
  volatile long long sink = _mm256_extract_epi64(total, 0);
  (void)sink;
  return double(iterations) * kInputs * 256;
}

}  // namespace pocketbnn::avx2
