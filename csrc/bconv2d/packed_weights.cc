// Weight re-layout and per-call output constants; plain C++, compiled without ISA flags.
#include <algorithm>

#include "bconv2d/bconv2d.h"
#include "bconv2d/output_transform.h"
#include "dispatch/config.h"

namespace pocketbnn {

int PackedBconvWeights::channel(int slot) const {
  const int lane_in_group = slot % (blocks * kBlockLanes);
  if (lane_in_group >= out_c_per_group) return -1;
  return slot / (blocks * kBlockLanes) * out_c_per_group + lane_in_group;
}

PackedBconvWeights pack_bconv_weights(const Word* ohwi, int out_c, int kh, int kw, int groups,
                                      int in_c_per_group) {
  constexpr int L = PackedBconvWeights::kBlockLanes;
  PackedBconvWeights p;
  p.out_c = out_c;
  p.kh = kh;
  p.kw = kw;
  p.groups = groups;
  p.in_c_per_group = in_c_per_group;
  p.words_per_group = static_cast<int>(packed_words(in_c_per_group));
  p.out_c_per_group = out_c / groups;
  p.blocks = (p.out_c_per_group + L - 1) / L;
  const int k_words = p.k_words(), slots = p.slots(), taps = p.taps();
  p.data.assign(std::size_t(slots) * k_words, 0);
  p.tap_sums.assign(std::size_t(taps) * slots, 0);
  for (int slot = 0; slot < slots; ++slot) {
    const int c = p.channel(slot);
    if (c < 0) continue;
    const int block = slot / L, lane = slot % L;
    const Word* w = ohwi + std::size_t(c) * k_words;
    for (int k = 0; k < k_words; ++k) {
      p.data[(std::size_t(block) * k_words + k) * L + lane] = w[k];
    }
    for (int t = 0; t < taps; ++t) {
      int ones = 0;
      for (int j = 0; j < p.words_per_group; ++j) {
        ones += __builtin_popcountll(w[t * p.words_per_group + j]);
      }
      p.tap_sums[std::size_t(t) * slots + slot] = in_c_per_group - 2 * ones;
    }
  }
  // Only the AVX2 tiles read nibbles; packing for them once saves a split per call.
  if (active_isa() == Isa::kAvx2) p.nibbles = split_nibbles(p);
  return p;
}

std::vector<Word> split_nibbles(const PackedBconvWeights& p) {
  constexpr int L = PackedBconvWeights::kBlockLanes;
  static_assert(L == 8, "the even / odd lane order is for blocks of 8");
  std::vector<Word> out(2 * p.data.size());
  for (std::size_t step = 0; step < p.data.size() / L; ++step) {
    for (int lane = 0; lane < L; ++lane) {
      // Even lanes first, then odd: position lane / 2 or 4 + lane / 2.
      const int at = (lane % 2) * (L / 2) + lane / 2;
      const Word w = p.data[step * L + lane];
      out[2 * step * L + at] = low_nibbles(w);
      out[2 * step * L + L + at] = high_nibbles(w);
    }
  }
  return out;
}

bool touches_padding(const Bconv2dArgs& a) {
  const long last_y = long(a.out_h - 1) * a.stride_h - a.pad_top + long(a.kh - 1) * a.dilation_h;
  const long last_x = long(a.out_w - 1) * a.stride_w - a.pad_left + long(a.kw - 1) * a.dilation_w;
  return a.pad_top > 0 || a.pad_left > 0 || last_y >= a.in_h || last_x >= a.in_w;
}

const float* residual_for(const Bconv2dArgs& a, const float* row, int c) {
  switch (a.residual_map) {
    case ResidualMap::kTile:
      return row + c % a.residual_channels;
    case ResidualMap::kZeroPad:
      return c < a.residual_channels ? row + c : nullptr;
    default:
      return row + c;
  }
}

OutputStage make_output_stage(const Bconv2dArgs& a, const PackedBconvWeights& p) {
  OutputStage st;
  st.type = a.output_type;
  st.lo = a.clamp_lo;
  st.hi = a.clamp_hi;
  st.full_k = p.taps() * p.in_c_per_group;
  const bool corrected = a.pad_value == PadValue::kZero && touches_padding(a);
  const bool clamps = a.clamp_lo > -st.full_k || a.clamp_hi < st.full_k;
  st.form = corrected ? FloatForm::kLiteral : clamps ? FloatForm::kClamped : FloatForm::kFolded;
  st.acc_lo = float((double(st.full_k) - a.clamp_hi) / 2);
  st.acc_hi = float((double(st.full_k) - a.clamp_lo) / 2);
  // Slots run over (group, block, lane); channel = group * out_c_per_group + block * 8 + lane.
  const int slots = p.slots(), group_slots = p.blocks * PackedBconvWeights::kBlockLanes;
  const bool bits = a.output_type == OutputType::kBits;
  if (bits) {
    st.thresholds.assign(slots, 0);
  } else {
    st.scale.assign(slots, 0.0f);
    st.offset.assign(slots, 0.0f);
  }
  for (int g = 0; g < p.groups; ++g) {
    for (int j = 0; j < p.out_c_per_group; ++j) {
      const int s = g * group_slots + j, c = g * p.out_c_per_group + j;
      if (bits) {
        st.thresholds[s] = a.thresholds[c];
      } else {
        const float m = a.multiplier[c], b = a.bias[c];
        const bool folded = st.form == FloatForm::kFolded;
        st.scale[s] = folded ? -2.0f * m : m;
        st.offset[s] = folded ? float(st.full_k) * m + b : b;
      }
    }
  }
  return st;
}

}  // namespace pocketbnn
