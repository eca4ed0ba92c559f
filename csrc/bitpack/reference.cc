// Test oracle: one value, one bit, straight from the definition in core/types.h.
#include "bitpack/bitpack.h"

namespace pocketbnn::reference {
namespace {

template <class T, class IsNegative>
void pack_rows(const T* x, std::size_t rows, std::size_t channels, IsNegative is_negative,
               Word* out) {
  const std::size_t words = packed_words(channels);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t w = 0; w < words; ++w) out[r * words + w] = 0;
    for (std::size_t c = 0; c < channels; ++c) {
      if (is_negative(x[r * channels + c])) {
        out[r * words + c / kWordBits] |= Word{1} << (c % kWordBits);
      }
    }
  }
}

template <class T>
void unpack_rows(const Word* packed, std::size_t rows, std::size_t channels, T* out) {
  const std::size_t words = packed_words(channels);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < channels; ++c) {
      const Word bit = (packed[r * words + c / kWordBits] >> (c % kWordBits)) & 1;
      out[r * channels + c] = bit ? T(-1) : T(1);
    }
  }
}

}  // namespace

void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums) {
  pack_rows(x, rows, channels, [](float v) { return v < 0.0f; }, out);
  if (sums == nullptr) return;
  for (std::size_t c = 0; c < channels; ++c) {
    float s = 0.0f;
    for (std::size_t r = 0; r < rows; ++r) s += x[r * channels + c];
    sums[c] = s;
  }
}

void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out) {
  pack_rows(x, rows, channels, [zero_point](std::int8_t v) { return v < zero_point; }, out);
}

void unpack_f32(const Word* packed, std::size_t rows, std::size_t channels, float* out) {
  unpack_rows(packed, rows, channels, out);
}

void unpack_i8(const Word* packed, std::size_t rows, std::size_t channels, std::int8_t* out) {
  unpack_rows(packed, rows, channels, out);
}

}  // namespace pocketbnn::reference
