// AVX2 bit counting on words split into nibbles (kLowNibbles, core/types.h), shared by the AVX2
// kernels and the AVX2 peak loop; for AVX2 translation units only (the functions are internal
// to each file that includes this, so none is ever shared with baseline code).
#pragma once

#include <immintrin.h>

namespace pocketbnn::avx2 {
namespace {

// The number of 1 bits of each value 0..15, for PSHUFB (which looks up the low 4 bits of each
// byte in the 16 bytes of its 128-bit lane).
inline __m256i nibble_popcount_table() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

// Per byte, popcount(x XOR w) from the nibble splits of x and w: two XORs, two lookups, one add
// (at most 8 a byte).
inline __m256i xor_popcount_bytes(__m256i table, __m256i x_lo, __m256i x_hi, __m256i w_lo, __m256i w_hi) {
  return _mm256_add_epi8(_mm256_shuffle_epi8(table, _mm256_xor_si256(x_lo, w_lo)),
                         _mm256_shuffle_epi8(table, _mm256_xor_si256(x_hi, w_hi)));
}

}  // namespace
}  // namespace pocketbnn::avx2
