// The indirect-BGEMM driver shared by every optimized ISA: builds the indirection tables and
// kc rows, splits the work over threads, and calls the ISA's tiles. Plain C++, compiled
// without ISA flags.
//
// Work is cut into units of (pixel block, channel chunk). A pixel block is up to
// kTilesPerBlock pixel tiles; within a unit the channel tiles are the outer loop and the pixel
// tiles the inner one, so one channel tile's weights (NR * 8 channels x K words, a few KB) stay
// in L1 while the block's pixels stream past them; the block's input is small enough to stay
// in L1 too. Few pixels (dense layers, small maps) would leave threads idle, so then blocks
// shrink and a single-group convolution is also split into chunks of 64 channels, which never
// share an output word.
#include <algorithm>
#include <memory>
#include <vector>

#include "bconv2d/tile.h"
#include "core/thread_pool.h"

namespace pocketbnn {
namespace {

constexpr int kTilesPerBlock = 32;
// Input bytes a pixel block may span (its pixels' words plus the window's extra rows), so that
// it stays in L1 next to one channel tile's weights while the channel tiles pass over it.
constexpr std::size_t kBlockInputBytes = 16 * 1024;
// Binary MACs below which a work unit's setup (its indirection table) starts to show.
constexpr double kMinUnitMacs = 4e6;

}  // namespace

void bconv2d_indirect(const Bconv2dArgs& a, const TileKernels& tiles) {
  const PackedBconvWeights& pw = *a.packed;
  const OutputStage st = make_output_stage(a, pw);
  const int MR = tiles.mr, NR = tiles.nr, L = PackedBconvWeights::kBlockLanes;
  const int taps = pw.taps(), slots = pw.slots(), wpg = pw.words_per_group;
  const std::size_t pixels = std::size_t(a.batch) * a.out_h * a.out_w;
  const std::size_t pixel_tiles = (pixels + MR - 1) / MR;
  const std::size_t out_words = packed_words(a.out_c);
  const bool zero_pad = a.pad_value == PadValue::kZero && touches_padding(a);
  const int threads = std::max(a.num_threads, 1);

  // Many units per thread balance the load (units are claimed one at a time, so with N equal
  // units the last thread to finish idles for about one unit, 1/N of the whole), but each
  // unit pays for its indirection setup: 4 to 16 units per thread, none much below
  // kMinUnitMacs. One thread needs no splitting at all (every split re-reads the weights).
  const double macs = double(pixels) * a.out_c * taps * a.in_c_per_group;
  const std::size_t wanted_units =
      threads == 1 ? 1
                   : std::clamp<std::size_t>(std::size_t(macs / kMinUnitMacs), 4 * std::size_t(threads),
                                             16 * std::size_t(threads));
  int block_tiles = kTilesPerBlock;
  const int window_rows = (a.kh - 1) * a.dilation_h + 1;
  const auto block_input_bytes = [&](int tiles_in_block) {
    return (std::size_t(tiles_in_block) * MR * a.stride_h * a.stride_w + std::size_t(window_rows) * a.in_w) *
           a.in_words * sizeof(Word);
  };
  while (block_tiles > 8 && block_input_bytes(block_tiles) > kBlockInputBytes) block_tiles /= 2;
  while (block_tiles > 1 && (pixel_tiles + block_tiles - 1) / block_tiles < wanted_units) block_tiles /= 2;
  const std::size_t block_pixels = std::size_t(block_tiles) * MR;
  const std::size_t pixel_blocks = (pixels + block_pixels - 1) / block_pixels;
  int chunk_blocks = pw.blocks;
  if (a.groups == 1 && pixel_blocks < wanted_units) chunk_blocks = kWordBits / L;
  const std::size_t chunks = (pw.blocks + chunk_blocks - 1) / chunk_blocks;

  const std::vector<Word> zeros(a.in_words, 0);
  // Word offset of each tap from tap (0, 0) of the same pixel, for pixels whose whole window
  // lies inside the image (all but the border): their table is base + offset.
  std::vector<std::ptrdiff_t> tap_offsets(taps);
  for (int ky = 0; ky < a.kh; ++ky) {
    for (int kx = 0; kx < a.kw; ++kx) {
      tap_offsets[ky * a.kw + kx] =
          (std::ptrdiff_t(ky) * a.dilation_h * a.in_w + std::ptrdiff_t(kx) * a.dilation_w) * a.in_words;
    }
  }
  // The same per k-step (tap, word), for the direct tiles' flat loop.
  std::vector<std::ptrdiff_t> k_offsets(std::size_t(taps) * wpg);
  for (int t = 0; t < taps; ++t) {
    for (int j = 0; j < wpg; ++j) k_offsets[std::size_t(t) * wpg + j] = tap_offsets[t] + j;
  }
  const int window_h = (a.kh - 1) * a.dilation_h + 1, window_w = (a.kw - 1) * a.dilation_w + 1;
  const std::vector<std::int32_t> interior_kc(slots, st.full_k);

  // Per thread, for one pixel block: per tile its direct base (null: indirect),
  // rows[tile][tap][MR] for indirect tiles, and per pixel its kc row. Allocated per call
  // (a few KB), not thread_local: a TLS lookup in a shared library is a call, and the units
  // of a small layer are short.
  // Uninitialized (every entry a unit reads it has written first) and no larger than the
  // image: small layers are called often.
  struct Scratch {
    std::unique_ptr<const Word*[]> bases, rows;
    std::unique_ptr<std::int32_t[]> kc;
    std::unique_ptr<const std::int32_t*[]> kc_rows;
  };
  const std::size_t scratch_pixels = std::min(block_pixels, pixel_tiles * MR);
  std::vector<Scratch> scratch(std::size_t(std::min<std::size_t>(threads, pixel_blocks * chunks)));
  for (Scratch& s : scratch) {
    s.bases.reset(new const Word*[std::size_t(block_tiles)]);
    s.rows.reset(new const Word*[scratch_pixels * taps]);
    s.kc_rows.reset(new const std::int32_t*[scratch_pixels]);
    if (zero_pad) s.kc.reset(new std::int32_t[scratch_pixels * slots]);
  }

  parallel_for(threads, pixel_blocks * chunks, [&](int thread, std::size_t unit) {
    Scratch& s = scratch[std::size_t(thread)];

    // Locals, so that the per-pixel loop does not reload them after every store.
    const Word* const input = a.input;
    const int in_h = a.in_h, in_w = a.in_w, out_h = a.out_h, out_w = a.out_w;
    const std::size_t in_words = std::size_t(a.in_words);
    const int stride_h = a.stride_h, stride_w = a.stride_w, pad_top = a.pad_top, pad_left = a.pad_left;
    const std::size_t first = unit / chunks * block_pixels;
    const std::size_t count = std::min(block_pixels, pixels - first);
    int ox = int(first % out_w), oy = int(first / out_w % out_h);
    std::size_t n = first / (std::size_t(out_w) * out_h);
    for (std::size_t p = 0, tile = 0; p < count; p += MR, ++tile) {
      const int mr = int(std::min<std::size_t>(MR, count - p));
      const int iy0 = oy * stride_h - pad_top, ix0 = ox * stride_w - pad_left;
      const int ix_last = ix0 + (mr - 1) * stride_w;
      if (ox + mr <= out_w && iy0 >= 0 && iy0 + window_h <= in_h && ix0 >= 0 &&
          ix_last + window_w <= in_w) {
        // One row, all inside: direct.
        s.bases[tile] = input + ((n * in_h + iy0) * in_w + ix0) * in_words;
        for (int i = 0; i < mr; ++i) s.kc_rows[p + i] = interior_kc.data();
        ox += mr;
        if (ox == out_w) {
          ox = 0;
          if (++oy == out_h) oy = 0, ++n;
        }
        continue;
      }
      s.bases[tile] = nullptr;
      for (int i = 0; i < mr; ++i) {
        const int py0 = oy * stride_h - pad_top, px0 = ox * stride_w - pad_left;
        const Word** rows = s.rows.get() + p * taps + i;  // rows[tap * MR]
        s.kc_rows[p + i] = interior_kc.data();
        if (py0 >= 0 && px0 >= 0 && py0 + window_h <= in_h && px0 + window_w <= in_w) {
          const Word* base = input + ((n * in_h + py0) * in_w + px0) * in_words;
          for (int t = 0; t < taps; ++t) rows[std::size_t(t) * MR] = base + tap_offsets[t];
          if (++ox == out_w) {
            ox = 0;
            if (++oy == out_h) oy = 0, ++n;
          }
          continue;
        }
        bool padded = false;
        for (int ky = 0; ky < a.kh; ++ky) {
          const int iy = py0 + ky * a.dilation_h;
          for (int kx = 0; kx < a.kw; ++kx) {
            const int ix = px0 + kx * a.dilation_w;
            const bool inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
            padded |= !inside;
            rows[std::size_t(ky * a.kw + kx) * MR] =
                inside ? input + ((n * in_h + iy) * in_w + ix) * in_words : zeros.data();
          }
        }
        if (zero_pad && padded) {
          // kc = T * Cg - sum of the weights of the padded taps (output_transform.h).
          std::int32_t* kc = s.kc.get() + (p + i) * slots;
          std::copy(interior_kc.begin(), interior_kc.end(), kc);
          for (int t = 0; t < taps; ++t) {
            if (rows[std::size_t(t) * MR] != zeros.data()) continue;
            const std::int32_t* sums = pw.tap_sums.data() + std::size_t(t) * slots;
            for (int k = 0; k < slots; ++k) kc[k] -= sums[k];
          }
          s.kc_rows[p + i] = kc;
        }
        if (++ox == out_w) {
          ox = 0;
          if (++oy == out_h) oy = 0, ++n;
        }
      }
    }

    TileArgs t;
    t.rows_stride = MR;
    t.tap_offsets = tap_offsets.data();
    t.k_offsets = k_offsets.data();
    t.taps = taps;
    t.words = wpg;
    t.block_stride = std::size_t(pw.k_words()) * L;
    t.form = st.form;
    t.acc_lo = st.acc_lo;
    t.acc_hi = st.acc_hi;
    t.full_k = float(st.full_k);
    t.lo = st.lo;
    t.hi = st.hi;
    t.scale = st.scale.data();
    t.offset = st.offset.data();
    t.thresholds = st.type == OutputType::kBits ? st.thresholds.data() : nullptr;
    t.base_step = std::ptrdiff_t(a.stride_w) * a.in_words;
    t.out_step = std::size_t(a.out_c);
    t.bits_step = out_words;
    const std::size_t chunk = unit % chunks;
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
        for (std::size_t p = 0, tile = 0; p < count;) {
          // A run of full tiles of one kind (direct or indirect) per call.
          const int mr = int(std::min<std::size_t>(MR, count - p));
          const bool direct = s.bases[tile] != nullptr;
          std::size_t run = 1;
          if (mr == MR) {
            while (p + (run + 1) * MR <= count && (s.bases[tile + run] != nullptr) == direct) ++run;
          }
          t.tiles = int(run);
          t.rows = s.rows.get() + p * taps;
          t.bases = s.bases.get() + tile;
          t.out = a.out_float ? a.out_float + (first + p) * a.out_c : nullptr;
          t.residual = a.residual ? a.residual + (first + p) * a.out_c : nullptr;
          t.bits_out = a.out_bits ? a.out_bits + (first + p) * out_words : nullptr;
          t.kc_rows = s.kc_rows.get() + p;
          tiles.fns[((direct ? 1 : 0) * MR + mr - 1) * NR + (nr - 1)](t);
          p += run * MR;
          tile += run;
        }
      }
    }
  });
}

}  // namespace pocketbnn
