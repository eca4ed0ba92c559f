// Plain C++ packing, word at a time; the compiler vectorises the inner loops.
#include "bitpack/bitpack.h"
#include "bitpack/pack_rows.h"

namespace pocketbnn::portable {
namespace {

template <class T, class IsNegative>
Word pack_partial(const T* x, std::size_t n, IsNegative is_negative) {
  Word word = 0;
  for (std::size_t i = 0; i < n; ++i) word |= Word{is_negative(x[i])} << i;
  return word;
}

template <class T>
void unpack_rows(const Word* packed, std::size_t rows, std::size_t channels, T* out) {
  const std::size_t words = packed_words(channels);
  for (std::size_t r = 0; r < rows; ++r, packed += words) {
    for (std::size_t c = 0; c < channels; ++c) {
      // 1 - 2*bit maps bit 0 -> +1 and bit 1 -> -1 without a branch.
      out[r * channels + c] = T(1 - 2 * int((packed[c / kWordBits] >> (c % kWordBits)) & 1));
    }
  }
}

}  // namespace

void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums) {
  const auto is_negative = [](float v) { return v < 0.0f; };
  pack_rows_by_word(
      x, rows, channels, out,
      [&](const float* p) { return pack_partial(p, kWordBits, is_negative); },
      [&](const float* p, std::size_t n) { return pack_partial(p, n, is_negative); }, sums);
}

void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out) {
  const auto is_negative = [zero_point](std::int8_t v) { return v < zero_point; };
  pack_rows_by_word(
      x, rows, channels, out,
      [&](const std::int8_t* p) { return pack_partial(p, kWordBits, is_negative); },
      [&](const std::int8_t* p, std::size_t n) { return pack_partial(p, n, is_negative); });
}

void unpack_f32(const Word* packed, std::size_t rows, std::size_t channels, float* out) {
  unpack_rows(packed, rows, channels, out);
}

void unpack_i8(const Word* packed, std::size_t rows, std::size_t channels, std::int8_t* out) {
  unpack_rows(packed, rows, channels, out);
}

}  // namespace pocketbnn::portable
