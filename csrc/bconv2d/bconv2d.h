// Binary 2-D convolution (the LceBconv2d role) on bit-packed NHWC data.
//
// Shapes (all row-major, words along the last axis, see core/types.h for the bit convention):
//   input    [batch][in_h][in_w][groups * words_per_group]
//   weights  [out_c][kh][kw][words_per_group]                      (OHWI)
//   output   float32 [batch][out_h][out_w][out_c]  or  Word [...][packed_words(out_c)]
// with words_per_group = packed_words(in_c_per_group). For groups > 1, in_c_per_group must be a
// multiple of kWordBits so that groups start on word boundaries; out_c must divide by groups.
//
// Arithmetic. Output pixel (n, oy, ox), channel c of group g sees taps (ky, kx) at
//   iy = oy * stride_h - pad_top + ky * dilation_h,   ix = ox * stride_w - pad_left + kx * dilation_w.
// Each tap inside the image contributes the +-1 dot product of in_c_per_group values,
//   in_c_per_group - 2 * popcount(x XOR w)
// (channel padding bits are 0 in both operands and never count). A tap outside the image
// (only with SAME padding) contributes as if the input were +1 everywhere (PadValue::kOne, the
// bit pattern 0, so the kernels need do nothing) or contributes 0 (PadValue::kZero).
// The sum over taps is the integer `dot`; see output_transform.h for what is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/types.h"

namespace pocketbnn {

enum class PadValue : int { kOne = 1, kZero = 0 };
enum class OutputType : int { kFloat = 0, kBits = 1 };

// How a residual (Bconv2dArgs::residual) of r = residual_channels channels maps onto the output
// channels: channel c adds
//   kSame:    residual[c]                                     (r = out_c)
//   kTile:    residual[c mod r]
//   kZeroPad: residual[c] for c < r, nothing for the others
// (PokeBNN's shortcuts, added in the output stage instead of in a pass of their own). With a
// map, groups is 1 and r a multiple of 64, so every tile's channels map to one contiguous run.
enum class ResidualMap : int { kSame = 0, kTile = 1, kZeroPad = 2 };

// Weights re-laid out for the optimized kernels, computed once per weight tensor.
//
// Output channels of each group are split into blocks of kBlockLanes; within a block, the words
// are stored k-major, lane-minor: data[((g * blocks + b) * k_words + k) * kBlockLanes + lane]
// with k = tap * words_per_group + word. One k-step of a micro-kernel thus loads the k-th word
// of 8 output channels as one contiguous vector. Lanes past the group's channel count are 0.
// A (group, block, lane) triple is a "slot": slot = (g * blocks + b) * kBlockLanes + lane.
struct PackedBconvWeights {
  static constexpr int kBlockLanes = 8;
  int out_c = 0, kh = 0, kw = 0, groups = 1, words_per_group = 0, in_c_per_group = 0;
  int out_c_per_group = 0, blocks = 0;  // blocks per group
  std::vector<Word> data;
  // tap_sums[tap * slots + slot]: sum of the +-1 weights of that tap, in_c_per_group -
  // 2 * popcount(w); what a +1-padded tap contributes, used for the zero-padding correction.
  std::vector<std::int32_t> tap_sums;
  // `data` split into nibbles for tiles that read nibbles (TileKernels::nibble_input): per
  // k-step of a block, 8 words w & 0x0f.. then 8 words (w >> 4) & 0x0f.., each 8 in the lane
  // order 0, 2, 4, 6, 1, 3, 5, 7 (the AVX2 tiles' Acc8 halves hold even and odd channels,
  // avx2.cc). Made when packing
  // if those tiles are the active kernel's (split_nibbles), else empty: the driver then splits
  // per call.
  std::vector<Word> nibbles;

  int taps() const { return kh * kw; }
  int k_words() const { return taps() * words_per_group; }
  int slots() const { return groups * blocks * kBlockLanes; }
  // Output channel of a slot, or -1 for a padding lane.
  int channel(int slot) const;
};

PackedBconvWeights pack_bconv_weights(const Word* ohwi, int out_c, int kh, int kw, int groups,
                                      int in_c_per_group);

// PackedBconvWeights::nibbles of `p`.
std::vector<Word> split_nibbles(const PackedBconvWeights& p);

struct OutputStage;  // output_transform.h

// Work done on float output right after the kernel wrote it, while it is still in cache (an
// epilogue: e.g. the activation, SE gate and BatchNorm of the layer, instead of a pass of
// their own over memory). fn(ctx, first, count, c_begin, c_end) may rewrite output pixels
// [first, first + count) (counted over the batch), channels [c_begin, c_end); the kernels call
// it once for each region they finish, from several threads at once on disjoint regions, and
// together the regions cover the output once.
struct OutputHook {
  void (*fn)(const void* ctx, std::size_t first, std::size_t count, int c_begin, int c_end) = nullptr;
  const void* ctx = nullptr;
};

struct Bconv2dArgs {
  const Word* input = nullptr;
  int batch = 0, in_h = 0, in_w = 0;
  int in_words = 0;  // groups * words_per_group
  const Word* weights = nullptr;               // OHWI, used by the reference kernel
  const PackedBconvWeights* packed = nullptr;  // the same weights, used by optimized kernels
  int out_c = 0, kh = 0, kw = 0, groups = 1, in_c_per_group = 0;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0;  // 0 for VALID; then every tap lies inside the image
  int out_h = 0, out_w = 0;
  PadValue pad_value = PadValue::kOne;
  OutputType output_type = OutputType::kFloat;
  // Float output: clamp(dot, clamp_lo, clamp_hi) * multiplier[c] + bias[c] (+ residual, per
  // pixel residual_channels floats mapped by residual_map, e.g. a ResNet shortcut; with kSame
  // it may be out_float itself).
  const float* multiplier = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;
  int residual_channels = 0;
  ResidualMap residual_map = ResidualMap::kSame;
  std::int32_t clamp_lo = INT32_MIN, clamp_hi = INT32_MAX;
  // Bit output: bit c = dot < thresholds[c]; padding bits of the last word are 0.
  const std::int32_t* thresholds = nullptr;
  float* out_float = nullptr;
  OutputHook then;  // float output: called on what was written, or none
  Word* out_bits = nullptr;
  int num_threads = 1;
  // The output stage of these arguments made once in advance (make_output_stage), or null:
  // the optimized kernels then make it per call.
  const OutputStage* stage = nullptr;

  int words_per_group() const { return in_words / groups; }
  int out_c_per_group() const { return out_c / groups; }
};

// True if some tap of some output pixel falls outside the image.
bool touches_padding(const Bconv2dArgs& args);

// What output channel `c` of a pixel adds, given that pixel's residual row (residual_map): a
// pointer to the residual value, or null. Channels c..c+n-1 within one 64-channel run map to
// the n values from there.
const float* residual_for(const Bconv2dArgs& args, const float* row, int c);

using Bconv2dFn = void (*)(const Bconv2dArgs& args);

namespace reference {
void bconv2d(const Bconv2dArgs& args);
}
namespace portable {
void bconv2d(const Bconv2dArgs& args);
}
namespace avx2 {
void bconv2d(const Bconv2dArgs& args);
}
namespace avx512_vpopcnt {
void bconv2d(const Bconv2dArgs& args);
}

}  // namespace pocketbnn
