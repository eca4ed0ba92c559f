// The indirect-BGEMM driver shared by every optimized ISA: materializes the padding,
// builds the per-pixel indirection buffer and kc rows, splits the work over threads, and calls
// the ISA's tiles. Plain C++, compiled without ISA flags.
//
// Padding. When the convolution pads, the input is copied once per call into an image with
// its padding made of zero words (the +1 pattern; a few KB to a few hundred KB, far less than
// the kernel reads). Every output pixel's window then lies inside that image, so one pointer
// per pixel (its tap (0, 0)) and one table of per-k-step offsets reach every input word: no
// per-tap pointers, no separate border path, and tiles may run across output rows. Zero
// padding (pad_value 0) adds, for border pixels, the kc rows of output_transform.h (KcTable).
//
// Work is cut into units of (pixel block, channel chunk). A pixel block is up to
// kTilesPerBlock pixel tiles; within a unit the channel tiles are the outer loop and the pixel
// tiles the inner one, so one channel tile's weights (NR * 8 channels x K words, a few KB) stay
// in L1 while the block's pixels stream past them; the block's input is small enough to stay
// in L1 too. With several threads and too few pixel blocks, a single-group convolution's
// channels are split too (into as few chunks as needed), then blocks shrink until there are
// enough units.
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
// Binary MACs below which a work unit's setup (its indirection buffer) starts to show.
constexpr double kMinUnitMacs = 4e6;

// The input as the kernels read it: the caller's array, or a copy with the padding made of
// zero words and, for tiles that read nibbles, every word split in two (TileKernels).
struct PaddedInput {
  const Word* data;
  int h, w;       // padded size
  int pixel_words;  // words per pixel in `data`
  std::unique_ptr<Word[]> storage;
};

Word* copy_words(const Word* src, std::size_t n, bool split, Word* dst) {
  if (!split) return std::copy_n(src, n, dst);
  for (std::size_t i = 0; i < n; ++i) {
    *dst++ = low_nibbles(src[i]);
    *dst++ = high_nibbles(src[i]);
  }
  return dst;
}

PaddedInput materialize_input(const Bconv2dArgs& a, bool split) {
  const int window_h = (a.kh - 1) * a.dilation_h + 1, window_w = (a.kw - 1) * a.dilation_w + 1;
  const int pad_bottom = std::max(0, (a.out_h - 1) * a.stride_h + window_h - a.pad_top - a.in_h);
  const int pad_right = std::max(0, (a.out_w - 1) * a.stride_w + window_w - a.pad_left - a.in_w);
  PaddedInput p{a.input, a.in_h, a.in_w, a.in_words, nullptr};
  if (!split && a.pad_top == 0 && a.pad_left == 0 && pad_bottom == 0 && pad_right == 0) return p;
  p.h = a.pad_top + a.in_h + pad_bottom;
  p.w = a.pad_left + a.in_w + pad_right;
  p.pixel_words = split ? 2 * a.in_words : a.in_words;
  const std::size_t words = std::size_t(p.pixel_words), row = std::size_t(p.w) * words;
  // Every word written once: zero rows above and below, zero words left and right (a zero
  // word splits into two zero words).
  p.storage.reset(new Word[std::size_t(a.batch) * p.h * row]);
  Word* dst = p.storage.get();
  for (int n = 0; n < a.batch; ++n) {
    const std::size_t top = std::size_t(a.pad_top) * row, bottom = std::size_t(pad_bottom) * row;
    std::fill_n(dst, top, Word{0});
    dst += top;
    for (int y = 0; y < a.in_h; ++y) {
      const Word* src = a.input + (std::size_t(n) * a.in_h + y) * a.in_w * a.in_words;
      dst = std::fill_n(dst, std::size_t(a.pad_left) * words, Word{0});
      dst = copy_words(src, std::size_t(a.in_w) * a.in_words, split, dst);
      dst = std::fill_n(dst, std::size_t(pad_right) * words, Word{0});
    }
    dst = std::fill_n(dst, bottom, Word{0});
  }
  p.data = p.storage.get();
  return p;
}

