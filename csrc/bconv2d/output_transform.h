// What a binary convolution writes, given the integer dot product of +-1 values.
//
// A micro-kernel accumulates acc = sum over taps of popcount(x XOR w), padded taps included
// with x = 0 (the +1 pattern). With T = kh * kw taps of Cg = in_c_per_group channels, a
// +1-padded convolution has dot = T * Cg - 2 * acc exactly. Zero padding (a padded tap adds 0)
// differs by what +1 padding added on the padded taps, sum of their weights:
//   dot = T * Cg - sum_{padded taps} tap_sum[tap][c] - 2 * acc =: kc[pixel][c] - 2 * acc,
// where kc is T * Cg away from the image border and a per-pixel row near it.
//
// Float output: y = clamp(dot, lo, hi) * m[c] + b[c], in one of three forms (FloatForm):
//  - folded, when no clamp can bind (lo <= -T*Cg and hi >= T*Cg, e.g. no activation) and
//    there is no correction: the integer steps fold into the affine map,
//      y = acc * (-2 m) + (T*Cg*m + b),
//    one convert and one fused multiply-add per value, which is what keeps small-K layers near
//    the popcount peak. It rounds differently from the literal form, by at most a few float32
//    ulps of T*Cg*|m| + |b|.
//  - clamped, when a clamp binds (a fused ReLU: lo = 0) and there is no correction: the clamp
//    moves onto acc, lo <= dot <= hi <=> (T*Cg - hi) / 2 <= acc <= (T*Cg - lo) / 2, bounds
//    that are integers or half-integers, exact in float32, so
//      y = (T*Cg - 2 clamp(acc, (T*Cg - hi) / 2, (T*Cg - lo) / 2)) * m + b
//    with the dot exact in float and one rounding (a fused multiply-add): a clamped value is
//    exactly lo * m + b (b itself for a ReLU), as in the literal form. Folding further would
//    round b away when |T*Cg*m| >> |b|, and a ReLU clamps half the values.
//  - literal, with the zero-padding correction, vectorized as well, rounded as written.
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
enum class FloatForm { kFolded, kClamped, kLiteral };

struct OutputStage {
  OutputType type = OutputType::kFloat;
  FloatForm form = FloatForm::kLiteral;  // float output
  std::int32_t lo = INT32_MIN, hi = INT32_MAX;
  float acc_lo = 0.0f, acc_hi = 0.0f;    // clamped: the clamp as bounds on acc
  std::vector<float> scale, offset;      // folded: -2m, T*Cg*m + b; else m, b
  std::vector<std::int32_t> thresholds;  // bit output
  std::int32_t full_k = 0;               // T * Cg
};

OutputStage make_output_stage(const Bconv2dArgs& args, const PackedBconvWeights& packed);

}  // namespace pocketbnn
