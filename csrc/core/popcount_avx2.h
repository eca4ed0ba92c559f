// AVX2 population-count building blocks, for AVX2 translation units only (their functions
// are internal to each file that includes this, so none is ever shared with baseline code).
#pragma once

#include <immintrin.h>

namespace pocketbnn::avx2 {
namespace {

// Byte counts of x: two PSHUFB into a 16-entry table, one per nibble of every byte.
inline __m256i popcount_bytes(__m256i x) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  return _mm256_add_epi8(_mm256_shuffle_epi8(table, _mm256_and_si256(x, nibble)),
                         _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble)));
}

// Counts per 64-bit lane: PSADBW against zero sums each lane's 8 byte counts.
inline __m256i popcount_lanes(__m256i x) { return _mm256_sad_epu8(popcount_bytes(x), _mm256_setzero_si256()); }

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
}  // namespace pocketbnn::avx2
