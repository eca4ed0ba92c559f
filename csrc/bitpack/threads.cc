#include "bitpack/threads.h"

#include <algorithm>

#include "core/thread_pool.h"
#include "dispatch/config.h"

namespace pocketbnn {

void bitpack_f32_threads(const float* x, std::size_t rows, std::size_t channels, Word* out,
                         int threads) {
  const BitpackF32Fn pack = select_ukernel<ops::bitpack_f32>().fn;
  const std::size_t words = packed_words(channels);
  parallel_rows(threads, rows, channels, [&](std::size_t r0, std::size_t r1) {
    pack(x + r0 * channels, r1 - r0, channels, out + r0 * words);
  });
}

void bitpack_f32_padded(const float* x, const PaddedPack& g, Word* out, int threads) {
  const BitpackF32Fn pack = select_ukernel<ops::bitpack_f32>().fn;
  const std::size_t words = packed_words(g.channels);
  const int hp = g.h + g.pad_top + g.pad_bottom, wp = g.w + g.pad_left + g.pad_right;
  const std::size_t row_words = std::size_t(wp) * words;
  parallel_rows(threads, std::size_t(g.batch) * hp, std::size_t(wp) * g.channels, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      Word* row = out + r * row_words;
      const int n = int(r / hp), y = int(r % hp) - g.pad_top;
      if (y < 0 || y >= g.h) {
        std::fill_n(row, row_words, Word{0});
        continue;
      }
      row = std::fill_n(row, std::size_t(g.pad_left) * words, Word{0});
      pack(x + (std::size_t(n) * g.h + y) * g.w * g.channels, std::size_t(g.w), g.channels, row);
      std::fill_n(row + std::size_t(g.w) * words, std::size_t(g.pad_right) * words, Word{0});
    }
  });
}

}  // namespace pocketbnn
