// Packing of large activations on several threads: rows split into contiguous blocks, each
// packed by the dispatched ISA kernel (rows are independent, so the result is the same).
#pragma once

#include <cstddef>

#include "core/types.h"

namespace pocketbnn {

void bitpack_f32_threads(const float* x, std::size_t rows, std::size_t channels, Word* out,
                         int threads);

// Packs a float32 NHWC image [batch, h, w, channels] into the interior of a packed image
// [batch, h + pad_top + pad_bottom, w + pad_left + pad_right, words] and writes its border as
// zero words (+1 values): the input of a one-padded binary convolution, ready to read without
// a padding copy. Every output word is written. With `means` ([batch, channels]), also writes
// each channel's mean over each image, means[n, c] = (1 / hw) sum_{y, x} x[n, y, x, c]: the SE
// squeeze of the map, from the same pass. Each image row is summed by one thread, then the rows
// in order, so the means are the same for any thread count.
struct PaddedPack {
  int batch = 0, h = 0, w = 0;
  std::size_t channels = 0;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};
void bitpack_f32_padded(const float* x, const PaddedPack& geometry, Word* out, int threads,
                        float* means = nullptr);

}  // namespace pocketbnn
