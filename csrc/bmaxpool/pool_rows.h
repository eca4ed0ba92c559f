// The optimized max-pool, written once: per output pixel, the window is clamped to the image
// once, then whole rows of words are ANDed, a loop the compiler vectorizes with the including
// file's ISA flags. `Tag` is a type local to that file, so each ISA gets its own instantiation.
#pragma once

#include "bmaxpool/bmaxpool.h"

namespace pocketbnn {

template <class Tag>
void bmaxpool_rows(const BmaxpoolArgs& a, int n, int oy) {
  const int y0 = oy * a.stride_h - a.pad_top;
  const int ky0 = y0 < 0 ? -y0 : 0;
  const int ky1 = y0 + a.kh > a.in_h ? a.in_h - y0 : a.kh;
  for (int ox = 0; ox < a.out_w; ++ox) {
    const int x0 = ox * a.stride_w - a.pad_left;
    const int kx0 = x0 < 0 ? -x0 : 0;
    const int kx1 = x0 + a.kw > a.in_w ? a.in_w - x0 : a.kw;
    Word* out = a.output + ((std::size_t(n) * a.out_h + oy) * a.out_w + ox) * a.words;
    for (int j = 0; j < a.words; ++j) out[j] = ~Word{0};
    for (int ky = ky0; ky < ky1; ++ky) {
      for (int kx = kx0; kx < kx1; ++kx) {
        const Word* in =
            a.input + ((std::size_t(n) * a.in_h + y0 + ky) * a.in_w + x0 + kx) * a.words;
        for (int j = 0; j < a.words; ++j) out[j] &= in[j];
      }
    }
  }
}

// Runs bmaxpool_rows<Tag> over all (n, oy) rows on a.num_threads threads (pool.cc).
void bmaxpool_parallel(const BmaxpoolArgs& a, void (*rows)(const BmaxpoolArgs&, int, int));

}  // namespace pocketbnn
