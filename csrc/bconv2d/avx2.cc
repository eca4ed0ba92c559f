// AVX2 tiles: a vector of 8 words is two ymm registers; POPCOUNT is the nibble lookup
// (two PSHUFB into a 16-entry table, one per nibble of every byte), then PSADBW against zero
// sums the 8 byte counts of each 64-bit lane.
//
// The lookup costs 9 instructions per ymm XOR, most on the two shuffle/shift ports. Deep layers
// (kHarleySealSteps k-steps or more) use Harley-Seal instead (Mula, Kurz and Lemire, "Faster
// population counts using AVX2 instructions"): carry-save adders (5 plain logic ops, any port)
// add 8 XORs bitwise into running ones / twos / fours, and only the carry out, the eights,
// is looked up: 6.5 instructions per XOR. On Zen 3 its loop runs 1.37x the lookup's (433 vs 315
// binary MACs/ns); in these tiles, 1 pixel x 8 channels since the running sums take 4
// registers per ymm, layers C and D of the benchmark ran 7-9% faster than in 3x8 lookup tiles.
#include <immintrin.h>

#include "bconv2d/tile.h"
#include "core/popcount_avx2.h"

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

// One pixel x 8 channels, each ymm half (4 channels) on its own: per half, the sum over the
// k-steps of popcount(x[k] XOR w[k]) per 64-bit lane.
struct HarleySeal {
  template <class, int MR, int NR>
  __attribute__((always_inline)) static void run(Isa::Acc (&acc)[MR][NR], const Word* w, std::size_t,
                                                 const Word* const (&xb)[MR], const std::ptrdiff_t* koff,
                                                 int k_steps) {
    static_assert(MR == 1 && NR == 1, "Harley-Seal tiles are 1 pixel x 8 channels");
    const Word* x = xb[0];
    // The XORs of k-steps k and k + 1, both halves.
    const auto pair = [&](int k, __m256i (&d)[2][2]) {
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) {
        const __m256i xv = _mm256_set1_epi64x(static_cast<long long>(x[koff[k + j]]));
        const __m256i* wk = reinterpret_cast<const __m256i*>(w + std::ptrdiff_t(k + j) * 8);
        d[0][j] = _mm256_xor_si256(xv, _mm256_loadu_si256(wk));
        d[1][j] = _mm256_xor_si256(xv, _mm256_loadu_si256(wk + 1));
      }
    };
    __m256i ones[2], twos[2], fours[2], eights[2];
    for (int h = 0; h < 2; ++h) ones[h] = twos[h] = fours[h] = eights[h] = _mm256_setzero_si256();
    int k = 0;
    for (; k + 8 <= k_steps; k += 8) {
      __m256i d[2][2], twos_a[2], twos_b[2], fours_a[2], fours_b[2], eights_bits[2];
      pair(k, d);
      for (int h = 0; h < 2; ++h) csa(twos_a[h], ones[h], ones[h], d[h][0], d[h][1]);
      pair(k + 2, d);
      for (int h = 0; h < 2; ++h) csa(twos_b[h], ones[h], ones[h], d[h][0], d[h][1]);
      for (int h = 0; h < 2; ++h) csa(fours_a[h], twos[h], twos[h], twos_a[h], twos_b[h]);
      pair(k + 4, d);
      for (int h = 0; h < 2; ++h) csa(twos_a[h], ones[h], ones[h], d[h][0], d[h][1]);
      pair(k + 6, d);
      for (int h = 0; h < 2; ++h) csa(twos_b[h], ones[h], ones[h], d[h][0], d[h][1]);
      for (int h = 0; h < 2; ++h) csa(fours_b[h], twos[h], twos[h], twos_a[h], twos_b[h]);
      for (int h = 0; h < 2; ++h) csa(eights_bits[h], fours[h], fours[h], fours_a[h], fours_b[h]);
      for (int h = 0; h < 2; ++h) eights[h] = _mm256_add_epi64(eights[h], popcount_lanes(eights_bits[h]));
    }
    __m256i count[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      count[h] = _mm256_add_epi64(_mm256_slli_epi64(eights[h], 3),
                                  popcount_lanes_weighted(ones[h], twos[h], fours[h]));
    }
    for (; k < k_steps; ++k) {
      const Isa::Vec d = Isa::load8(w + std::ptrdiff_t(k) * 8);
      const Isa::Acc sum = Isa::xor_popcount_add({count[0], count[1]}, Isa::broadcast(x[koff[k]]), d);
      count[0] = sum.lo;
      count[1] = sum.hi;
    }
    acc[0][0] = {count[0], count[1]};
  }
};

// Below this many k-steps the lookup tiles win: the running sums' final lookups (three per
// half) and the 1-pixel tiles' weight reloads outweigh the saving.
constexpr int kHarleySealSteps = 32;

constexpr auto kTiles = bconv_tiles<Isa>();
constexpr auto kHarleySealTiles = bconv_tiles<Isa, 1, 1, HarleySeal>();

}  // namespace

void bconv2d(const Bconv2dArgs& args) {
  if (args.kh * args.kw * args.words_per_group() >= kHarleySealSteps) {
    bconv2d_indirect(args, TileKernels{1, 1, kHarleySealTiles.data()});
  } else {
    bconv2d_indirect(args, TileKernels{Isa::kMR, Isa::kNR, kTiles.data()});
  }
}

}  // namespace pocketbnn::avx2
