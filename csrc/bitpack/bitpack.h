// Bit-packing micro-kernels (the LceQuantize / LceDequantize role).
//
// Each kernel treats its input as `rows` rows of `channels` values and writes
// packed_words(channels) words per row (see core/types.h for the bit convention). Rows are
// contiguous; the padding bits of the last word of each row are always written as 0.
// The float32 kernels also write, when `sums` is not null, sums[c] = the sum of column c over
// the rows, added in row order (an SE squeeze of the map being binarized, in the same pass).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/types.h"

namespace pocketbnn {

using BitpackF32Fn = void (*)(const float* x, std::size_t rows, std::size_t channels, Word* out,
                             float* sums);
// bit = x < zero_point
using BitpackI8Fn = void (*)(const std::int8_t* x, std::size_t rows, std::size_t channels,
                             std::int8_t zero_point, Word* out);
// bit 0 -> +1, bit 1 -> -1
using UnpackF32Fn = void (*)(const Word* packed, std::size_t rows, std::size_t channels,
                             float* out);
using UnpackI8Fn = void (*)(const Word* packed, std::size_t rows, std::size_t channels,
                            std::int8_t* out);

namespace reference {
void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums);
void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out);
void unpack_f32(const Word* packed, std::size_t rows, std::size_t channels, float* out);
void unpack_i8(const Word* packed, std::size_t rows, std::size_t channels, std::int8_t* out);
}  // namespace reference

namespace portable {
void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums);
void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out);
void unpack_f32(const Word* packed, std::size_t rows, std::size_t channels, float* out);
void unpack_i8(const Word* packed, std::size_t rows, std::size_t channels, std::int8_t* out);
}  // namespace portable

namespace avx2 {
void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums);
void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out);
}  // namespace avx2

namespace avx512_vpopcnt {
void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums);
void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out);
}  // namespace avx512_vpopcnt

}  // namespace pocketbnn
