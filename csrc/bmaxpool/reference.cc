// Test oracle: one output word at a time, the AND over the window from the definition.
#include "bmaxpool/bmaxpool.h"

namespace pocketbnn::reference {

void bmaxpool(const BmaxpoolArgs& a) {
  for (int n = 0; n < a.batch; ++n) {
    for (int oy = 0; oy < a.out_h; ++oy) {
      for (int ox = 0; ox < a.out_w; ++ox) {
        for (int j = 0; j < a.words; ++j) {
          Word word = ~Word{0};
          for (int ky = 0; ky < a.kh; ++ky) {
            for (int kx = 0; kx < a.kw; ++kx) {
              const int iy = oy * a.stride_h - a.pad_top + ky;
              const int ix = ox * a.stride_w - a.pad_left + kx;
              if (iy < 0 || iy >= a.in_h || ix < 0 || ix >= a.in_w) continue;
              word &= a.input[((std::size_t(n) * a.in_h + iy) * a.in_w + ix) * a.words + j];
            }
          }
          a.output[((std::size_t(n) * a.out_h + oy) * a.out_w + ox) * a.words + j] = word;
        }
      }
    }
  }
}

}  // namespace pocketbnn::reference
