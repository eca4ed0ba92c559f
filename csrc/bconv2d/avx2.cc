// AVX2 tiles: a vector of 8 words is two ymm registers; POPCOUNT is the nibble lookup
// (two PSHUFB into a 16-entry table, one per nibble of every byte), then PSADBW against zero
// sums the 8 byte counts of each 64-bit lane.
#include <immintrin.h>

#include "bconv2d/tile.h"

namespace pocketbnn::avx2 {
namespace {

struct Isa {
  static constexpr int kMR = 3, kNR = 1;
  struct Vec {
    __m256i lo, hi;
  };
  using Acc = Vec;
  static Acc zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static Vec load8(const Word* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4))};
  }
  static Vec broadcast(Word x) {
    const __m256i v = _mm256_set1_epi64x(static_cast<long long>(x));
    return {v, v};
  }
  static __m256i popcount_lanes(__m256i x) {
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(x, nibble));
    const __m256i hi =
        _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble));
    return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
  }
  static Acc xor_popcount_add(Acc acc, const Vec& x, const Vec& w) {
    return {_mm256_add_epi64(acc.lo, popcount_lanes(_mm256_xor_si256(x.lo, w.lo))),
            _mm256_add_epi64(acc.hi, popcount_lanes(_mm256_xor_si256(x.hi, w.hi)))};
  }
  // The 8 counts as int32, in order: the low halves of the 64-bit lanes (counts never exceed
  // 2^31).
  static __m256i counts_i32(const Acc& acc) {
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    return _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(acc.lo, pick),
                                     _mm256_permutevar8x32_epi32(acc.hi, pick), 0x20);
  }
  static unsigned threshold_bits(const Acc& acc, const std::int32_t* kc,
                                 const std::int32_t* thresholds) {
    const __m256i c = counts_i32(acc);
    const __m256i dot = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc)),
                                         _mm256_add_epi32(c, c));
    const __m256i less =
        _mm256_cmpgt_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(thresholds)), dot);
    return unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(less)));
  }
  static void store_lanes(__m256 y, const float* res, float* dst, int n) {
    if (n == 8) {
      if (res != nullptr) y = _mm256_add_ps(y, _mm256_loadu_ps(res));
      _mm256_storeu_ps(dst, y);
      return;
    }
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, y);
    for (int i = 0; i < n; ++i) dst[i] = res != nullptr ? tmp[i] + res[i] : tmp[i];
  }
  // scale, offset and kc hold whole 8-slot blocks, so 8-lane loads stay in bounds.
  static void store_folded(const Acc& acc, const float* scale, const float* offset,
                           const float* res, float* dst, int n) {
    store_lanes(_mm256_fmadd_ps(_mm256_cvtepi32_ps(counts_i32(acc)), _mm256_loadu_ps(scale),
                                _mm256_loadu_ps(offset)),
                res, dst, n);
  }
  static void store_clamped(const Acc& acc, float lo, float hi, float k, const float* scale,
                            const float* offset, const float* res, float* dst, int n) {
    const __m256 a = _mm256_min_ps(
        _mm256_max_ps(_mm256_cvtepi32_ps(counts_i32(acc)), _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
    const __m256 dot = _mm256_fnmadd_ps(a, _mm256_set1_ps(2.0f), _mm256_set1_ps(k));
    store_lanes(_mm256_fmadd_ps(dot, _mm256_loadu_ps(scale), _mm256_loadu_ps(offset)), res, dst, n);
  }
  static void store_literal(const Acc& acc, const std::int32_t* kc, std::int32_t lo, std::int32_t hi,
                            const float* scale, const float* offset, const float* res, float* dst,
                            int n) {
    const __m256i c = counts_i32(acc);
    __m256i dot = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc)),
                                   _mm256_add_epi32(c, c));
    dot = _mm256_min_epi32(_mm256_max_epi32(dot, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
    store_lanes(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_loadu_ps(scale)),
                              _mm256_loadu_ps(offset)),
                res, dst, n);
  }
};

constexpr auto kTiles = bconv_tiles<Isa>();

}  // namespace

void bconv2d(const Bconv2dArgs& args) {
  bconv2d_indirect(args, TileKernels{Isa::kMR, Isa::kNR, kTiles.data()});
}

}  // namespace pocketbnn::avx2
