// Python bindings of the compiled core: argument checks and GIL release only, no kernel logic
// (PreparedBconv2d only keeps a binary conv's checked arguments and output stage between
// calls). Callers (pocketbnn.kernels and the engine) allocate outputs with numpy and pass them in.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "bconv2d/bconv2d.h"
#include "bconv2d/output_transform.h"
#include "bitpack/threads.h"
#include "bench/peak.h"
#include "bmaxpool/bmaxpool.h"
#include "core/types.h"
#include "dispatch/config.h"
#include "float_ops/float_ops.h"
#include "float_ops/gemm.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace pocketbnn {
namespace {

template <class T>
using CArray = nb::ndarray<T, nb::c_contig, nb::device::cpu>;

// Rows and channels of an array viewed as (rows, last axis).
struct RowsChannels {
  std::size_t rows, channels;
};

template <class T>
RowsChannels rows_channels(const CArray<T>& x, const char* what) {
  if (x.ndim() < 1) throw std::invalid_argument(std::string(what) + " must have at least 1 axis");
  const std::size_t channels = x.shape(x.ndim() - 1);
  return {channels == 0 ? 0 : x.size() / channels, channels};
}

void check_packed(const CArray<Word>& packed, RowsChannels rc, const char* what) {
  if (packed.size() != rc.rows * packed_words(rc.channels)) {
    throw std::invalid_argument(std::string(what) + " holds " + std::to_string(packed.size()) +
                                " words; expected " + std::to_string(rc.rows) + " rows x " +
                                std::to_string(packed_words(rc.channels)) + " words");
  }
}

void bitpack_f32(CArray<const float> x, CArray<Word> out, int num_threads) {
  const auto rc = rows_channels(x, "x");
  check_packed(out, rc, "out");
  if (num_threads < 1) throw std::invalid_argument("num_threads must be >= 1");
  nb::gil_scoped_release release;
  bitpack_f32_threads(x.data(), rc.rows, rc.channels, out.data(), num_threads);
}

void bitpack_i8(CArray<const std::int8_t> x, std::int8_t zero_point, CArray<Word> out) {
  const auto rc = rows_channels(x, "x");
  check_packed(out, rc, "out");
  nb::gil_scoped_release release;
  select_ukernel<ops::bitpack_i8>().fn(x.data(), rc.rows, rc.channels, zero_point, out.data());
}

template <class Op, class T>
void unpack(CArray<const Word> packed, CArray<T> out) {
  const auto rc = rows_channels(out, "out");
  if (packed.size() != rc.rows * packed_words(rc.channels)) {
    throw std::invalid_argument("packed holds " + std::to_string(packed.size()) +
                                " words; out needs " + std::to_string(rc.rows) + " rows x " +
                                std::to_string(packed_words(rc.channels)) + " words");
  }
  nb::gil_scoped_release release;
  select_ukernel<Op>().fn(packed.data(), rc.rows, rc.channels, out.data());
}

// True if the arrays [p, p + n) and [q, q + m) share memory.
bool overlaps(const float* p, std::size_t n, const float* q, std::size_t m) { return p < q + m && q < p + n; }

// Throws std::invalid_argument if !ok. `message` is a string literal or a callable that builds
// the message, so the hot path of a kernel call never formats strings.
template <class Message>
void require(bool ok, Message&& message) {
  if (ok) return;
  if constexpr (std::is_invocable_v<Message>) {
    throw std::invalid_argument(message());
  } else {
    throw std::invalid_argument(message);
  }
}

template <class T>
std::string shape_of(const CArray<T>& a) {
  std::string s = "(";
  for (std::size_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

PackedBconvWeights pack_weights(CArray<const Word> w, int groups, int in_c_per_group) {
  require(w.ndim() == 4,
            [&] { return "weights must be 4-D (out_c, kh, kw, words), got shape " + shape_of(w); });
  require(groups >= 1 && w.shape(0) % groups == 0,
            [&] { return "out_c " + std::to_string(w.shape(0)) + " is not divisible by groups " +
              std::to_string(groups); });
  require(in_c_per_group >= 1 && w.shape(3) == packed_words(in_c_per_group),
            [&] { return "weights hold " + std::to_string(w.shape(3)) + " words per tap; " +
              std::to_string(in_c_per_group) + " input channels per group need " +
              std::to_string(packed_words(std::size_t(std::max(in_c_per_group, 0)))); });
  require(w.size() > 0, "weights are empty");
  nb::gil_scoped_release release;
  return pack_bconv_weights(w.data(), int(w.shape(0)), int(w.shape(1)), int(w.shape(2)), groups,
                            in_c_per_group);
}

using ChannelStageArrays = std::tuple<CArray<const float>, CArray<const float>, CArray<const float>,
                                      CArray<const float>, CArray<const float>, float, float>;

// The stages one run of a per-channel pass applies (ChannelEpilogue::resolve): each vector
// holds C values, or a row of C per image.
struct StagePlan {
  static constexpr int kVectors = 5;  // scale, shift, pos, neg, post
  struct Vector {
    const float* data;
    std::size_t image_step;  // floats from one image's row to the next; 0: shared
  };
  Vector vectors[ChannelAffineArgs::kMaxStages][kVectors] = {};
  std::pair<float, float> bounds[ChannelAffineArgs::kMaxStages] = {};
  int num_stages = 0;
  bool per_image = false;

  // `a` with its rows, channels, arrays and threads set (first row: row `first` of the map,
  // channel c0): runs the stages, one kernel call per image the rows span.
  void run(ChannelAffineArgs a, std::size_t first, std::size_t rows_per_image, std::size_t c0) const {
    const std::size_t stride = a.row_stride != 0 ? a.row_stride : std::size_t(a.channels);
    std::size_t left = a.rows;
    a.num_stages = num_stages;
    while (left > 0) {
      const std::size_t image = per_image ? first / rows_per_image : 0;
      const std::size_t rows = per_image ? std::min(left, (image + 1) * rows_per_image - first) : left;
      for (int i = 0; i < num_stages; ++i) {
        const float* v[kVectors];
        for (int j = 0; j < kVectors; ++j) v[j] = vectors[i][j].data + image * vectors[i][j].image_step + c0;
        a.stages[i] = ChannelStage{v[0], v[1], v[2], v[3], v[4], bounds[i].first, bounds[i].second};
      }
      a.rows = rows;
      select_ukernel<ops::float_channel_affine>().fn(a);
      a.input += rows * stride;
      a.output += rows * stride;
      if (a.addend != nullptr) a.addend += rows * (a.addend_stride != 0 ? a.addend_stride : stride);
      first += rows;
      left -= rows;
    }
  }
};

// A per-channel pass prepared once (pocketbnn.kernels.ChannelEpilogue): z = x (+ an addend),
// then 1 or 2 ChannelStages. Each of a stage's vectors holds C values, or N x C: one row per
// image (an SE gate's scale). The vectors are referenced, not copied, so each run reads their
// values then. Run over a whole map (float_channel_affine) or, as a binary convolution's
// OutputHook, over each region the kernel writes.
class ChannelEpilogue {
 public:
  explicit ChannelEpilogue(const std::vector<ChannelStageArrays>& stages) : arrays_(stages) {
    require(!stages.empty() && stages.size() <= std::size_t(ChannelAffineArgs::kMaxStages),
            "an epilogue takes 1 or 2 stages (scale, shift, pos, neg, post, lo, hi)");
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const auto& [scale, shift, pos, neg, post, lo, hi] = arrays_[i];
      const CArray<const float>* vectors[StagePlan::kVectors] = {&scale, &shift, &pos, &neg, &post};
      for (int j = 0; j < StagePlan::kVectors; ++j) {
        const CArray<const float>& v = *vectors[j];
        require(v.ndim() == 1 || v.ndim() == 2, [&] { return "stage vectors must be (C,) or (N, C), got " + shape_of(v); });
        const std::size_t c = v.shape(v.ndim() - 1);
        require(channels_ == 0 || c == channels_,
                [&] { return "stage vectors disagree on the channel count: " + std::to_string(channels_) + " and " +
                             std::to_string(c); });
        channels_ = c;
        if (v.ndim() == 2) {
          require(images_ == 0 || v.shape(0) == images_,
                  [&] { return "per-image stage vectors disagree on the image count: " + std::to_string(images_) +
                               " and " + std::to_string(v.shape(0)); });
          images_ = v.shape(0);
        }
        given_.vectors[i][j] = {v.data(), v.ndim() == 2 ? c : 0};
      }
      require(lo <= hi, "a stage's clamp must have lo <= hi");
      given_.bounds[i] = {lo, hi};
    }
    require(channels_ > 0, "stage vectors must not be empty");
    given_.num_stages = int(stages.size());
    given_.per_image = images_ > 0;
  }

  std::size_t channels() const { return channels_; }
  std::size_t images() const { return images_; }  // 0: the same vectors for every image

  // Throws unless this pass fits a map of `channels` channels and `batch` images.
  void check(std::size_t channels, std::size_t batch) const {
    require(channels == channels_, [&] { return "the epilogue has vectors for " + std::to_string(channels_) +
                                                " channels, the map has " + std::to_string(channels); });
    require(images_ == 0 || batch == images_, [&] { return "the epilogue has per-image vectors for " +
                                                           std::to_string(images_) + " images, the batch is " +
                                                           std::to_string(batch); });
  }

  // The stages for one run, from the vectors' values now. Two stages where the first clamps
  // nothing and the second is linear (pos = neg) and clamps nothing, e.g. a PReLU-family
  // activation, then an SE gate's product and BatchNorm, compose into one (into `buffer`):
  //   z = x s1 + h1,   y = (z >= 0 ? p2 s2 p1 : p2 s2 n1) z + p2 (s2 q1 + h2) + q2,
  // the same map with half the work per value: the slope is chosen on the same z, and only
  // the rounding differs (a few float32 ulps).
  StagePlan resolve(std::vector<float>& buffer) const {
    if (given_.num_stages != 2 || !unclamped(0) || !unclamped(1)) return given_;
    const StagePlan::Vector* second = given_.vectors[1];
    const std::size_t c_n = channels_, rows = std::max<std::size_t>(images_, 1);
    for (std::size_t n = 0; n < rows; ++n) {
      const float *pos = at(second[2], n), *neg = at(second[3], n);
      if (pos != neg && !std::equal(pos, pos + c_n, neg)) return given_;
    }
    buffer.resize(3 * rows * c_n);
    StagePlan plan = given_;
    plan.num_stages = 1;
    const std::size_t step = images_ > 0 ? c_n : 0;
    float *pos = buffer.data(), *neg = pos + rows * c_n, *post = neg + rows * c_n;
    plan.vectors[0][2] = {pos, step};
    plan.vectors[0][3] = {neg, step};
    plan.vectors[0][4] = {post, step};
    const StagePlan::Vector* first = given_.vectors[0];
    for (std::size_t n = 0; n < rows; ++n) {
      const float *p1 = at(first[2], n), *n1 = at(first[3], n), *q1 = at(first[4], n);
      const float *s2 = at(second[0], n), *h2 = at(second[1], n), *p2 = at(second[2], n), *q2 = at(second[4], n);
      for (std::size_t c = 0; c < c_n; ++c) {
        const float k = p2[c] * s2[c];
        pos[n * c_n + c] = k * p1[c];
        neg[n * c_n + c] = k * n1[c];
        post[n * c_n + c] = p2[c] * (s2[c] * q1[c] + h2[c]) + q2[c];
      }
    }
    return plan;
  }

 private:
  bool unclamped(int i) const {
    return given_.bounds[i].first == -std::numeric_limits<float>::infinity() &&
           given_.bounds[i].second == std::numeric_limits<float>::infinity();
  }
  static const float* at(const StagePlan::Vector& v, std::size_t image) { return v.data + image * v.image_step; }

  std::vector<ChannelStageArrays> arrays_;  // held: runs read them through given_
  StagePlan given_;
  std::size_t channels_ = 0, images_ = 0;
};

// A binary convolution's epilogue for one call (Bconv2dArgs::then): the pass over each region
// the kernel wrote, in place, on one thread (the kernel's threads run the regions). The addend
// has addend_channels channels per pixel, mapped onto the output's as a residual is
// (ResidualMap): a region then splits into runs of channels that read one contiguous run of
// the addend each (or none: zero-padded channels).
struct ConvEpilogue {
  StagePlan plan;
  float* out;
  const float* addend;  // or null
  std::size_t channels, pixels_per_image;
  std::size_t addend_channels;
  ResidualMap addend_map;

  static void run(const void* ctx, std::size_t first, std::size_t count, int c_begin, int c_end) {
    const ConvEpilogue& e = *static_cast<const ConvEpilogue*>(ctx);
    ChannelAffineArgs a;
    a.rows = count;
    a.row_stride = e.channels;
    a.addend_stride = e.addend_channels;
    a.num_threads = 1;
    const std::size_t r = e.addend_channels;
    for (std::size_t c = std::size_t(c_begin), end = std::size_t(c_end); c < end;) {
      // Addend channel of output channel c, and how many channels from c read on from there.
      std::size_t j = c, n = end - c;
      if (e.addend != nullptr && e.addend_map == ResidualMap::kTile) {
        j = c % r;
        n = std::min(n, r - j);
      } else if (e.addend != nullptr && e.addend_map == ResidualMap::kZeroPad && c < r) {
        n = std::min(n, r - c);
      }
      const bool adds = e.addend != nullptr && (e.addend_map != ResidualMap::kZeroPad || c < r);
      a.input = a.output = e.out + first * e.channels + c;
      a.addend = adds ? e.addend + first * r + j : nullptr;
      a.channels = int(n);
      e.plan.run(a, first, e.pixels_per_image, c);
      c += n;
    }
  }
};

// A binary convolution prepared for one input shape (pocketbnn.kernels.Bconv2d): everything but
// the input, output and residual is checked, copied and resolved once, the output stage
// included, so run() checks three arrays and calls the kernel. The last line of defence for
// memory safety: everything the kernels index is checked here (the Python class gives
// friendlier messages first).
class PreparedBconv2d {
 public:
  PreparedBconv2d(std::vector<std::size_t> x_shape, CArray<const Word> w, nb::object packed,
                  int stride_h, int stride_w, int dilation_h, int dilation_w, int pad_top,
                  int pad_left, int pad_value, int out_h, int out_w,
                  CArray<const float> multiplier, CArray<const float> bias, int clamp_lo,
                  int clamp_hi, CArray<const std::int32_t> thresholds, int num_threads)
      : weights_(w), packed_obj_(packed), packed_(nb::cast<const PackedBconvWeights&>(packed)) {
    require(x_shape.size() == 4, "x must be 4-D (batch, height, width, words)");
    require(w.ndim() == 4,
            [&] { return "weights must be 4-D (out_c, kh, kw, words), got " + shape_of(w); });
    const int out_c = int(w.shape(0));
    require(packed_.out_c == out_c && packed_.kh == int(w.shape(1)) && packed_.kw == int(w.shape(2)) &&
                packed_.words_per_group == int(w.shape(3)),
            [&] { return "packed weights do not match weights of shape " + shape_of(w); });
    require(int(x_shape[3]) == packed_.groups * packed_.words_per_group,
            [&] { return "x has " + std::to_string(x_shape[3]) + " words per pixel; weights need " +
                         std::to_string(packed_.groups * packed_.words_per_group); });
    require(stride_h >= 1 && stride_w >= 1 && dilation_h >= 1 && dilation_w >= 1,
            "strides and dilations must be >= 1");
    // Any output size is safe: the kernels pad the input to what the output's windows need.
    require(pad_top >= 0 && pad_left >= 0 && out_h >= 0 && out_w >= 0, "padding and output size must be >= 0");
    require(pad_value == 0 || pad_value == 1, "pad_value must be 0 or 1");
    require(num_threads >= 1, "num_threads must be >= 1");
    require(clamp_lo <= clamp_hi, "clamp must have lo <= hi");
    bits_ = thresholds.is_valid();
    const auto per_channel = [&](const auto& v) { return v.is_valid() && v.ndim() == 1 && v.shape(0) == std::size_t(out_c); };
    if (bits_) {
      require(!multiplier.is_valid() && !bias.is_valid(), "bit output takes thresholds only");
      require(per_channel(thresholds),
              [&] { return "bit output needs thresholds of shape (" + std::to_string(out_c) + ",)"; });
      thresholds_.assign(thresholds.data(), thresholds.data() + out_c);
    } else {
      require(per_channel(multiplier) && per_channel(bias),
              [&] { return "float output needs multiplier and bias of shape (" + std::to_string(out_c) + ",)"; });
      multiplier_.assign(multiplier.data(), multiplier.data() + out_c);
      bias_.assign(bias.data(), bias.data() + out_c);
    }
    Bconv2dArgs& a = args_;
    a.batch = int(x_shape[0]);
    a.in_h = int(x_shape[1]);
    a.in_w = int(x_shape[2]);
    a.in_words = int(x_shape[3]);
    a.weights = w.data();
    a.packed = &packed_;
    a.out_c = out_c;
    a.kh = packed_.kh;
    a.kw = packed_.kw;
    a.groups = packed_.groups;
    a.in_c_per_group = packed_.in_c_per_group;
    a.stride_h = stride_h;
    a.stride_w = stride_w;
    a.dilation_h = dilation_h;
    a.dilation_w = dilation_w;
    a.pad_top = pad_top;
    a.pad_left = pad_left;
    a.out_h = out_h;
    a.out_w = out_w;
    a.pad_value = pad_value == 1 ? PadValue::kOne : PadValue::kZero;
    a.output_type = bits_ ? OutputType::kBits : OutputType::kFloat;
    a.multiplier = bits_ ? nullptr : multiplier_.data();
    a.bias = bits_ ? nullptr : bias_.data();
    a.clamp_lo = clamp_lo;
    a.clamp_hi = clamp_hi;
    a.thresholds = bits_ ? thresholds_.data() : nullptr;
    a.num_threads = num_threads;
    stage_ = make_output_stage(a, packed_);
    a.stage = &stage_;
    out_shape_ = {x_shape[0], std::size_t(out_h), std::size_t(out_w),
                  bits_ ? packed_words(out_c) : std::size_t(out_c)};
  }

  // residual_map: a ResidualMap; with kTile / kZeroPad the residual has fewer channels than the
  // output (a multiple of 64, groups 1) and must not overlap it. epilogue (or null): a pass run
  // on each region of the output once written, after adding `addend` (not overlapping out;
  // mapped onto the output channels by addend_map, a ResidualMap, any channel count) to it.
  void run_float(CArray<const Word> x, CArray<float> out, CArray<const float> residual, int residual_map,
                 CArray<const float> addend, int addend_map, const ChannelEpilogue* epilogue) {
    require(!bits_, "this convolution has bit output");
    check(x, out.ndim(), [&](int i) { return out.shape(i); });
    require(residual_map >= int(ResidualMap::kSame) && residual_map <= int(ResidualMap::kZeroPad),
            "residual_map must be 0 (same), 1 (tile) or 2 (zero-pad)");
    const auto map = ResidualMap(residual_map);
    Bconv2dArgs a = args_;
    if (residual.is_valid()) {
      require(residual.ndim() == 4 && residual.shape(0) == out_shape_[0] && residual.shape(1) == out_shape_[1] &&
                  residual.shape(2) == out_shape_[2],
              [&] { return "residual must have the output's batch, height and width, got " + shape_of(residual); });
      const std::size_t channels = residual.shape(3);
      if (map == ResidualMap::kSame) {
        require(channels == out_shape_[3], [&] { return "residual must have the output's shape, got " + shape_of(residual); });
      } else {
        require(args_.groups == 1, "a mapped residual needs groups == 1");
        require(channels > 0 && channels % kWordBits == 0 && channels <= out_shape_[3],
                [&] { return "a mapped residual needs a multiple of 64 channels, at most the output's " +
                             std::to_string(out_shape_[3]) + ", got " + shape_of(residual); });
        require(!overlaps(residual.data(), residual.size(), out.data(), out.size()),
                "a mapped residual must not overlap out");
      }
      a.residual = residual.data();
      a.residual_channels = int(channels);
      a.residual_map = map;
    }
    a.input = x.data();
    a.out_float = out.data();
    std::vector<float> composed;
    ConvEpilogue then{{}, out.data(), nullptr, out_shape_[3], out_shape_[1] * out_shape_[2], out_shape_[3],
                      ResidualMap::kSame};
    if (epilogue != nullptr) {
      epilogue->check(out_shape_[3], out_shape_[0]);
      then.plan = epilogue->resolve(composed);
      if (addend.is_valid()) {
        require(addend_map >= int(ResidualMap::kSame) && addend_map <= int(ResidualMap::kZeroPad),
                "addend_map must be 0 (same), 1 (tile) or 2 (zero-pad)");
        require(addend.ndim() == 4 && addend.shape(0) == out_shape_[0] && addend.shape(1) == out_shape_[1] &&
                    addend.shape(2) == out_shape_[2],
                [&] { return "addend must have the output's batch, height and width, got " + shape_of(addend); });
        const std::size_t channels = addend.shape(3);
        require(addend_map == int(ResidualMap::kSame) ? channels == out_shape_[3] : channels > 0 && channels <= out_shape_[3],
                [&] { return "addend has " + std::to_string(channels) + " channels; the output has " +
                             std::to_string(out_shape_[3]) + (addend_map == int(ResidualMap::kSame) ? "" : " (at most)"); });
        require(!overlaps(addend.data(), addend.size(), out.data(), out.size()), "addend must not overlap out");
        then.addend = addend.data();
        then.addend_channels = channels;
        then.addend_map = ResidualMap(addend_map);
      }
      a.then = {&ConvEpilogue::run, &then};
    } else {
      require(!addend.is_valid(), "an addend needs an epilogue");
    }
    launch(a);
  }

  void run_bits(CArray<const Word> x, CArray<Word> out) {
    require(bits_, "this convolution has float output");
    check(x, out.ndim(), [&](int i) { return out.shape(i); });
    Bconv2dArgs a = args_;
    a.input = x.data();
    a.out_bits = out.data();
    launch(a);
  }

 private:
  template <class Dim>
  void check(const CArray<const Word>& x, std::size_t out_ndim, Dim out_dim) const {
    require(x.ndim() == 4 && int(x.shape(0)) == args_.batch && int(x.shape(1)) == args_.in_h &&
                int(x.shape(2)) == args_.in_w && int(x.shape(3)) == args_.in_words,
            [&] { return "x has shape " + shape_of(x) + "; the convolution was prepared for another"; });
    require(out_ndim == 4 && out_dim(0) == out_shape_[0] && out_dim(1) == out_shape_[1] &&
                out_dim(2) == out_shape_[2] && out_dim(3) == out_shape_[3],
            "out does not have the prepared output shape");
  }

  static void launch(const Bconv2dArgs& a) {
    if (a.batch == 0 || a.out_h == 0 || a.out_w == 0 || a.out_c == 0) return;
    nb::gil_scoped_release release;
    if (a.out_bits != nullptr && a.out_c % kWordBits != 0) {
      // The kernels write every channel bit but leave the last word's padding bits as they
      // were; clear them here so any buffer (np.empty included) comes back fully defined.
      const std::size_t out_last = packed_words(a.out_c);
      const Word keep = (Word{1} << (a.out_c % kWordBits)) - 1;
      const std::size_t pixels = std::size_t(a.batch) * a.out_h * a.out_w;
      Word* last = a.out_bits + out_last - 1;
      for (std::size_t p = 0; p < pixels; ++p) last[p * out_last] &= keep;
    }
    select_ukernel<ops::bconv2d>().fn(a);
  }

  CArray<const Word> weights_;  // held: the kernels read them through args_
  nb::object packed_obj_;
  const PackedBconvWeights& packed_;
  std::vector<float> multiplier_, bias_;
  std::vector<std::int32_t> thresholds_;
  bool bits_ = false;
  Bconv2dArgs args_;
  OutputStage stage_;
  std::array<std::size_t, 4> out_shape_{};
};

void bmaxpool(CArray<const Word> x, int kh, int kw, int stride_h, int stride_w, int pad_top,
              int pad_left, CArray<Word> out, int num_threads) {
  require(x.ndim() == 4 && out.ndim() == 4, "x and out must be 4-D (batch, height, width, words)");
  require(out.shape(0) == x.shape(0) && out.shape(3) == x.shape(3),
          "out must have the batch and words of x");
  require(kh >= 1 && kw >= 1 && stride_h >= 1 && stride_w >= 1, "pool sizes and strides must be >= 1");
  require(pad_top >= 0 && pad_top < kh && pad_left >= 0 && pad_left < kw,
          "padding must be smaller than the pool window");
  require(num_threads >= 1, "num_threads must be >= 1");
  BmaxpoolArgs a;
  a.input = x.data();
  a.batch = int(x.shape(0));
  a.in_h = int(x.shape(1));
  a.in_w = int(x.shape(2));
  a.words = int(x.shape(3));
  a.kh = kh;
  a.kw = kw;
  a.stride_h = stride_h;
  a.stride_w = stride_w;
  a.pad_top = pad_top;
  a.pad_left = pad_left;
  a.out_h = int(out.shape(1));
  a.out_w = int(out.shape(2));
  a.output = out.data();
  a.num_threads = num_threads;
  // Every window must hold at least one pixel of the image.
  require(a.out_h == 0 || a.out_w == 0 ||
              ((a.out_h - 1) * stride_h - pad_top < a.in_h && (a.out_w - 1) * stride_w - pad_left < a.in_w),
          "output is larger than the padded input allows");
  nb::gil_scoped_release release;
  select_ukernel<ops::bmaxpool>().fn(a);
}

// --- float ops (csrc/float_ops): NHWC float32, outputs preallocated by the caller ------------

FloatWindow float_window(const CArray<const float>& x, int out_h, int out_w, int kh, int kw,
                         int stride_h, int stride_w, int dilation_h, int dilation_w, int pad_top,
                         int pad_left) {
  require(x.ndim() == 4,
            [&] { return "x must be 4-D (batch, height, width, channels), got " + shape_of(x); });
  require(kh >= 1 && kw >= 1 && stride_h >= 1 && stride_w >= 1 && dilation_h >= 1 &&
              dilation_w >= 1, "kernel sizes, strides and dilations must be >= 1");
  require(pad_top >= 0 && pad_left >= 0, "padding must be >= 0");
  FloatWindow g;
  g.batch = int(x.shape(0));
  g.in_h = int(x.shape(1));
  g.in_w = int(x.shape(2));
  g.channels = int(x.shape(3));
  g.out_h = out_h;
  g.out_w = out_w;
  g.kh = kh;
  g.kw = kw;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.dilation_h = dilation_h;
  g.dilation_w = dilation_w;
  g.pad_top = pad_top;
  g.pad_left = pad_left;
  return g;
}

void check_out4(const CArray<float>& out, std::size_t batch, std::size_t last, const char* what) {
  require(out.ndim() == 4 && out.shape(0) == batch && out.shape(3) == last,
            [&] { return std::string(what) + " must have shape (" + std::to_string(batch) + ", out_h, out_w, " +
              std::to_string(last) + "), got " + shape_of(out); });
}

// The buffers, bias (checked: one value per output channel, or none), ReLU and threads of a
// float convolution whose window and weights' shape are already checked.
void set_conv_buffers(FloatConvArgs& a, const CArray<const float>& x, const CArray<const float>& weights,
                      const CArray<const float>& bias, std::size_t out_channels, const CArray<float>& out,
                      bool relu, int num_threads) {
  require(!bias.is_valid() || (bias.ndim() == 1 && bias.shape(0) == out_channels),
          "bias must have one value per output channel");
  a.input = x.data();
  a.weights = weights.data();
  a.bias = bias.is_valid() ? bias.data() : nullptr;
  a.output = out.data();
  a.relu = relu;
  a.num_threads = num_threads;
}

void float_depthwise2d(CArray<const float> x, CArray<const float> weights,
                       CArray<const float> bias, int stride_h, int stride_w, int dilation_h,
                       int dilation_w, int pad_top, int pad_left, bool relu, CArray<float> out,
                       int num_threads) {
  require(weights.ndim() == 3,
            [&] { return "weights must be 3-D (kh, kw, out_channels), got " + shape_of(weights); });
  require(num_threads >= 1, "num_threads must be >= 1");
  const std::size_t out_channels = weights.shape(2);
  check_out4(out, x.ndim() == 4 ? x.shape(0) : 0, out_channels, "out");
  DepthwiseArgs a;
  a.g = float_window(x, int(out.shape(1)), int(out.shape(2)), int(weights.shape(0)),
                     int(weights.shape(1)), stride_h, stride_w, dilation_h, dilation_w, pad_top,
                     pad_left);
  require(a.g.channels >= 1 && out_channels % std::size_t(a.g.channels) == 0,
          "weights must have the channels of x times a channel multiplier");
  a.multiplier = int(out_channels / std::size_t(a.g.channels));
  set_conv_buffers(a, x, weights, bias, out_channels, out, relu, num_threads);
  nb::gil_scoped_release release;
  select_ukernel<ops::float_depthwise2d>().fn(a);
}

void float_direct_conv2d(CArray<const float> x, CArray<const float> weights, CArray<const float> bias,
                         int kh, int kw, int stride_h, int stride_w, int dilation_h, int dilation_w,
                         int pad_top, int pad_left, bool relu, CArray<float> out, int num_threads) {
  require(num_threads >= 1, "num_threads must be >= 1");
  require(out.ndim() == 4, [&] { return "out must be 4-D, got " + shape_of(out); });
  DirectConvArgs a;
  a.g = float_window(x, int(out.shape(1)), int(out.shape(2)), kh, kw, stride_h, stride_w, dilation_h,
                     dilation_w, pad_top, pad_left);
  const std::size_t out_channels = out.shape(3), blocks = (out_channels + kDirectBlock - 1) / kDirectBlock;
  const std::size_t k = std::size_t(kh) * kw * x.shape(3);
  check_out4(out, x.shape(0), out_channels, "out");
  require(weights.ndim() == 3 && weights.shape(0) == blocks && weights.shape(1) == k &&
              weights.shape(2) == std::size_t(kDirectBlock),
          [&] { return "weights must be packed as (" + std::to_string(blocks) + ", " + std::to_string(k) + ", " +
                       std::to_string(kDirectBlock) + "), got " + shape_of(weights); });
  a.out_channels = int(out_channels);
  set_conv_buffers(a, x, weights, bias, out_channels, out, relu, num_threads);
  nb::gil_scoped_release release;
  select_ukernel<ops::float_direct_conv2d>().fn(a);
}

void float_pool2d(CArray<const float> x, int mode, int kh, int kw, int stride_h, int stride_w,
                  int dilation_h, int dilation_w, int pad_top, int pad_left, CArray<float> out,
                  int num_threads) {
  require(mode >= 0 && mode <= 2, "mode must be 0 (max), 1 (avg incl. pad) or 2 (avg excl. pad)");
  require(num_threads >= 1, "num_threads must be >= 1");
  check_out4(out, x.ndim() == 4 ? x.shape(0) : 0, x.ndim() == 4 ? x.shape(3) : 0, "out");
  FloatPoolArgs a;
  a.g = float_window(x, int(out.shape(1)), int(out.shape(2)), kh, kw, stride_h, stride_w,
                     dilation_h, dilation_w, pad_top, pad_left);
  a.mode = PoolMode(mode);
  a.input = x.data();
  a.output = out.data();
  a.num_threads = num_threads;
  nb::gil_scoped_release release;
  select_ukernel<ops::float_pool2d>().fn(a);
}

void float_channel_affine(CArray<const float> x, CArray<const float> addend, const ChannelEpilogue& epilogue,
                          CArray<float> out, int num_threads) {
  const auto rc = rows_channels(x, "x");
  require(num_threads >= 1, "num_threads must be >= 1");
  require(out.ndim() == x.ndim() && out.size() == x.size() &&
              out.shape(out.ndim() - 1) == rc.channels, "out must have the shape of x");
  if (addend.is_valid()) {
    require(addend.ndim() == x.ndim() && addend.size() == x.size() &&
                addend.shape(addend.ndim() - 1) == rc.channels, "addend must have the shape of x");
  }
  const std::size_t batch = x.ndim() > 1 ? x.shape(0) : 1;
  epilogue.check(rc.channels, batch);
  ChannelAffineArgs a;
  a.input = x.data();
  a.addend = addend.is_valid() ? addend.data() : nullptr;
  a.output = out.data();
  a.rows = rc.rows;
  a.channels = int(rc.channels);
  a.num_threads = num_threads;
  std::vector<float> composed;
  const StagePlan plan = epilogue.resolve(composed);
  nb::gil_scoped_release release;
  plan.run(a, 0, batch == 0 ? 0 : rc.rows / batch, 0);
}

void float_add(CArray<const float> a_, CArray<const float> b, CArray<float> out, bool relu,
               int num_threads) {
  require(num_threads >= 1, "num_threads must be >= 1");
  require(a_.size() == out.size() && b.size() == out.size(), "a, b and out must have the same size");
  FloatAddArgs a;
  a.a = a_.data();
  a.b = b.data();
  a.output = out.data();
  a.size = out.size();
  a.relu = relu;
  a.num_threads = num_threads;
  nb::gil_scoped_release release;
  select_ukernel<ops::float_add>().fn(a);
}

void float_channel_map(CArray<const float> x, int map, CArray<const float> residual, CArray<float> out,
                       int num_threads) {
  require(map >= 0 && map <= 2, "map must be 0 (tile), 1 (zero-pad) or 2 (average)");
  require(num_threads >= 1, "num_threads must be >= 1");
  const auto in = rows_channels(x, "x");
  const auto rc = rows_channels(out, "out");
  bool same_rows = out.ndim() == x.ndim();
  for (std::size_t i = 0; same_rows && i + 1 < x.ndim(); ++i) same_rows = x.shape(i) == out.shape(i);
  require(same_rows && in.channels >= 1 && rc.channels >= 1,
          "x and out must share every axis but the last (channels), each with at least one channel");
  require(ChannelMap(map) != ChannelMap::kZeroPad || rc.channels >= in.channels,
          "zero-padding cannot reduce the channel count");
  require(ChannelMap(map) != ChannelMap::kAvg || rc.channels <= in.channels,
          "averaging cannot increase the channel count");
  require(!residual.is_valid() || (residual.ndim() == out.ndim() && residual.size() == out.size() &&
                                   residual.shape(out.ndim() - 1) == rc.channels),
          "residual must have the shape of out");
  require(!overlaps(x.data(), x.size(), out.data(), out.size()) &&
              (!residual.is_valid() || !overlaps(x.data(), x.size(), residual.data(), residual.size())),
          "x must not overlap out or residual");
  ChannelMapArgs a;
  a.input = x.data();
  a.output = out.data();
  a.rows = rc.rows;
  a.in_channels = int(in.channels);
  a.out_channels = int(rc.channels);
  a.map = ChannelMap(map);
  a.residual = residual.is_valid() ? residual.data() : nullptr;
  a.num_threads = num_threads;
  nb::gil_scoped_release release;
  select_ukernel<ops::float_channel_map>().fn(a);
}

void bitpack_f32_padded_binding(CArray<const float> x, int pad_top, int pad_bottom, int pad_left,
                                int pad_right, CArray<Word> out, int num_threads, CArray<float> means) {
  if (x.ndim() != 4) throw std::invalid_argument("x must be 4-D (batch, height, width, channels)");
  if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0) {
    throw std::invalid_argument("padding must be >= 0");
  }
  if (num_threads < 1) throw std::invalid_argument("num_threads must be >= 1");
  PaddedPack g;
  g.batch = int(x.shape(0));
  g.h = int(x.shape(1));
  g.w = int(x.shape(2));
  g.channels = x.shape(3);
  g.pad_top = pad_top;
  g.pad_bottom = pad_bottom;
  g.pad_left = pad_left;
  g.pad_right = pad_right;
  if (out.ndim() != 4 || out.shape(0) != x.shape(0) || out.shape(1) != x.shape(1) + pad_top + pad_bottom ||
      out.shape(2) != x.shape(2) + pad_left + pad_right || out.shape(3) != packed_words(g.channels)) {
    throw std::invalid_argument("out must have shape (batch, height + pad_top + pad_bottom, width + pad_left + "
                                "pad_right, words) for x of shape " + shape_of(x));
  }
  if (means.is_valid()) {
    require(means.size() == std::size_t(g.batch) * g.channels,
            [&] { return "means must hold batch x channels = " + std::to_string(std::size_t(g.batch) * g.channels) +
                         " floats, got " + std::to_string(means.size()); });
    require(g.h > 0 && g.w > 0, "means need a non-empty image");
    require(!overlaps(means.data(), means.size(), x.data(), x.size()), "means must not overlap x");
  }
  nb::gil_scoped_release release;
  bitpack_f32_padded(x.data(), g, out.data(), num_threads, means.is_valid() ? means.data() : nullptr);
}

// Checks b [k, n], bias and out [..., n] with m rows; fills the product fields of a GEMM.
FloatGemmArgs gemm_args(std::size_t m, std::size_t k, const CArray<const float>& b,
                        const CArray<const float>& bias, CArray<float>& out, bool relu,
                        int num_threads) {
  require(num_threads >= 1, "num_threads must be >= 1");
  require(has_blas(), "no BLAS is registered (pocketbnn.engine registers OpenBLAS's)");
  require(b.ndim() == 2 && b.shape(0) == k && k >= 1,
          [&] { return "b must be 2-D (" + std::to_string(k) + ", n), got " + shape_of(b); });
  const std::size_t n = b.shape(1);
  require(out.ndim() >= 1 && out.shape(out.ndim() - 1) == n && out.size() == m * n,
          [&] { return "out must hold " + std::to_string(m) + " rows of " + std::to_string(n) +
                       " values, got " + shape_of(out); });
  require(!bias.is_valid() || (bias.ndim() == 1 && bias.shape(0) == n),
          "bias must have one value per output column");
  require(m < (std::size_t(1) << 31) && n < (std::size_t(1) << 31) && k < (std::size_t(1) << 31),
          "GEMM dimensions must be below 2^31");
  FloatGemmArgs g;
  g.m = m;
  g.n = int(n);
  g.k = int(k);
  g.b = b.data();
  g.bias = bias.is_valid() ? bias.data() : nullptr;
  g.c = out.data();
  g.relu = relu;
  g.num_threads = num_threads;
  return g;
}

void float_gemm_binding(CArray<const float> a, CArray<const float> b, CArray<const float> bias,
                        CArray<float> out, bool relu, int num_threads) {
  require(a.ndim() == 2, [&] { return "a must be 2-D (m, k), got " + shape_of(a); });
  FloatGemmArgs g = gemm_args(a.shape(0), a.shape(1), b, bias, out, relu, num_threads);
  g.a = a.data();
  nb::gil_scoped_release release;
  float_gemm(g);
}

void float_gemv_i8_binding(CArray<const float> x, CArray<const std::int8_t> codes, CArray<const float> scale,
                           CArray<const float> bias, CArray<float> out, bool relu, int num_threads) {
  require(num_threads >= 1, "num_threads must be >= 1");
  require(x.ndim() == 2, [&] { return "x must be 2-D (rows, k), got " + shape_of(x); });
  require(scale.ndim() == 1 && scale.shape(0) > 0, "scale must be 1-D, one value per output column");
  const std::size_t rows = x.shape(0), k = x.shape(1), n = scale.shape(0);
  const std::size_t blocks = (n + kGemvBlock - 1) / kGemvBlock;
  require(codes.ndim() == 3 && codes.shape(0) == blocks && codes.shape(1) == k && codes.shape(2) == std::size_t(kGemvBlock),
          [&] { return "codes must be (" + std::to_string(blocks) + ", " + std::to_string(k) + ", " +
                       std::to_string(kGemvBlock) + ") for k = " + std::to_string(k) + ", n = " + std::to_string(n) +
                       ", got " + shape_of(codes); });
  require(!bias.is_valid() || (bias.ndim() == 1 && bias.shape(0) == n), "bias must have one value per output column");
  require(out.ndim() == 2 && out.shape(0) == rows && out.shape(1) == n,
          [&] { return "out must be (" + std::to_string(rows) + ", " + std::to_string(n) + "), got " + shape_of(out); });
  GemvI8Args g;
  g.x = x.data();
  g.rows = rows;
  g.k = k;
  g.n = n;
  g.codes = codes.data();
  g.scale = scale.data();
  g.bias = bias.is_valid() ? bias.data() : nullptr;
  g.output = out.data();
  g.relu = relu;
  g.num_threads = num_threads;
  nb::gil_scoped_release release;
  select_ukernel<ops::float_gemv_i8>().fn(g);
}

void float_conv_gemm(CArray<const float> x, CArray<const float> b, CArray<const float> bias,
                     int kh, int kw, int stride_h, int stride_w, int dilation_h, int dilation_w,
                     int pad_top, int pad_left, CArray<float> cols, CArray<float> out, bool relu,
                     int num_threads) {
  require(out.ndim() == 4, [&] { return "out must be 4-D, got " + shape_of(out); });
  Im2colArgs im;
  im.g = float_window(x, int(out.shape(1)), int(out.shape(2)), kh, kw, stride_h, stride_w,
                      dilation_h, dilation_w, pad_top, pad_left);
  const std::size_t k = std::size_t(kh) * kw * x.shape(3);
  check_out4(cols, x.shape(0), k, "cols");
  require(cols.shape(1) == out.shape(1) && cols.shape(2) == out.shape(2) && out.shape(0) == x.shape(0),
          "cols and out must have the batch and output size of the convolution");
  FloatGemmArgs g = gemm_args(out.shape(0) * out.shape(1) * out.shape(2), k, b, bias, out, relu,
                              num_threads);
  im.input = x.data();
  im.output = cols.data();
  g.im2col = &im;
  nb::gil_scoped_release release;
  float_gemm(g);
}

}  // namespace
}  // namespace pocketbnn

