#include <immintrin.h>

#include "bench/peak.h"
#include "core/popcount_avx2.h"
#include "core/types.h"

namespace pocketbnn::avx2 {

double xor_popcount_loop(long iterations) {
  // kChains independent (x, y) pairs per round, words split into nibbles beforehand (the
  // kernels' layout: kLowNibbles in core/types.h), so each 256-bit XOR costs two XORs, two
  // PSHUFB and two byte adds; PSADBW sums the bytes once per kByteRounds rounds (8 a round
  // at most per byte).
  constexpr int kChains = 8, kRows = 16, kByteRounds = 31;
  alignas(32) Word data[kRows * 8];
  volatile Word seed = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < kRows * 8; ++i) data[i] = (seed * Word(i + 1)) & kLowNibbles;
  const __m256i table = nibble_popcount_table();
  __m256i x_lo[kChains / 2], x_hi[kChains / 2];
  for (int c = 0; c < kChains / 2; ++c) {
    x_lo[c] = _mm256_set1_epi64x(static_cast<long long>((seed + Word(c)) & kLowNibbles));
    x_hi[c] = _mm256_set1_epi64x(static_cast<long long>(((seed + Word(c)) >> 4) & kLowNibbles));
  }
  __m256i total = _mm256_setzero_si256();
  for (long it = 0; it < iterations;) {
    const long rounds = iterations - it < kByteRounds ? iterations - it : kByteRounds;
    __m256i bytes[kChains];
    for (int c = 0; c < kChains; ++c) bytes[c] = _mm256_setzero_si256();
    for (long r = 0; r < rounds; ++r, ++it) {
      // Two y vectors (a split 8-word row) that change every round: loads, not ALU work.
      const __m256i* y = reinterpret_cast<const __m256i*>(data + (it % (kRows / 2)) * 16);
      const __m256i y_lo = _mm256_load_si256(y), y_hi = _mm256_load_si256(y + 1);
#pragma GCC unroll 8
      for (int c = 0; c < kChains; ++c) {
        const __m256i lo = c % 2 == 0 ? y_lo : y_hi, hi = c % 2 == 0 ? y_hi : y_lo;
        bytes[c] = _mm256_add_epi8(bytes[c], xor_popcount_bytes(table, x_lo[c / 2], x_hi[c / 2], lo, hi));
      }
    }
    for (int c = 0; c < kChains; ++c) total = _mm256_add_epi64(total, _mm256_sad_epu8(bytes[c], _mm256_setzero_si256()));
  }
  volatile long long sink = _mm256_extract_epi64(total, 0);
  (void)sink;
  return double(iterations) * kChains * 256;
}

}  // namespace pocketbnn::avx2
