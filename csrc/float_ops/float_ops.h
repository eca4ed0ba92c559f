// Float ops of the engine on NHWC float32 (the float layers around the binary kernels):
// direct and depthwise convolution, max / average pooling, im2col for float GEMM, per-channel
// affine with a two-slope activation, element-wise add, channel maps (PokeBNN's ReshapeAdd).
// Plain loops over the channel axis, written so the compiler vectorizes them (the direct
// convolution's register tile in GCC vector types); compiled once per ISA (kernels.inc) and
// picked by the dispatch table like the binary kernels. Float GEMM itself is a BLAS's (gemm.h).
//
// Geometry (all ops with a window): output pixel (oy, ox) reads input rows
// iy = oy * stride_h - pad_top + ky * dilation_h and columns ix likewise; taps outside the image
// are zero (convolution, im2col, average pooling) or skipped (max pooling). Bottom/right padding
// is implied by out_h / out_w.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pocketbnn {

struct FloatWindow {
  int batch = 0, in_h = 0, in_w = 0, channels = 0;
  int out_h = 0, out_w = 0;
  int kh = 1, kw = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0;
};

// What every float convolution takes: its window, buffers, a bias per output channel (or null:
// 0) and a fused ReLU.
struct FloatConvArgs {
  FloatWindow g;
  const float* input = nullptr;
  const float* weights = nullptr;
  const float* bias = nullptr;
  float* output = nullptr;
  bool relu = false;
  int num_threads = 1;
};

// With M = multiplier output channels per input channel (g.channels inputs, C = g.channels * M
// outputs), for o < C:
//   y[n,oy,ox,o] = bias[o] + sum_{ky,kx} x[n,iy,ix,o / M] * w[ky,kx,o], then max(y, 0) if relu.
// weights: [kh, kw, C]; bias: C values, or null (0).
struct DepthwiseArgs : FloatConvArgs {
  int multiplier = 1;
};
using FloatDepthwiseFn = void (*)(const DepthwiseArgs&);

// Direct convolution, for short reductions K = kh * kw * channels (a stem on RGB input, a 1x1
// conv of few channels), where im2col + sgemm spends more on packing than on multiply-adds:
//   y[n,oy,ox,o] = bias[o] + sum_{ky,kx,c} x[n,iy,ix,c] * w[ky,kx,c,o], then max(y, 0) if relu,
// for o < out_channels. weights: packed in blocks of kDirectBlock output channels,
// [ceil(out_channels / kDirectBlock)][K][kDirectBlock], channels past out_channels zero
// (k = (ky * kw + kx) * channels + c). bias: out_channels values, or null (0).
constexpr int kDirectBlock = 16;
struct DirectConvArgs : FloatConvArgs {
  int out_channels = 0;
};
using FloatDirectConvFn = void (*)(const DirectConvArgs&);

// kMax: max over taps inside the image (a window holds at least one);
// kAvgIncludePad: sum / (kh * kw); kAvgExcludePad: sum / (taps inside the image).
enum class PoolMode : int { kMax = 0, kAvgIncludePad = 1, kAvgExcludePad = 2 };
struct FloatPoolArgs {
  FloatWindow g;
  PoolMode mode = PoolMode::kMax;
  const float* input = nullptr;
  float* output = nullptr;
  int num_threads = 1;
};
using FloatPoolFn = void (*)(const FloatPoolArgs&);

// col[n,oy,ox, (ky*kw + kx)*channels + c] = x[n,iy,ix,c] (0 outside the image): the im2col
// matrix whose product with HWIO weights reshaped to [kh*kw*channels, out] is the convolution.
// Only output rows r = n * out_h + oy in [row_begin, row_end) are written (all by default);
// output points at the whole matrix, row 0.
struct Im2colArgs {
  FloatWindow g;
  const float* input = nullptr;
  float* output = nullptr;
  std::size_t row_begin = 0, row_end = SIZE_MAX;
  int num_threads = 1;
};
using FloatIm2colFn = void (*)(const Im2colArgs&);

// One per-channel stage, for channel c:
//   z = x * scale[c] + shift[c];  z = (z >= 0 ? pos[c] : neg[c]) * z + post[c];
//   y = min(max(z, lo), hi).
// Covers BN scale/shift, ReLU, clamps, PReLU, DPReLU, RPReLU and an SE gate's product (scale =
// the image's gate). All five vectors are required.
struct ChannelStage {
  const float *scale = nullptr, *shift = nullptr, *pos = nullptr, *neg = nullptr, *post = nullptr;
  float lo = 0, hi = 0;
};