NB_MODULE(_core, m) {
  using namespace pocketbnn;
  m.doc() = "pocketbnn compiled core: bit-packing and binary kernels with run-time ISA dispatch";
  m.attr("WORD_BITS") = kWordBits;

  m.def("bitpack_f32", &bitpack_f32, "x"_a, "out"_a, "num_threads"_a = 1);
  m.def("bitpack_i8", &bitpack_i8, "x"_a, "zero_point"_a, "out"_a);
  m.def("bitpack_f32_padded", &bitpack_f32_padded_binding, "x"_a, "pad_top"_a, "pad_bottom"_a, "pad_left"_a,
        "pad_right"_a, "out"_a, "num_threads"_a, "means"_a.noconvert().none() = nb::none());
  m.def("unpack_f32", &unpack<ops::unpack_f32, float>, "packed"_a, "out"_a);
  m.def("unpack_i8", &unpack<ops::unpack_i8, std::int8_t>, "packed"_a, "out"_a);

  nb::class_<PackedBconvWeights>(m, "PackedBconvWeights",
                                  "Binary-conv weights re-laid out for the optimized kernels")
      .def_ro("out_c", &PackedBconvWeights::out_c)
      .def_ro("kh", &PackedBconvWeights::kh)
      .def_ro("kw", &PackedBconvWeights::kw)
      .def_ro("groups", &PackedBconvWeights::groups)
      .def_ro("in_c_per_group", &PackedBconvWeights::in_c_per_group);
  m.def("pack_bconv2d_weights", &pack_weights, "weights"_a, "groups"_a, "in_c_per_group"_a);
  nb::class_<ChannelEpilogue>(m, "ChannelEpilogue", "A per-channel pass prepared once (kernels.ChannelEpilogue)")
      .def(nb::init<const std::vector<ChannelStageArrays>&>(), "stages"_a)
      .def_prop_ro("channels", &ChannelEpilogue::channels)
      .def_prop_ro("images", &ChannelEpilogue::images);
  nb::class_<PreparedBconv2d>(m, "PreparedBconv2d",
                              "A binary convolution prepared for one input shape (kernels.Bconv2d)")
      .def(nb::init<std::vector<std::size_t>, CArray<const Word>, nb::object, int, int, int, int, int, int, int,
                    int, int, CArray<const float>, CArray<const float>, int, int, CArray<const std::int32_t>,
                    int>(),
           "x_shape"_a, "weights"_a, "packed"_a, "stride_h"_a, "stride_w"_a, "dilation_h"_a, "dilation_w"_a,
           "pad_top"_a, "pad_left"_a, "pad_value"_a, "out_h"_a, "out_w"_a, "multiplier"_a.none(),
           "bias"_a.none(), "clamp_lo"_a, "clamp_hi"_a, "thresholds"_a.none(), "num_threads"_a)
      // noconvert: an array of another dtype is refused, never copied (a converted `out` would
      // be written and thrown away).
      .def("run_float", &PreparedBconv2d::run_float, "x"_a.noconvert(), "out"_a.noconvert(),
           "residual"_a.noconvert().none(), "residual_map"_a = 0, "addend"_a.noconvert().none() = nb::none(),
           "addend_map"_a = 0, "epilogue"_a.none() = nb::none())
      .def("run_bits", &PreparedBconv2d::run_bits, "x"_a.noconvert(), "out"_a.noconvert());
  m.def("bmaxpool", &bmaxpool, "x"_a, "kh"_a, "kw"_a, "stride_h"_a, "stride_w"_a, "pad_top"_a,
        "pad_left"_a, "out"_a, "num_threads"_a);
  m.def("float_depthwise2d", &float_depthwise2d, "x"_a, "weights"_a, "bias"_a.none(),
        "stride_h"_a, "stride_w"_a, "dilation_h"_a, "dilation_w"_a, "pad_top"_a, "pad_left"_a,
        "relu"_a, "out"_a, "num_threads"_a);
  m.def("float_direct_conv2d", &float_direct_conv2d, "x"_a, "weights"_a, "bias"_a.none(), "kh"_a, "kw"_a,
        "stride_h"_a, "stride_w"_a, "dilation_h"_a, "dilation_w"_a, "pad_top"_a, "pad_left"_a, "relu"_a,
        "out"_a, "num_threads"_a);
  m.def("float_pool2d", &float_pool2d, "x"_a, "mode"_a, "kh"_a, "kw"_a, "stride_h"_a,
        "stride_w"_a, "dilation_h"_a, "dilation_w"_a, "pad_top"_a, "pad_left"_a, "out"_a,
        "num_threads"_a);
  m.def("float_channel_affine", &float_channel_affine, "x"_a, "addend"_a.none(), "epilogue"_a, "out"_a,
        "num_threads"_a);
  m.def("float_add", &float_add, "a"_a, "b"_a, "out"_a, "relu"_a, "num_threads"_a);
  m.def("float_channel_map", &float_channel_map, "x"_a, "map"_a, "residual"_a.none(), "out"_a, "num_threads"_a);
  m.def("float_gemm", &float_gemm_binding, "a"_a, "b"_a, "bias"_a.none(), "out"_a, "relu"_a,
        "num_threads"_a);
  m.def("float_gemv_i8", &float_gemv_i8_binding, "x"_a, "codes"_a, "scale"_a, "bias"_a.none(), "out"_a, "relu"_a,
        "num_threads"_a);
  m.def("float_conv_gemm", &float_conv_gemm, "x"_a, "b"_a, "bias"_a.none(), "kh"_a, "kw"_a,
        "stride_h"_a, "stride_w"_a, "dilation_h"_a, "dilation_w"_a, "pad_top"_a, "pad_left"_a,
        "cols"_a, "out"_a, "relu"_a, "num_threads"_a);
  m.def("set_blas", [](std::uintptr_t sgemm, std::uintptr_t sgemv) {
    require(sgemm != 0 && sgemv != 0, "set_blas needs the addresses of cblas_sgemm and cblas_sgemv");
    set_blas(reinterpret_cast<CblasSgemmFn>(sgemm), reinterpret_cast<CblasSgemvFn>(sgemv));
  }, "sgemm"_a, "sgemv"_a, "Registers cblas_sgemm and cblas_sgemv (their addresses) for the float GEMMs");
  m.def("has_blas", &has_blas);
  m.def("measure_clock_ghz", [](double seconds) {
    nb::gil_scoped_release release;
    return measure_clock_ghz(seconds);
  }, "seconds"_a);
  m.def("measure_binary_peak", [](double seconds) {
    nb::gil_scoped_release release;
    return measure_binary_peak(seconds);
  }, "seconds"_a);
  m.def("measure_binary_peak_threads", [](double seconds, int threads) {
    nb::gil_scoped_release release;
    return measure_binary_peak_threads(seconds, threads);
  }, "seconds"_a, "threads"_a);

  m.def("active_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name)); }, "name"_a);
  m.def("available_isas", [] {
    std::vector<std::string> names;
    for (Isa isa : kAllIsas) {
      if (isa_available(isa)) names.push_back(isa_name(isa));
    }
    return names;
  });
  m.def("list_ukernels", [](const std::string& op) {
    nb::list out;
    for (const auto& k : list_ukernels(op)) {
      nb::dict d;
      d["op"] = k.op;
      d["isa"] = std::string(isa_name(k.isa));
      d["name"] = k.name;
      d["available"] = isa_available(k.isa);
      out.append(d);
    }
    return out;
  }, "op"_a = "");
  m.def("selected_ukernel", &selected_ukernel_name, "op"_a);
}
