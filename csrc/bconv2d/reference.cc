// Test oracle: nested loops straight from the definition in bconv2d.h, on the OHWI weights,
// one xor_popcount per word, and the output transform written literally (no folding).
#include <algorithm>

#include "bconv2d/bconv2d.h"

namespace pocketbnn::reference {

void bconv2d(const Bconv2dArgs& a) {
  const int wpg = a.words_per_group(), ocpg = a.out_c_per_group();
  const std::size_t out_words = packed_words(a.out_c);
  for (int n = 0; n < a.batch; ++n) {
    for (int oy = 0; oy < a.out_h; ++oy) {
      for (int ox = 0; ox < a.out_w; ++ox) {
        const std::size_t pixel = (std::size_t(n) * a.out_h + oy) * a.out_w + ox;
        for (int c = 0; c < a.out_c; ++c) {
          const int g = c / ocpg;
          std::int32_t dot = 0;
          for (int ky = 0; ky < a.kh; ++ky) {
            for (int kx = 0; kx < a.kw; ++kx) {
              const int iy = oy * a.stride_h - a.pad_top + ky * a.dilation_h;
              const int ix = ox * a.stride_w - a.pad_left + kx * a.dilation_w;
              const bool inside = iy >= 0 && iy < a.in_h && ix >= 0 && ix < a.in_w;
              if (!inside && a.pad_value == PadValue::kZero) continue;
              const Word* w = a.weights + ((std::size_t(c) * a.kh + ky) * a.kw + kx) * wpg;
              const Word* x =
                  inside ? a.input + ((std::size_t(n) * a.in_h + iy) * a.in_w + ix) * a.in_words +
                               std::size_t(g) * wpg
                         : nullptr;
              int differ = 0;
              for (int j = 0; j < wpg; ++j) differ += xor_popcount(inside ? x[j] : Word{0}, w[j]);
              dot += a.in_c_per_group - 2 * differ;
            }
          }
          if (a.output_type == OutputType::kFloat) {
            const std::int32_t clamped = std::clamp(dot, a.clamp_lo, a.clamp_hi);
            const std::size_t i = pixel * a.out_c + c;
            const float y = float(clamped) * a.multiplier[c] + a.bias[c];
            const float* r = a.residual != nullptr ? residual_for(a, a.residual + pixel * a.residual_channels, c) : nullptr;
            a.out_float[i] = r != nullptr ? y + *r : y;
          } else {
            Word& word = a.out_bits[pixel * out_words + c / kWordBits];
            const Word bit = Word{1} << (c % kWordBits);
            word = dot < a.thresholds[c] ? (word | bit) : (word & ~bit);
          }
        }
      }
    }
  }
  if (a.output_type == OutputType::kFloat && a.then.fn != nullptr) {
    a.then.fn(a.then.ctx, 0, std::size_t(a.batch) * a.out_h * a.out_w, 0, a.out_c);
  }
}

}  // namespace pocketbnn::reference
