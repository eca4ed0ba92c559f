// Portable C++ tiles: 8 scalar lanes per vector, popcount from the compiler builtin.
#include "bconv2d/tile.h"

namespace pocketbnn::portable {
namespace {

struct Isa {
  static constexpr int kMR = 2, kNR = 1;
  struct Vec {
    Word w[8];
  };
  using Acc = Vec;
  static Acc zero() { return Acc{}; }
  static Vec load8(const Word* p) {
    Vec v;
    for (int i = 0; i < 8; ++i) v.w[i] = p[i];
    return v;
  }
  static Vec broadcast(Word x) {
    Vec v;
    for (int i = 0; i < 8; ++i) v.w[i] = x;
    return v;
  }
  static Acc xor_popcount_add(Acc acc, const Vec& x, const Vec& w) {
    for (int i = 0; i < 8; ++i) acc.w[i] += Word(__builtin_popcountll(x.w[i] ^ w.w[i]));
    return acc;
  }
  static unsigned threshold_bits(const Acc& acc, const std::int32_t* kc,
                                 const std::int32_t* thresholds) {
    unsigned bits = 0;
    for (int i = 0; i < 8; ++i) {
      bits |= unsigned(kc[i] - 2 * std::int32_t(acc.w[i]) < thresholds[i]) << i;
    }
    return bits;
  }
  static void store(float y, const float* res, int i, float* dst) {
    dst[i] = res != nullptr ? y + res[i] : y;
  }
  static void store_folded(const Acc& acc, const float* scale, const float* offset,
                           const float* res, float* dst, int n) {
    for (int i = 0; i < n; ++i) store(float(acc.w[i]) * scale[i] + offset[i], res, i, dst);
  }
  static void store_clamped(const Acc& acc, float lo, float hi, float k, const float* scale,
                            const float* offset, const float* res, float* dst, int n) {
    for (int i = 0; i < n; ++i) {
      float a = float(acc.w[i]);
      a = a < lo ? lo : (a > hi ? hi : a);
      store((k - 2.0f * a) * scale[i] + offset[i], res, i, dst);
    }
  }
  static void store_literal(const Acc& acc, const std::int32_t* kc, std::int32_t lo, std::int32_t hi,
                            const float* scale, const float* offset, const float* res, float* dst,
                            int n) {
    for (int i = 0; i < n; ++i) {
      std::int32_t dot = kc[i] - 2 * std::int32_t(acc.w[i]);
      dot = dot < lo ? lo : (dot > hi ? hi : dot);
      store(float(dot) * scale[i] + offset[i], res, i, dst);
    }
  }
};

constexpr auto kTiles = bconv_tiles<Isa>();

}  // namespace

void bconv2d(const Bconv2dArgs& args) {
  bconv2d_indirect(args, TileKernels{Isa::kMR, Isa::kNR, kTiles.data()});
}

}  // namespace pocketbnn::portable
