#include "bitpack/threads.h"

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

}  // namespace pocketbnn
