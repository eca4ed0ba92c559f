// Word type and the one arithmetic primitive of binary networks.
//
// Bit-packing convention (shared by the whole project and stored in the model file's
// version): values are packed along the last (channel) axis into 64-bit words, value i of a
// row goes to bit (i % 64) of word (i / 64), least significant bit first. A bit is 1 iff the
// value is negative (float: x < 0; int8: x < zero_point), so sign(0) = +1 packs to 0. Rows are
// padded to a whole number of words with 0 bits; since both operands of a binary dot product
// pad with 0, padding bits never contribute to popcount(x XOR w).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pocketbnn {

using Word = std::uint64_t;
inline constexpr int kWordBits = 64;

// Number of words that hold `bits` packed values.
constexpr std::size_t packed_words(std::size_t bits) {
  return (bits + kWordBits - 1) / kWordBits;
}

// Number of positions where two +-1 words differ; the +-1 dot product of n valid bits is
// n - 2 * xor_popcount(a, b).
inline int xor_popcount(Word a, Word b) { return __builtin_popcountll(a ^ b); }

// The low nibble of every byte. Tiles that count bits by a 16-entry lookup read words split
// into w & kLowNibbles and (w >> 4) & kLowNibbles, so that (x XOR w) & kLowNibbles is
// x_low XOR w_low: the split is done once per word instead of once per XOR.
inline constexpr Word kLowNibbles = 0x0f0f0f0f0f0f0f0full;
constexpr Word low_nibbles(Word w) { return w & kLowNibbles; }
constexpr Word high_nibbles(Word w) { return (w >> 4) & kLowNibbles; }

}  // namespace pocketbnn
