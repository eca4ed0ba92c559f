#include <immintrin.h>

#include "bench/peak.h"
#include "core/types.h"

namespace pocketbnn::avx512_vpopcnt {

double xor_popcount_loop(long iterations) {
  constexpr int kChains = 12, kRows = 16;
  alignas(64) Word data[kRows * 8];
  volatile Word seed = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < kRows * 8; ++i) data[i] = seed * Word(i + 1);
  __m512i x[kChains], acc[kChains];
  for (int c = 0; c < kChains; ++c) {
    x[c] = _mm512_set1_epi64(static_cast<long long>(seed + c));
    acc[c] = _mm512_setzero_si512();
  }
  for (long it = 0; it < iterations; ++it) {
    // y changes every iteration (a load, not an ALU instruction), so nothing can be hoisted.
    const __m512i y = _mm512_load_si512(data + (it % kRows) * 8);
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) {
      acc[c] = _mm512_add_epi64(acc[c], _mm512_popcnt_epi64(_mm512_xor_si512(x[c], y)));
    }
  }
  __m512i sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_epi64(sum, acc[c]);
  volatile long long sink = _mm512_reduce_add_epi64(sum);
  (void)sink;
  return double(iterations) * kChains * 512;
}

}  // namespace pocketbnn::avx512_vpopcnt
