// Binary max-pool (the LceBMaxPool2d role) on bit-packed NHWC data.
//
// With bit 1 = -1, the max of +-1 values is -1 only if every value is -1, so the max over a
// window is the bitwise AND of the window's words: output word =
//   AND over valid (ky, kx) of input[n][oy * stride_h - pad_top + ky][ox * stride_w - pad_left + kx].
// Taps outside the image are skipped (as max-pool pads with -infinity), and SAME padding never
// leaves a window empty. Channel padding bits are 0 in every input word, so they stay 0.
// sign(maxpool(x)) == maxpool(sign(x)) because sign is monotone, so this is exact.
#pragma once

#include "core/types.h"

namespace pocketbnn {

struct BmaxpoolArgs {
  const Word* input = nullptr;
  int batch = 0, in_h = 0, in_w = 0, words = 0;
  int kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0;
  int out_h = 0, out_w = 0;
  Word* output = nullptr;
  int num_threads = 1;
};

using BmaxpoolFn = void (*)(const BmaxpoolArgs& args);

namespace reference {
void bmaxpool(const BmaxpoolArgs& args);
}
namespace portable {
void bmaxpool(const BmaxpoolArgs& args);
}
namespace avx512_vpopcnt {
void bmaxpool(const BmaxpoolArgs& args);
}

}  // namespace pocketbnn