// Over rows x channels: x = input (+ addend, same layout, if not null), then one or two stages
// in order (a PReLU then the SE gate that multiplies its output: one pass over memory).
// Row r of input and output starts r * row_stride floats after their first (row_stride 0:
// channels; more: a block of columns of a wider array, e.g. what one unit of a binary conv
// wrote), and of addend r * addend_stride floats after its first (0: as the others).
// output may be input or addend (in place); no other overlap.
struct ChannelAffineArgs {
  static constexpr int kMaxStages = 2;
  const float* input = nullptr;
  const float* addend = nullptr;
  float* output = nullptr;
  std::size_t rows = 0;
  int channels = 0;
  std::size_t row_stride = 0, addend_stride = 0;
  ChannelStage stages[kMaxStages];
  int num_stages = 1;
  int num_threads = 1;
};
using FloatChannelAffineFn = void (*)(const ChannelAffineArgs&);

// out[i] = a[i] + b[i] (then max(., 0) if relu) for i < size. out may alias a or b.
struct FloatAddArgs {
  const float* a = nullptr;
  const float* b = nullptr;
  float* output = nullptr;
  std::size_t size = 0;
  bool relu = false;
  int num_threads = 1;
};
using FloatAddFn = void (*)(const FloatAddArgs&);

// PokeBNN's ReshapeAdd shortcut, over rows (pixels) of in_channels -> out_channels:
//   kTile:    out[j] = in[j mod in_channels]
//   kZeroPad: out[j] = in[j] for j < in_channels, else 0           (out_channels >= in_channels)
//   kAvg:     out[j] = (in[j k] + ... + in[j k + k - 1]) / k,  k = floor(in_channels / out_channels)
//                                                                  (out_channels <= in_channels)
// then out[j] += residual[j] when residual is given (a ReshapeAdd's add; residual laid out as
// output, which it may be). The input overlaps neither.
enum class ChannelMap : int { kTile = 0, kZeroPad = 1, kAvg = 2 };
struct ChannelMapArgs {
  const float* input = nullptr;
  float* output = nullptr;
  std::size_t rows = 0;
  int in_channels = 0, out_channels = 0;
  ChannelMap map = ChannelMap::kTile;
  const float* residual = nullptr;
  int num_threads = 1;
};
using FloatChannelMapFn = void (*)(const ChannelMapArgs&);

// A product of few rows with int8 weight codes, for the int8 / int4 layers of a model at
// batch 1 (PokeBNN's SE convs and classifier), where streaming float32 weights is the cost:
//   y[r, o] = scale[o] * sum_i x[r, i] * q[i, o] + bias[o]   (then max(y, 0) if relu)
// for r < rows, o < n, reading a quarter of the bytes. codes: q packed in blocks of
// kGemvBlock output columns, [ceil(n / kGemvBlock)][k][kGemvBlock], columns past n zero.
// bias: n values, or null (0).
constexpr int kGemvBlock = 32;
struct GemvI8Args {
  const float* x = nullptr;  // [rows][k]
  std::size_t rows = 0, k = 0, n = 0;
  const std::int8_t* codes = nullptr;
  const float* scale = nullptr;
  const float* bias = nullptr;
  float* output = nullptr;  // [rows][n]
  bool relu = false;
  int num_threads = 1;
};
using FloatGemvI8Fn = void (*)(const GemvI8Args&);

#define PBNN_FLOAT_OPS_DECLARE                               \
  void float_gemv_i8(const GemvI8Args& args);                \
  void float_depthwise2d(const DepthwiseArgs& args);         \
  void float_direct_conv2d(const DirectConvArgs& args);      \
  void float_pool2d(const FloatPoolArgs& args);              \
  void float_im2col(const Im2colArgs& args);                 \
  void float_channel_affine(const ChannelAffineArgs& args);  \
  void float_add(const FloatAddArgs& args);                 \
  void float_channel_map(const ChannelMapArgs& args);

namespace portable {
PBNN_FLOAT_OPS_DECLARE
}
namespace avx2 {
PBNN_FLOAT_OPS_DECLARE
}
namespace avx512_vpopcnt {
PBNN_FLOAT_OPS_DECLARE
}
#undef PBNN_FLOAT_OPS_DECLARE

}  // namespace pocketbnn
