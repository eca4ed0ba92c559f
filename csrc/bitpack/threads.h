// Packing of large activations on several threads: rows split into contiguous blocks, each
// packed by the dispatched ISA kernel (rows are independent, so the result is the same).
#pragma once

#include <cstddef>

#include "core/types.h"

namespace pocketbnn {

void bitpack_f32_threads(const float* x, std::size_t rows, std::size_t channels, Word* out,
                         int threads);

}  // namespace pocketbnn
