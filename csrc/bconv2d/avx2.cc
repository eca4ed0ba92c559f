// AVX2 tiles: a vector of 8 words is two ymm registers; POPCOUNT is a 16-entry lookup (PSHUFB)
// per nibble of every byte, on words split into nibbles beforehand (LookupBytes below), the
// byte counts summed per 64-bit lane by PSADBW once per 31 k-steps.
#include <immintrin.h>

#include "bconv2d/tile.h"
#include "core/popcount_avx2.h"

namespace pocketbnn::avx2 {
namespace {

// A block's 8 counts: one per 64-bit lane of two vectors.
struct Acc8 {
  __m256i lo, hi;
};

// kEvenOdd: the weights' lanes come in split_nibbles' order, even channels in `lo`, odd ones in
// `hi`, so the counts (below 2^31, so in the low half of their lanes) interleave into channel
// order with a shift and an OR; else lo holds channels 0-3 and hi 4-7, put in order by three
// lane permutes (which compete with the k-loop's lookups for the same two shuffle pipes).
template <bool kEvenOdd>
struct IsaT {
  // 3 pixels: the 4-pixel tile's 8 byte accumulators, 4 weight vectors, the table and two
  // input words outgrow the 16 ymm registers, and GCC spilled 3 accumulators (B 305 -> 284 us).
  static constexpr int kMR = 3, kNR = 1;
  using Acc = Acc8;
  static Acc zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  // The 8 counts as int32, in channel order.
  static __m256i counts_i32(const Acc& acc) {
    if (kEvenOdd) return _mm256_or_si256(acc.lo, _mm256_slli_epi64(acc.hi, 32));
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

// MR pixels x NR blocks by nibble lookup. kSplit: on split words, the driver handing the input
// split into nibbles (TileKernels::nibble_input) and the weights coming split from packing
// (PackedBconvWeights::nibbles), so (x XOR w) & 0x0f.. is x_lo XOR w_lo and each 256-bit XOR
// costs 2 XORs, 2 PSHUFB and 2 byte adds, against 9 instructions for XOR, split and lookup
// with a PSADBW per step. Byte counts add up for up to kByteSteps k-steps (8 a step at most:
// 31 * 8 < 256) before PSADBW sums them per lane. On the Zen 3 VM this took layers A-D from
// 269 / 289 / 303 / 300 to about 340 / 390 / 420 / 415 binary MACs/ns (docs/kernels.md has
// each step); Harley-Seal tiles (carry-save adders, 1 pixel x 8 channels as their running sums
// take 4 registers per ymm) were slower than either step but the first. Else (few pixels, see
// kFewPixels) input and weights are whole words: XOR, then the split of the result (AND,
// shift, AND) and the same lookups, 8 instructions per 256-bit XOR.
template <bool kSplit>
struct LookupBytes {
  static constexpr int kByteSteps = 31;

  // One k-step's byte counts: bytes[p][b][h] = those of step k (kFirst), else += them.
  template <int MR, int NR, bool kFirst>
  __attribute__((always_inline)) static void step(__m256i (&bytes)[MR][NR][2], __m256i table, __m256i nibble,
                                                  const Word* w, std::size_t block_stride,
                                                  const Word* const (&xb)[MR], const std::ptrdiff_t* koff, int k) {
    // Split weights: per k-step 8 low-nibble words, then 8 high; whole weights: 8 words.
    const Word* const wk = w + std::ptrdiff_t(k) * (kSplit ? 16 : 8);
    const std::ptrdiff_t o = koff[k];
    __m256i wv[NR][2][kSplit ? 2 : 1];  // [block][half][low / high nibbles, or the words]
#pragma GCC unroll 16
    for (int b = 0; b < NR; ++b) {
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        wv[b][h][0] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk + b * block_stride + 4 * h));
        if (kSplit) {
          wv[b][h][kSplit] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk + b * block_stride + 8 + 4 * h));
        }
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < MR; ++p) {
      // Split input: the low nibbles' word, then the high.
      const __m256i x = _mm256_set1_epi64x(static_cast<long long>(xb[p][o]));
      const __m256i x_hi = kSplit ? _mm256_set1_epi64x(static_cast<long long>(xb[p][o + 1])) : x;
#pragma GCC unroll 16
      for (int b = 0; b < NR; ++b) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          __m256i count;
          if (kSplit) {
            count = xor_popcount_bytes(table, x, x_hi, wv[b][h][0], wv[b][h][kSplit]);
          } else {
            const __m256i v = _mm256_xor_si256(x, wv[b][h][0]);
            count = _mm256_add_epi8(_mm256_shuffle_epi8(table, _mm256_and_si256(v, nibble)),
                                    _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)));
          }
          bytes[p][b][h] = kFirst ? count : _mm256_add_epi8(bytes[p][b][h], count);
        }
      }
    }
  }

  // acc[p][b] (+)= the lane sums of k-steps [k0, k1), 0 < k1 - k0 <= kByteSteps. The first step
  // sets the byte counts (no zeroing, no adds into zero: a tenth of a one-k-step tile's work).
  template <int MR, int NR, bool kAdd>
  __attribute__((always_inline)) static void steps(Acc8 (&acc)[MR][NR], const Word* w, std::size_t block_stride,
                                                   const Word* const (&xb)[MR], const std::ptrdiff_t* koff,
                                                   int k0, int k1) {
    __m256i bytes[MR][NR][2];
    const __m256i table = nibble_popcount_table(), nibble = _mm256_set1_epi8(0x0f);
    step<MR, NR, true>(bytes, table, nibble, w, block_stride, xb, koff, k0);
    for (int k = k0 + 1; k < k1; ++k) step<MR, NR, false>(bytes, table, nibble, w, block_stride, xb, koff, k);
    // A zero made here, opaque to the optimizer: hoisted out of the tile loop, it would hold a
    // register through the k-loop, which then spills byte counts.
    __m256i zero;
    asm volatile("vpxor %x0, %x0, %x0" : "=x"(zero));
#pragma GCC unroll 16
    for (int p = 0; p < MR; ++p) {
#pragma GCC unroll 16
      for (int b = 0; b < NR; ++b) {
        const __m256i lo = _mm256_sad_epu8(bytes[p][b][0], zero);
        const __m256i hi = _mm256_sad_epu8(bytes[p][b][1], zero);
        acc[p][b] = kAdd ? Acc8{_mm256_add_epi64(acc[p][b].lo, lo), _mm256_add_epi64(acc[p][b].hi, hi)}
                         : Acc8{lo, hi};
      }
    }
  }

  template <class, int MR, int NR>
  __attribute__((always_inline)) static void run(Acc8 (&acc)[MR][NR], const Word* w, std::size_t block_stride,
                                                 const Word* const (&xb)[MR], const std::ptrdiff_t* koff,
                                                 int k_steps) {
    if (k_steps <= kByteSteps) {  // up to 248 binary inputs per (pixel, channel): one pass
      steps<MR, NR, false>(acc, w, block_stride, xb, koff, 0, k_steps);
      return;
    }
    // The sums of passes so far wait in memory (through a pointer opaque to the optimizer):
    // kept in registers through the next pass, they made it spill its byte counts instead.
    Acc8 storage[MR][NR];
    Acc8(*sums)[MR][NR] = &storage;
    asm("" : "+r"(sums));
    steps<MR, NR, false>(*sums, w, block_stride, xb, koff, 0, kByteSteps);
    for (int k0 = kByteSteps; k0 < k_steps; k0 += kByteSteps) {
      steps<MR, NR, true>(*sums, w, block_stride, xb, koff, k0, k0 + kByteSteps < k_steps ? k0 + kByteSteps : k_steps);
    }
#pragma GCC unroll 16
    for (int p = 0; p < MR; ++p) {
#pragma GCC unroll 16
      for (int b = 0; b < NR; ++b) acc[p][b] = (*sums)[p][b];
    }
  }
};

