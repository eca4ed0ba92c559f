// The row loop shared by the packing kernels of every ISA: a kernel supplies only how to
// pack one whole word (64 values) and one partial word (n < 64 values, the rest 0 bits).
// With `sums` (float input), each row is also added into sums[0, channels) right after it is
// packed, while it is in L1; compiled in each ISA's file, the add vectorizes to its width.
#pragma once

#include <cstddef>

#include "core/types.h"

namespace pocketbnn {

template <class T, class PackWord, class PackPartial>
inline void pack_rows_by_word(const T* x, std::size_t rows, std::size_t channels, Word* out,
                              PackWord pack_word, PackPartial pack_partial, float* sums = nullptr) {
  const std::size_t full = channels / kWordBits;
  const std::size_t rest = channels % kWordBits;
  if (sums != nullptr) {
    for (std::size_t c = 0; c < channels; ++c) sums[c] = 0.0f;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = x + r * channels;
    for (std::size_t w = 0; w < full; ++w) *out++ = pack_word(row + w * kWordBits);
    if (rest != 0) *out++ = pack_partial(row + full * kWordBits, rest);
    if (sums != nullptr) {
      float* __restrict s = sums;
      const T* __restrict v = row;
      for (std::size_t c = 0; c < channels; ++c) s[c] += float(v[c]);
    }
  }
}

}  // namespace pocketbnn
