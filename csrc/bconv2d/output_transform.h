// What a binary convolution writes, given the integer dot product of +-1 values.
//
// A micro-kernel accumulates acc = sum over taps of popcount(x XOR w), padded taps included
// with x = 0 (the +1 pattern). With T = kh * kw taps of Cg = in_c_per_group channels, a
// +1-padded convolution has dot = T * Cg - 2 * acc exactly. Zero padding (a padded tap adds 0)
// differs by what +1 padding added on the padded taps, sum of their weights:
//   dot = T * Cg - sum_{padded taps} tap_sum[tap][c] - 2 * acc =: kc[pixel][c] - 2 * acc,
// where kc is T * Cg away from the image border and a per-pixel row near it.
//
// Float output: y = clamp(dot, lo, hi) * m[c] + b[c]. Without the correction, dot = T*Cg - 2*acc
// and the clamp moves onto acc: lo <= dot <= hi  <=>  (T*Cg - hi) / 2 <= acc <= (T*Cg - lo) / 2,
// bounds that are integers or half-integers, exact in float32. Clamping acc there gives the
// clamped dot exactly (a half-integer bound maps to lo or hi itself), so the integer steps fold
// into the affine map:
//   y = clamp(acc, (T*Cg - hi) / 2, (T*Cg - lo) / 2) * (-2 m) + (T*Cg*m + b),
// one convert, a min, a max and one fused multiply-add per value, which is what keeps small-K
// layers near the popcount peak, ReLU (lo = 0) included. The folded form rounds differently
// from the literal one, by at most a few float32 ulps of T*Cg*|m| + |b|. With the correction
// the literal form runs, vectorized as well, rounded exactly as written.
//
// Bit output: bit c = (dot < threshold[c]) with an integer threshold per channel, no float
// arithmetic at all. kernels.bitpacked_output_params() derives thresholds from (m, b, clamp) so
// that the bit is exactly [y < 0], i.e. the sign of the float output after BatchNorm:
//   m > 0:  y < 0  <=>  clamp(dot) < -b/m  <=>  dot < ceil(-b/m)  (when lo < -b/m <= hi),
//   m < 0:  negate that channel's weights (dot -> -dot) and mirror the clamp, then as m > 0,
//   m = 0 or a clamp range on one side of -b/m: a constant bit (threshold INT32_MAX: always 1,
//   INT32_MIN: always 0).
#pragma once

#include <cstdint>
#include <vector>

#include "bconv2d/bconv2d.h"

namespace pocketbnn {

// Per-slot constants of one call (slots as in PackedBconvWeights), so micro-kernels index by
// slot and never map slots to channels in their inner loops.
struct OutputStage {
  OutputType type = OutputType::kFloat;
  bool folded = false;  // float output in the folded form above
  std::int32_t lo = INT32_MIN, hi = INT32_MAX;
  float acc_lo = 0.0f, acc_hi = 0.0f;    // folded: the clamp as bounds on acc
  std::vector<float> scale, offset;      // folded: -2m, T*Cg*m + b; else m, b
  std::vector<std::int32_t> thresholds;  // bit output
  std::int32_t full_k = 0;               // T * Cg
};

OutputStage make_output_stage(const Bconv2dArgs& args, const PackedBconvWeights& packed);

}  // namespace pocketbnn
