#include "bitpack/threads.h"

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "dispatch/config.h"

namespace pocketbnn {

void bitpack_f32_threads(const float* x, std::size_t rows, std::size_t channels, Word* out,
                         int threads) {
  const BitpackF32Fn pack = select_ukernel<ops::bitpack_f32>().fn;
  const std::size_t words = packed_words(channels);
  parallel_rows(threads, rows, channels, [&](std::size_t r0, std::size_t r1) {
    pack(x + r0 * channels, r1 - r0, channels, out + r0 * words, nullptr);
  });
}

void bitpack_f32_padded(const float* x, const PaddedPack& g, Word* out, int threads, float* means) {
  const BitpackF32Fn pack = select_ukernel<ops::bitpack_f32>().fn;
  const std::size_t words = packed_words(g.channels);
  // Per image row, the sums of its pixels: [batch, h, channels].
  std::vector<float> row_sums(means != nullptr ? std::size_t(g.batch) * g.h * g.channels : 0);
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
      const std::size_t image_row = std::size_t(n) * g.h + y;
      pack(x + image_row * g.w * g.channels, std::size_t(g.w), g.channels, row,
           means != nullptr ? row_sums.data() + image_row * g.channels : nullptr);
      std::fill_n(row + std::size_t(g.w) * words, std::size_t(g.pad_right) * words, Word{0});
    }
  });
  if (means == nullptr) return;
  const float inv = 1.0f / float(std::size_t(g.h) * g.w);
  for (int n = 0; n < g.batch; ++n) {
    float* m = means + std::size_t(n) * g.channels;
    const float* rows = row_sums.data() + std::size_t(n) * g.h * g.channels;
    std::copy_n(rows, g.channels, m);
    for (int y = 1; y < g.h; ++y) {
      for (std::size_t c = 0; c < g.channels; ++c) m[c] += rows[std::size_t(y) * g.channels + c];
    }
    for (std::size_t c = 0; c < g.channels; ++c) m[c] *= inv;
  }
}

}  // namespace pocketbnn
