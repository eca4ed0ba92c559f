// The register-tiled indirect BGEMM micro-kernel, written once and instantiated per ISA.
//
// A tile computes MR output pixels x NR blocks of 8 output channels. Its accumulators are
// MR * NR vectors of 8 lanes, lane = output channel, so no horizontal reduction is ever
// needed: for each k-step (one input word of one tap) the kernel loads the k-th weight word of
// the NR * 8 channels (NR contiguous vectors, see PackedBconvWeights) and, per pixel, broadcasts
// that pixel's input word and does XOR, POPCOUNT, ADD against each weight vector. The input is
// reached without an im2col copy: the driver (indirect.cc) gives each pixel one pointer, its
// window's tap (0, 0) in an image whose padding is materialized (zero words, the +1 pattern),
// so pixel p's k-th word is bases[p][k_offsets[k]] for every pixel alike, border pixels and
// tiles that wrap from one output row to the next included: one flat loop over the k-steps,
// one offset load per k-step besides the vector loads (XNNPACK / LCE's indirection buffer
// holds a pointer per pixel and tap; with the padding materialized one per pixel suffices).
//
// An ISA supplies a traits type with:
//   kMR, kNR               the full tile; smaller tiles cover the remainders
//   Acc (Vec for EachStep) 8 running popcount sums (8 words)
//   zero(); and for the EachStep k-loop: load8(p), broadcast(word), xor_popcount_add(acc, x, w)
//                          (an ISA with its own k-loop, AVX2's LookupBytes, needs none of them)
//   store_folded(acc, scale, offset, const float* res, float* dst, int n)
//                          dst[i] = acc[i] * scale[i] + offset[i] (+ res[i] unless res is null),
//                          for i < n
//   store_clamped(acc, float lo, float hi, float k, scale, offset, res, float* dst, n)
//                          dst[i] = (k - 2 * clamp(acc[i], lo, hi)) * scale[i] + offset[i] (+ res[i])
//   store_literal(acc, const int32* kc, int32 lo, int32 hi, scale, offset, res, float* dst, n)
//                          dst[i] = float(clamp(kc[i] - 2 * acc[i], lo, hi)) * scale[i] + offset[i]
//                          (+ res[i]), rounded as written (a multiply, then adds)
//   (store_float passes a null res as a constant, so the residual costs nothing when absent.)
// Only the ISA's own file instantiates tile<>, inside its own namespace; the driver that builds the
// indirection buffer and splits work over threads (indirect.cc) is plain C++ and reaches the
// tiles through a TileKernels table. Nothing from the standard library is used here, so no
// shared inline function is ever compiled with ISA flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <array>
#include <utility>

#include "bconv2d/output_transform.h"
#include "core/types.h"

