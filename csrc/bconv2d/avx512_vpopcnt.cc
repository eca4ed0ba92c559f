// AVX-512 VPOPCNTDQ tiles: one zmm holds the 8 words of a k-step, and XOR, VPOPCNTQ, VPADDQ
// are one instruction each, so a k-step of the 6 x 32-channel tile is 72 vector ALU
// instructions against 4 weight loads and 6 broadcast loads. 24 accumulators + 4 weights + a
// broadcast + a temporary fit the 32 zmm registers; 6x4 measured at least as fast as 4x4 and
// 2x8 on Zen 5 (larger tiles amortize the per-tile setup and output stage).
#include <immintrin.h>

#include "bconv2d/tile.h"

namespace pocketbnn::avx512_vpopcnt {
namespace {

struct Isa {
  static constexpr int kMR = 6, kNR = 4;
  using Vec = __m512i;
  using Acc = __m512i;
  static Acc zero() { return _mm512_setzero_si512(); }
  static Vec load8(const Word* p) { return _mm512_loadu_si512(p); }
  static Vec broadcast(Word x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
  static Acc xor_popcount_add(Acc acc, Vec x, Vec w) {
    return _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, w)));
  }
  static unsigned threshold_bits(Acc acc, const std::int32_t* kc, const std::int32_t* thresholds) {
    const __m256i counts = _mm512_cvtepi64_epi32(acc);
    const __m256i dot = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc)),
                                         _mm256_add_epi32(counts, counts));
    return _mm256_cmplt_epi32_mask(
        dot, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(thresholds)));
  }
  // Lane masks only for a partial block (n < 8): masked loads and stores are slow on Zen 4,
  // and the tiles pass n = 8 as a constant for full blocks.
  static __m256 load_lanes(const float* p, int n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(__mmask8((1u << n) - 1), p);
  }
  static void store(__m256 y, const float* res, float* dst, int n) {
    if (res != nullptr) y = _mm256_add_ps(y, load_lanes(res, n));
    if (n == 8) {
      _mm256_storeu_ps(dst, y);
    } else {
      _mm256_mask_storeu_ps(dst, __mmask8((1u << n) - 1), y);
    }
  }
  static void store_folded(Acc acc, const float* scale, const float* offset, const float* res,
                           float* dst, int n) {
    store(_mm256_fmadd_ps(_mm512_cvtepi64_ps(acc), load_lanes(scale, n), load_lanes(offset, n)), res, dst,
          n);
  }
  static void store_clamped(Acc acc, float lo, float hi, float k, const float* scale,
                            const float* offset, const float* res, float* dst, int n) {
    const __m256 a = _mm256_min_ps(_mm256_max_ps(_mm512_cvtepi64_ps(acc), _mm256_set1_ps(lo)),
                                   _mm256_set1_ps(hi));
    const __m256 dot = _mm256_fnmadd_ps(a, _mm256_set1_ps(2.0f), _mm256_set1_ps(k));
    store(_mm256_fmadd_ps(dot, load_lanes(scale, n), load_lanes(offset, n)), res, dst, n);
  }
  static void store_literal(Acc acc, const std::int32_t* kc, std::int32_t lo, std::int32_t hi,
                            const float* scale, const float* offset, const float* res, float* dst,
                            int n) {
    const __m256i counts = _mm512_cvtepi64_epi32(acc);
    __m256i dot = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc)),
                                   _mm256_add_epi32(counts, counts));
    dot = _mm256_min_epi32(_mm256_max_epi32(dot, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
    store(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), load_lanes(scale, n)), load_lanes(offset, n)),
          res, dst, n);
  }
};

constexpr auto kTiles = bconv_tiles<Isa>();

}  // namespace

void bconv2d(const Bconv2dArgs& args) {
  bconv2d_indirect(args, TileKernels{Isa::kMR, Isa::kNR, kTiles.data()});
}

}  // namespace pocketbnn::avx512_vpopcnt
