// The indirect-BGEMM driver shared by every optimized ISA: builds each pixel tile's
// indirection table and kc rows, splits the work over threads, and calls the ISA's tiles.
// Plain C++, compiled without ISA flags.
#include <algorithm>
#include <vector>

#include "bconv2d/tile.h"
#include "core/thread_pool.h"

namespace pocketbnn {

void bconv2d_indirect(const Bconv2dArgs& a, const TileKernels& tiles) {
  const PackedBconvWeights& pw = *a.packed;
  const OutputStage st = make_output_stage(a, pw);
  const int MR = tiles.mr, NR = tiles.nr, L = PackedBconvWeights::kBlockLanes;
  const int taps = pw.taps(), slots = pw.slots(), wpg = pw.words_per_group;
  const std::size_t pixels = std::size_t(a.batch) * a.out_h * a.out_w;
  const std::size_t pixel_tiles = (pixels + MR - 1) / MR;
  const std::size_t out_words = packed_words(a.out_c);
  const bool zero_pad = a.pad_value == PadValue::kZero && touches_padding(a);

  // Work units: (pixel tile, channel chunk). Few pixels (dense layers, small maps) would leave
  // threads idle, so then a single-group convolution is also split into chunks of 64 channels,
  // which never share an output word.
  int chunk_blocks = pw.blocks;
  if (a.groups == 1 && pixel_tiles < 4 * std::size_t(std::max(a.num_threads, 1))) {
    chunk_blocks = kWordBits / L;
  }
  const std::size_t chunks = (pw.blocks + chunk_blocks - 1) / chunk_blocks;

  const std::vector<Word> zeros(a.in_words, 0);
  const std::vector<std::int32_t> interior_kc(slots, st.full_k);
  struct Scratch {
    std::vector<const Word*> rows;
    std::vector<std::int32_t> kc;
    std::vector<const std::int32_t*> kc_rows;
    std::vector<float*> out_rows;
    std::vector<Word*> bit_rows;
  };
  const int threads = std::max(a.num_threads, 1);
  std::vector<Scratch> scratch(threads);

  parallel_for(threads, pixel_tiles * chunks, [&](int thread, std::size_t unit) {
    Scratch& s = scratch[thread];
    if (s.rows.empty()) {
      s.rows.resize(std::size_t(taps) * MR);
      s.kc.resize(std::size_t(MR) * slots);
      s.kc_rows.resize(MR);
      s.out_rows.resize(MR);
      s.bit_rows.resize(MR);
    }
    const std::size_t tile = unit / chunks, chunk = unit % chunks;
    const std::size_t p0 = tile * MR;
    const int mr = int(std::min<std::size_t>(MR, pixels - p0));
    for (int i = 0; i < mr; ++i) {
      const std::size_t pixel = p0 + i;
      const int ox = int(pixel % a.out_w), oy = int(pixel / a.out_w % a.out_h);
      const std::size_t n = pixel / (std::size_t(a.out_w) * a.out_h);
      bool padded = false;
      for (int ky = 0; ky < a.kh; ++ky) {
        const int iy = oy * a.stride_h - a.pad_top + ky * a.dilation_h;
        for (int kx = 0; kx < a.kw; ++kx) {
          const int ix = ox * a.stride_w - a.pad_left + kx * a.dilation_w;
          const bool inside = iy >= 0 && iy < a.in_h && ix >= 0 && ix < a.in_w;
          padded |= !inside;
          s.rows[std::size_t(ky * a.kw + kx) * MR + i] =
              inside ? a.input + ((n * a.in_h + iy) * a.in_w + ix) * a.in_words : zeros.data();
        }
      }
      s.kc_rows[i] = interior_kc.data();
      if (zero_pad && padded) {
        // kc = T * Cg - sum of the weights of the padded taps (output_transform.h).
        std::int32_t* kc = s.kc.data() + std::size_t(i) * slots;
        std::copy(interior_kc.begin(), interior_kc.end(), kc);
        for (int t = 0; t < taps; ++t) {
          if (s.rows[std::size_t(t) * MR + i] != zeros.data()) continue;
          const std::int32_t* sums = pw.tap_sums.data() + std::size_t(t) * slots;
          for (int k = 0; k < slots; ++k) kc[k] -= sums[k];
        }
        s.kc_rows[i] = kc;
      }
      s.out_rows[i] = a.out_float ? a.out_float + pixel * a.out_c : nullptr;
      s.bit_rows[i] = a.out_bits ? a.out_bits + pixel * out_words : nullptr;
    }

    TileArgs t;
    t.rows = s.rows.data();
    t.rows_stride = MR;
    t.taps = taps;
    t.words = wpg;
    t.block_stride = std::size_t(pw.k_words()) * L;
    t.stage = &st;
    t.folded = st.folded;
    t.scale = st.scale.data();
    t.offset = st.offset.data();
    t.out_rows = s.out_rows.data();
    t.bit_rows = s.bit_rows.data();
    t.kc_rows = s.kc_rows.data();
    const int b_begin = int(chunk) * chunk_blocks;
    const int b_end = std::min(pw.blocks, b_begin + chunk_blocks);
    for (int g = 0; g < a.groups; ++g) {
      t.word_offset = g * wpg;
      for (int b = b_begin; b < b_end; b += NR) {
        const int nr = std::min(NR, b_end - b);
        const int block = g * pw.blocks + b;
        t.weights = pw.data.data() + std::size_t(block) * t.block_stride;
        t.slot0 = block * L;
        t.channel0 = g * pw.out_c_per_group + b * L;
        t.valid = std::min(nr * L, pw.out_c_per_group - b * L);
        tiles.fns[(mr - 1) * NR + (nr - 1)](t);
      }
    }
  });
}

}  // namespace pocketbnn