namespace pocketbnn {

struct TileArgs {
  int tiles;                          // consecutive tiles of MR pixels
  const Word* const* bases;           // per pixel, tap (0, 0) of its window (no group offset)
  const std::ptrdiff_t* k_offsets;    // per k-step (tap, word), words from tap (0, 0)
  int k_steps, word_offset;
  const Word* weights;       // first k-step of the tile's first 8-channel block
  std::size_t block_stride;  // words between consecutive blocks
  FloatForm form;                     // float output: OutputStage::form
  float acc_lo, acc_hi, full_k;       // clamped: OutputStage::acc_lo / acc_hi / full_k
  std::int32_t lo, hi;                // literal: OutputStage::lo / hi
  const float *scale, *offset;        // OutputStage::scale / offset, by slot
  const std::int32_t* thresholds;     // bit output: OutputStage::thresholds, by slot; else null
  int slot0, channel0, valid;  // first slot, its output channel, valid channels from there
  float* out;                  // float output of the first pixel (channel 0); pixels follow
  const float* residual;       // added to the float output: the first pixel's value for channel0; or null
  Word* bits_out;              // bit output of the first pixel (word 0); pixels follow
  // The per-pixel arrays (bases, kc_rows, out, bits_out) run on over the call's tiles.
  std::size_t out_step, bits_step;     // floats / words per output pixel
  std::size_t res_step;                // floats per residual pixel
  const std::int32_t* const* kc_rows;  // per pixel kc row by slot (bit and literal outputs)
};

using TileFn = void (*)(const TileArgs&);

// Tiles of every size up to the full one: fns[(mr' - 1) * nr + (n - 1)] covers mr' x n.
struct TileKernels {
  int mr, nr;
  const TileFn* fns;
  // The tiles read the input split into nibbles: every word w as two, w & 0x0f.. then
  // (w >> 4) & 0x0f.. (the driver's copy of the image; k-offsets then point at the first).
  bool nibble_input = false;
  // The tiles read the weights split the same way (PackedBconvWeights::nibbles), else whole.
  bool nibble_weights = false;
};

// Writes the n <= 64 low bits of `bits` at bit offset `bit` of a packed row, leaving the
// row's other bits alone; with groups the field may straddle two words.
template <class Isa>
void insert_bits(Word* row, int bit, Word bits, int n) {
  const int word = bit / kWordBits, shift = bit % kWordBits;
  const Word mask = n >= kWordBits ? ~Word{0} : (Word{1} << n) - 1;
  bits &= mask;
  row[word] = (row[word] & ~(mask << shift)) | (bits << shift);
  if (shift + n > kWordBits) {
    const int spill = kWordBits - shift;
    row[word + 1] = (row[word + 1] & ~(mask >> spill)) | (bits >> spill);
  }
}

// `v`, opaque to the optimizer from here on. The output stage's scalars are the same for a
// call's every tile: hoisted out of the tile loop, their broadcasts would hold vector registers
// through the k-loop, which then spills (AVX2 layers B-D with a clamp or zero padding: 3-10%
// slower). Read per tile instead, they cost a load each.
template <class T>
__attribute__((always_inline)) inline T per_tile(T v) {
  asm volatile("" : "+m"(v));
  return v;
}

// Float output of one tile: MR pixels x NR blocks, n = valid lanes of each block (8 but in a
// layer's last block; kFull: all 8). Fully unrolled, so the accumulators stay in registers
// (indexing them with run-time p, b would put them on the stack for the whole tile).
template <class Isa, FloatForm kForm, bool kResidual, bool kFull, int MR, int NR>
__attribute__((always_inline)) inline void store_float(const TileArgs& t,
                                                       const typename Isa::Acc (&acc)[MR][NR],
                                                       float* out0, const float* res0,
                                                       const std::int32_t* const* kc_rows) {
  constexpr int L = 8;
  const float *const scale = t.scale + t.slot0, *const offset = t.offset + t.slot0;
  constexpr bool kClamped = kForm == FloatForm::kClamped, kLiteral = kForm == FloatForm::kLiteral;
  const float acc_lo = kClamped ? per_tile(t.acc_lo) : 0, acc_hi = kClamped ? per_tile(t.acc_hi) : 0;
  const float full_k = kClamped ? per_tile(t.full_k) : 0;
  const std::int32_t lo = kLiteral ? per_tile(t.lo) : 0, hi = kLiteral ? per_tile(t.hi) : 0;
#pragma GCC unroll 16
  for (int p = 0; p < MR; ++p) {
    float* const out = out0 + p * t.out_step + t.channel0;
    const float* const res = kResidual ? res0 + p * t.res_step : nullptr;
    const std::int32_t* const kc = kc_rows[p] + t.slot0;
#pragma GCC unroll 16
    for (int b = 0; b < NR; ++b) {
      const int n = kFull ? L : t.valid - b * L < L ? t.valid - b * L : L;
      if (n <= 0) continue;
      const int i = b * L;
      const float* const r = kResidual ? res + i : nullptr;
      if (kForm == FloatForm::kFolded) {
        Isa::store_folded(acc[p][b], scale + i, offset + i, r, out + i, n);
      } else if (kClamped) {
        Isa::store_clamped(acc[p][b], acc_lo, acc_hi, full_k, scale + i, offset + i, r, out + i, n);
      } else {
        Isa::store_literal(acc[p][b], kc + i, lo, hi, scale + i, offset + i, r, out + i, n);
      }
    }
  }
}

// Bit output of one tile: one integer compare per value, NR * 8 <= 64 bits per pixel.
template <class Isa, int MR, int NR>
__attribute__((always_inline)) inline void store_bits(const TileArgs& t, const typename Isa::Acc (&acc)[MR][NR],
                                                      Word* bits0, const std::int32_t* const* kc_rows) {
  constexpr int L = 8;
  static_assert(NR * L <= kWordBits, "a tile's bits must fit one word");
#pragma GCC unroll 16
  for (int p = 0; p < MR; ++p) {
    Word bits = 0;
#pragma GCC unroll 16
    for (int b = 0; b < NR; ++b) {
      const int slot = t.slot0 + b * L;
      bits |= Word(Isa::threshold_bits(acc[p][b], kc_rows[p] + slot, t.thresholds + slot)) << (b * L);
    }
    insert_bits<Isa>(bits0 + p * t.bits_step, t.channel0, bits, t.valid);
  }
}

// The k-loop every ISA can run: for each k-step, load the NR weight vectors, and per pixel
// broadcast its input word and XOR / POPCOUNT / ADD it into the pixel's NR accumulators.
struct EachStep {
  template <class Isa, int MR, int NR>
  __attribute__((always_inline)) static void run(typename Isa::Acc (&acc)[MR][NR], const Word* w,
                                                 std::size_t block_stride, const Word* const (&xb)[MR],
                                                 const std::ptrdiff_t* koff, int k_steps) {
    for (int k = 0; k < k_steps; ++k, w += 8) {
      const std::ptrdiff_t o = koff[k];
      typename Isa::Vec wv[NR];
#pragma GCC unroll 16
      for (int b = 0; b < NR; ++b) wv[b] = Isa::load8(w + b * block_stride);
#pragma GCC unroll 16
      for (int p = 0; p < MR; ++p) {
        const typename Isa::Vec xv = Isa::broadcast(xb[p][o]);
#pragma GCC unroll 16
        for (int b = 0; b < NR; ++b) acc[p][b] = Isa::xor_popcount_add(acc[p][b], xv, wv[b]);
      }
    }
  }
};

// A call's tiles, t.tiles runs of MR pixels one after the other, with one output kind fixed at
// compile time (kBits, else float output of form kForm, kResidual, kFull): the loop has no
// branches besides its own, so little scalar work separates one tile's output stage from the
// next tile's k-loop (the out-of-order window then overlaps them). It works on its own copy
// of the arguments, so the compiler need not reload them after each store to the output, and
// each output kind is a function of its own, so its register allocation is its own (inlined
// into one function, a change to one kind's stores moved spills into the others' k-loops).
// On the Zen 3 VM, against one loop with the branches inside: 1x1 layers' tiles of one k-step
// 42 -> 30 cycles, layer A 330 -> 310 us, B 295 -> 280 us, C and D alike or a little faster.
template <class Isa, int MR, int NR, class Accumulate, bool kBits, FloatForm kForm, bool kResidual, bool kFull>
__attribute__((noinline)) void tile_run(const TileArgs& args) {
  const TileArgs t = args;
  for (int tile = 0; tile < t.tiles; ++tile) {
    const std::size_t first = std::size_t(tile) * MR;
    const std::int32_t* const* const kc_rows = t.kc_rows + first;
    typename Isa::Acc acc[MR][NR];
#pragma GCC unroll 16
    for (int p = 0; p < MR; ++p) {
#pragma GCC unroll 16
      for (int b = 0; b < NR; ++b) acc[p][b] = Isa::zero();
    }
    const Word* xb[MR];
#pragma GCC unroll 16
    for (int p = 0; p < MR; ++p) xb[p] = t.bases[first + p] + t.word_offset;
    Accumulate::template run<Isa, MR, NR>(acc, t.weights, t.block_stride, xb, t.k_offsets, t.k_steps);
    if (kBits) {
      store_bits<Isa, MR, NR>(t, acc, t.bits_out + first * t.bits_step, kc_rows);
    } else {
      store_float<Isa, kForm, kResidual, kFull, MR, NR>(
          t, acc, t.out + first * t.out_step, kResidual ? t.residual + first * t.res_step : nullptr, kc_rows);
    }
  }
}

template <class Isa, int MR, int NR, class Accumulate, FloatForm kForm, bool kResidual>
__attribute__((always_inline)) inline void tile_run_float(const TileArgs& t) {
  // Every block full (all but a layer's last channels) is the common case: then n = 8 is a
  // compile-time constant and the ISA's loads and stores need no lane masks (masked AVX-512
  // stores cost A-like layers 10% on Zen 4).
  if (t.valid == NR * 8) {
    tile_run<Isa, MR, NR, Accumulate, false, kForm, kResidual, true>(t);
  } else {
    tile_run<Isa, MR, NR, Accumulate, false, kForm, kResidual, false>(t);
  }
}

template <class Isa, int MR, int NR, class Accumulate, FloatForm kForm>
__attribute__((always_inline)) inline void tile_run_form(const TileArgs& t) {
  if (t.residual != nullptr) {
    tile_run_float<Isa, MR, NR, Accumulate, kForm, true>(t);
  } else {
    tile_run_float<Isa, MR, NR, Accumulate, kForm, false>(t);
  }
}

// A tile: MR pixels x NR blocks, accumulated by `Accumulate` (EachStep, or an ISA's own k-loop
// with the same contract: acc[p][b] = the popcounts of pixel p's words XOR block b's weights,
// summed over the k-steps), over t.tiles runs of MR pixels.
template <class Isa, int MR, int NR, class Accumulate = EachStep>
void bconv_tile(const TileArgs& t) {
  if (t.thresholds != nullptr) {
    tile_run<Isa, MR, NR, Accumulate, true, FloatForm::kFolded, false, false>(t);
  } else if (t.form == FloatForm::kFolded) {
    tile_run_form<Isa, MR, NR, Accumulate, FloatForm::kFolded>(t);
  } else if (t.form == FloatForm::kClamped) {
    tile_run_form<Isa, MR, NR, Accumulate, FloatForm::kClamped>(t);
  } else {
    tile_run_form<Isa, MR, NR, Accumulate, FloatForm::kLiteral>(t);
  }
}

template <class Isa, int NR, class Accumulate, std::size_t... I>
constexpr auto bconv_tile_table(std::index_sequence<I...>) {
  return std::array<TileFn, sizeof...(I)>{&bconv_tile<Isa, int(I) / NR + 1, int(I) % NR + 1, Accumulate>...};
}

// Tiles of every size up to MR x NR (TileKernels order).
template <class Isa, int MR = Isa::kMR, int NR = Isa::kNR, class Accumulate = EachStep>
constexpr auto bconv_tiles() {
  return bconv_tile_table<Isa, NR, Accumulate>(std::make_index_sequence<MR * NR>());
}

// Runs a whole convolution with the given tiles (indirect.cc).
void bconv2d_indirect(const Bconv2dArgs& args, const TileKernels& tiles);

}  // namespace pocketbnn
