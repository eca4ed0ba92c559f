// AVX-512 packing: compares write mask registers directly, 16 floats or 64 int8 at a time;
// a partial word uses a masked load whose absent lanes read as 0 (packs to bit 0).
#include <immintrin.h>

#include "bitpack/bitpack.h"
#include "bitpack/pack_rows.h"

namespace pocketbnn::avx512_vpopcnt {
namespace {

inline Word pack_f32_lanes(const float* p, std::size_t n) {
  const __m512 zero = _mm512_setzero_ps();
  Word word = 0;
  for (std::size_t i = 0; i < 4 && 16 * i < n; ++i) {
    const std::size_t lanes = n - 16 * i < 16 ? n - 16 * i : 16;
    const __mmask16 load = __mmask16((1u << lanes) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(load, p + 16 * i);
    word |= Word(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ)) << (16 * i);
  }
  return word;
}

}  // namespace

void bitpack_f32(const float* x, std::size_t rows, std::size_t channels, Word* out, float* sums) {
  pack_rows_by_word(
      x, rows, channels, out, [](const float* p) { return pack_f32_lanes(p, kWordBits); },
      pack_f32_lanes, sums);
}

void bitpack_i8(const std::int8_t* x, std::size_t rows, std::size_t channels,
                std::int8_t zero_point, Word* out) {
  const __m512i zp = _mm512_set1_epi8(zero_point);
  const auto pack_word = [&](const std::int8_t* p) {
    return Word(_mm512_cmplt_epi8_mask(_mm512_loadu_si512(p), zp));
  };
  const auto pack_partial = [&](const std::int8_t* p, std::size_t n) {
    const __mmask64 load = (__mmask64{1} << n) - 1;  // n < 64
    return Word(_mm512_mask_cmplt_epi8_mask(load, _mm512_maskz_loadu_epi8(load, p), zp));
  };
  pack_rows_by_word(x, rows, channels, out, pack_word, pack_partial);
}

}  // namespace pocketbnn::avx512_vpopcnt