// Zero padding: kc = T * Cg - the weight sums of the padded taps (output_transform.h). Which
// taps are padded depends only on the output row (a range of valid ky) and column (a range of
// valid kx), so there are few distinct kc rows (9 for a padded 3x3 convolution): one table per
// call, made before the threads start, one row per (row range, column range) pair.
struct KcTable {
  std::vector<int> row_kind, col_kind;  // per output row / column, its range's index
  int col_kinds = 0, slots = 0;
  std::vector<std::int32_t> rows;       // [row kind][column kind][slot]

  const std::int32_t* row(int oy, int ox) const {
    return rows.data() + (std::size_t(row_kind[std::size_t(oy)]) * col_kinds + col_kind[std::size_t(ox)]) * slots;
  }
};

// For each output position along one axis, the index of its valid tap range [k0, k1) in
// `ranges` (appended when new).
std::vector<int> tap_range_kinds(int out, int stride, int pad, int k, int dilation, int size,
                                 std::vector<std::pair<int, int>>& ranges) {
  std::vector<int> kinds(static_cast<std::size_t>(out));
  for (int o = 0; o < out; ++o) {
    const int start = o * stride - pad;
    int k0 = 0, k1 = k;
    while (k0 < k && start + k0 * dilation < 0) ++k0;
    while (k1 > k0 && start + (k1 - 1) * dilation >= size) --k1;
    const auto it = std::find(ranges.begin(), ranges.end(), std::make_pair(k0, k1));
    kinds[std::size_t(o)] = int(it - ranges.begin());
    if (it == ranges.end()) ranges.emplace_back(k0, k1);
  }
  return kinds;
}

KcTable make_kc_table(const Bconv2dArgs& a, const PackedBconvWeights& pw, std::int32_t full_k) {
  KcTable t;
  std::vector<std::pair<int, int>> ky_ranges, kx_ranges;
  t.row_kind = tap_range_kinds(a.out_h, a.stride_h, a.pad_top, a.kh, a.dilation_h, a.in_h, ky_ranges);
  t.col_kind = tap_range_kinds(a.out_w, a.stride_w, a.pad_left, a.kw, a.dilation_w, a.in_w, kx_ranges);
  t.col_kinds = int(kx_ranges.size());
  t.slots = pw.slots();
  t.rows.assign(ky_ranges.size() * kx_ranges.size() * std::size_t(t.slots), full_k);
  for (std::size_t r = 0; r < ky_ranges.size(); ++r) {
    for (std::size_t c = 0; c < kx_ranges.size(); ++c) {
      std::int32_t* kc = t.rows.data() + (r * kx_ranges.size() + c) * std::size_t(t.slots);
      for (int ky = 0; ky < a.kh; ++ky) {
        for (int kx = 0; kx < a.kw; ++kx) {
          const bool inside = ky >= ky_ranges[r].first && ky < ky_ranges[r].second &&
                              kx >= kx_ranges[c].first && kx < kx_ranges[c].second;
          if (inside) continue;
          const std::int32_t* sums = pw.tap_sums.data() + std::size_t(ky * a.kw + kx) * std::size_t(t.slots);
          for (int k = 0; k < t.slots; ++k) kc[k] -= sums[k];
        }
      }
    }
  }
  return t;
}

}  // namespace

