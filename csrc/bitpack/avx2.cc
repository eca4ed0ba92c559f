// AVX2 packing: a compare yields one sign bit per lane, movemask gathers them
// (8 floats or 32 int8 per instruction).
#include <immintrin.h>

#include "bitpack/bitpack.h"
#include "bitpack/pack_rows.h"

namespace pocketbnn::avx2 {

void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums) {
  const __m256 zero = _mm256_setzero_ps();
  const auto pack_word = [&](const float* p) {
    Word word = 0;
    for (int i = 0; i < kWordBits / 8; ++i) {
      const __m256 lt = _mm256_cmp_ps(_mm256_loadu_ps(p + 8 * i), zero, _CMP_LT_OQ);
      word |= Word(unsigned(_mm256_movemask_ps(lt))) << (8 * i);
    }
    return word;
  };
  const auto pack_partial = [](const float* p, std::size_t n) {
    Word word = 0;
    for (std::size_t i = 0; i < n; ++i) word |= Word{p[i] < 0.0f} << i;
    return word;
  };
  pack_rows_by_word(x, rows, channels, out, pack_word, pack_partial, sums);
}

void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out) {
  const __m256i zp = _mm256_set1_epi8(zero_point);
  const auto pack_word = [&](const std::int8_t* p) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const Word lo_bits = unsigned(_mm256_movemask_epi8(_mm256_cmpgt_epi8(zp, lo)));
    const Word hi_bits = unsigned(_mm256_movemask_epi8(_mm256_cmpgt_epi8(zp, hi)));
    return lo_bits | (hi_bits << 32);
  };
  const auto pack_partial = [zero_point](const std::int8_t* p, std::size_t n) {
    Word word = 0;
    for (std::size_t i = 0; i < n; ++i) word |= Word{p[i] < zero_point} << i;
    return word;
  };
  pack_rows_by_word(x, rows, channels, out, pack_word, pack_partial);
}

}  // namespace pocketbnn::avx2