// Split weights come in split_nibbles' even / odd lane order; whole ones in channel order.
using SplitIsa = IsaT<true>;
using WholeIsa = IsaT<false>;
constexpr auto kTiles = bconv_tiles<SplitIsa, SplitIsa::kMR, SplitIsa::kNR, LookupBytes<true>>();

// Up to this many output pixels (a batch-1 dense layer: one) a layer's weights are streamed
// about once, so splitting them costs more than it saves: the few-pixel tiles read whole input
// and weights, 1 pixel x 4 blocks (no weight is reused across pixels, so the tile spends its
// registers on channels). Against 3 x 1 tiles that split only the weights, on the Zen 3 VM: a
// 1 x 1024 -> 1024 dense layer 8.5 -> 6.0 us a call, 1 x 1024 -> 4096 28.4 -> 20.7 us.
constexpr std::size_t kFewPixels = 8;
constexpr int kFewPixelBlocks = 4;
constexpr auto kFewPixelTiles = bconv_tiles<WholeIsa, 1, kFewPixelBlocks, LookupBytes<false>>();

}  // namespace

void bconv2d(const Bconv2dArgs& args) {
  const std::size_t pixels = std::size_t(args.batch) * args.out_h * args.out_w;
  bconv2d_indirect(args, pixels > kFewPixels
                             ? TileKernels{SplitIsa::kMR, SplitIsa::kNR, kTiles.data(), true, true}
                             : TileKernels{1, kFewPixelBlocks, kFewPixelTiles.data(), false, false});
}

}  // namespace pocketbnn::avx2