void bconv2d_indirect(const Bconv2dArgs& a, const TileKernels& tiles) {
  const PackedBconvWeights& pw = *a.packed;
  const OutputStage made = a.stage != nullptr ? OutputStage{} : make_output_stage(a, pw);
  const OutputStage& st = a.stage != nullptr ? *a.stage : made;
  const int MR = tiles.mr, NR = tiles.nr, L = PackedBconvWeights::kBlockLanes;
  const int taps = pw.taps(), slots = pw.slots(), wpg = pw.words_per_group;
  const std::size_t pixels = std::size_t(a.batch) * a.out_h * a.out_w;
  const std::size_t pixel_tiles = (pixels + MR - 1) / MR;
  const std::size_t out_words = packed_words(a.out_c);
  const bool zero_pad = a.pad_value == PadValue::kZero && touches_padding(a);
  const int threads = std::max(a.num_threads, 1);
  const PaddedInput in = materialize_input(a, tiles.nibble_input);
  const int split = tiles.nibble_input ? 2 : 1;  // input words per packed word
  // Weights as the tiles read them: tiles that read nibbles take the split packed for them,
  // or one made now (weights packed while another kernel was active).
  std::vector<Word> split_now;
  if (tiles.nibble_weights && pw.nibbles.empty()) split_now = split_nibbles(pw);
  const Word* const weights =
      !tiles.nibble_weights ? pw.data.data() : pw.nibbles.empty() ? split_now.data() : pw.nibbles.data();
  const int weight_split = tiles.nibble_weights ? 2 : 1;

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
    return (std::size_t(tiles_in_block) * MR * a.stride_h * a.stride_w + std::size_t(window_rows) * in.w) *
           in.pixel_words * sizeof(Word);
  };
  while (block_tiles > 8 && block_input_bytes(block_tiles) > kBlockInputBytes) block_tiles /= 2;
  // Several threads and too few pixel blocks: a single-group convolution also splits its
  // channels, into as few chunks as give enough units, of whole channel tiles (64 channels for
  // bit output, so that no two threads write one word); only then do pixel blocks shrink. Each
  // unit sets up its pixels' indirection again: splitting A's and B's channels into one tile per
  // unit although they had pixel blocks enough held their two-thread speed-up to 1.54-1.75x,
  // against 1.75-1.90x now (alternating runs on the Zen 3 VM).
  int chunk_blocks = pw.blocks;
  if (threads > 1 && a.groups == 1) {
    const int unit_blocks = st.type == OutputType::kBits ? std::max(NR, kWordBits / L) : NR;
    const std::size_t blocks_now = (pixel_tiles + block_tiles - 1) / block_tiles;
    const int max_chunks = (pw.blocks + unit_blocks - 1) / unit_blocks;
    const int want_chunks =
        int(std::min<std::size_t>(max_chunks, (wanted_units + blocks_now - 1) / blocks_now));
    chunk_blocks = (pw.blocks + want_chunks - 1) / want_chunks;
    chunk_blocks = (chunk_blocks + unit_blocks - 1) / unit_blocks * unit_blocks;
  }
  const std::size_t chunks = (pw.blocks + chunk_blocks - 1) / chunk_blocks;
  while (block_tiles > 1 && (pixel_tiles + block_tiles - 1) / block_tiles * chunks < wanted_units) block_tiles /= 2;
  // Blocks of nearly equal size (their tile counts differ by at most one).
  const std::size_t pixel_blocks = (pixel_tiles + block_tiles - 1) / block_tiles;
  const std::size_t block_pixels = (pixel_tiles + pixel_blocks - 1) / pixel_blocks * MR;

  // Words from a pixel's tap (0, 0) to each k-step (tap, word), in the padded image.
  std::vector<std::ptrdiff_t> tap_offsets(taps), k_offsets(std::size_t(taps) * wpg);
  for (int ky = 0; ky < a.kh; ++ky) {
    for (int kx = 0; kx < a.kw; ++kx) {
      tap_offsets[ky * a.kw + kx] =
          (std::ptrdiff_t(ky) * a.dilation_h * in.w + std::ptrdiff_t(kx) * a.dilation_w) * in.pixel_words;
    }
  }
  for (int t = 0; t < taps; ++t) {
    for (int j = 0; j < wpg; ++j) k_offsets[std::size_t(t) * wpg + j] = tap_offsets[t] + split * j;
  }
  const std::vector<std::int32_t> interior_kc(slots, st.full_k);
  const KcTable kc_table = zero_pad ? make_kc_table(a, pw, st.full_k) : KcTable{};

  // Per thread, for one pixel block: per pixel its window's base and its kc row. Allocated
  // per call (a few KB), not thread_local: a TLS lookup in a shared library is a call, and
  // the units of a small layer are short. Uninitialized (every entry a unit reads it has
  // written first) and no larger than the image: small layers are called often.
  struct Scratch {
    std::unique_ptr<const Word*[]> bases;
    std::unique_ptr<const std::int32_t*[]> kc_rows;
  };
  const std::size_t scratch_pixels = std::min(block_pixels, pixel_tiles * MR);
  std::vector<Scratch> scratch(std::size_t(std::min<std::size_t>(threads, pixel_blocks * chunks)));
  for (Scratch& s : scratch) {
    s.bases.reset(new const Word*[scratch_pixels]);
    s.kc_rows.reset(new const std::int32_t*[scratch_pixels]);
  }

  parallel_for(threads, pixel_blocks * chunks, [&](int thread, std::size_t unit) {
    Scratch& s = scratch[std::size_t(thread)];
    const std::size_t block = unit / chunks;
    const std::size_t first = pixel_tiles * block / pixel_blocks * MR;
    const std::size_t count = std::min(pixel_tiles * (block + 1) / pixel_blocks * MR, pixels) - first;
    const std::size_t in_words = std::size_t(in.pixel_words);
    int ox = int(first % a.out_w), oy = int(first / a.out_w % a.out_h);
    std::size_t n = first / (std::size_t(a.out_w) * a.out_h);
    for (std::size_t p = 0; p < count; ++p) {
      const int y0 = oy * a.stride_h, x0 = ox * a.stride_w;  // padded coordinates
      s.bases[p] = in.data + ((n * in.h + y0) * in.w + x0) * in_words;
      s.kc_rows[p] = zero_pad ? kc_table.row(oy, ox) : interior_kc.data();
      if (++ox == a.out_w) {
        ox = 0;
        if (++oy == a.out_h) oy = 0, ++n;
      }
    }

    TileArgs t;
    t.bases = s.bases.get();
    t.k_offsets = k_offsets.data();
    t.k_steps = taps * wpg;
    t.block_stride = std::size_t(pw.k_words()) * L * weight_split;
    t.form = st.form;
    t.acc_lo = st.acc_lo;
    t.acc_hi = st.acc_hi;
    t.full_k = float(st.full_k);
    t.lo = st.lo;
    t.hi = st.hi;
    t.scale = st.scale.data();
    t.offset = st.offset.data();
    t.thresholds = st.type == OutputType::kBits ? st.thresholds.data() : nullptr;
    t.out_step = std::size_t(a.out_c);
    t.bits_step = out_words;
    t.kc_rows = s.kc_rows.get();
    t.out = a.out_float ? a.out_float + first * a.out_c : nullptr;
    const std::size_t res_step = std::size_t(a.residual_channels);
    const float* const residual = a.residual ? a.residual + first * res_step : nullptr;
    t.res_step = res_step;
    t.bits_out = a.out_bits ? a.out_bits + first * out_words : nullptr;
    const std::size_t chunk = unit % chunks;
    const int b_begin = int(chunk) * chunk_blocks;
    const int b_end = std::min(pw.blocks, b_begin + chunk_blocks);
    const int full_tiles = int(count / MR), rest = int(count % MR);
    for (int g = 0; g < a.groups; ++g) {
      t.word_offset = g * wpg * split;
      for (int b = b_begin; b < b_end; b += NR) {
        const int nr = std::min(NR, b_end - b);
        const int block = g * pw.blocks + b;
        t.weights = weights + std::size_t(block) * t.block_stride;
        t.slot0 = block * L;
        t.channel0 = g * pw.out_c_per_group + b * L;
        t.valid = std::min(nr * L, pw.out_c_per_group - b * L);
        t.residual = residual ? residual_for(a, residual, t.channel0) : nullptr;
        if (full_tiles > 0) {
          t.tiles = full_tiles;
          tiles.fns[(MR - 1) * NR + (nr - 1)](t);
        }
        if (rest > 0) {
          // The block's last pixels: one smaller tile, its per-pixel arrays offset.
          TileArgs r = t;
          const std::size_t done = std::size_t(full_tiles) * MR;
          r.tiles = 1;
          r.bases = t.bases + done;
          r.kc_rows = t.kc_rows + done;
          r.out = t.out ? t.out + done * a.out_c : nullptr;
          r.residual = t.residual ? t.residual + done * res_step : nullptr;
          r.bits_out = t.bits_out ? t.bits_out + done * out_words : nullptr;
          tiles.fns[(rest - 1) * NR + (nr - 1)](r);
        }
      }
    }
    // The unit's output is in L1 / L2 still: its epilogue now is one more pass over cache,
    // where a pass of its own would stream the whole output from memory again.
    if (a.then.fn != nullptr && st.type == OutputType::kFloat) {
      const bool grouped = a.groups > 1;
      a.then.fn(a.then.ctx, first, count, grouped ? 0 : b_begin * L, grouped ? a.out_c : std::min(a.out_c, b_end * L));
    }
  });
}

}  // namespace pocketbnn
