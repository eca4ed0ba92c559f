// AVX2 population counts, shared by the AVX2 kernels and the AVX2 peak loop; for AVX2
// translation units only (the functions are internal to each file that includes this, so none
// is ever shared with baseline code).
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

}  // namespace
}  // namespace pocketbnn::avx2
