// Float GEMM of the engine's float convolutions and dense layers, C = A B (+ bias) (ReLU),
// row-major: A [m, k], B [k, n], C [m, n].
//
// The product itself is a real BLAS's sgemm, registered at run time (set_sgemm; the Python
// side hands over OpenBLAS's cblas_sgemm from the scipy-openblas32 wheel, pinned to one
// thread). This file only schedules it: C is cut into row bands handed to the kernels' thread
// pool, and each band, while it is in cache, gets
//   1. its rows of A made by im2col (when `im2col` is set: A is the im2col matrix of that
//      window, so the copy and the product of a band share the cache instead of streaming the
//      whole matrix through memory twice),
//   2. one sgemm call,
//   3. the epilogue y = c + bias[j], then max(y, 0) if relu.
// With fewer rows than bands for every thread (dense layers at batch 1) the split is by
// columns of B and C instead.
#pragma once

#include <cstddef>
#include <cstdint>

#include "float_ops/float_ops.h"

namespace pocketbnn {

// cblas_sgemm's signature (CBLAS enums are ints: row-major 101, no-transpose 111).
using CblasSgemmFn = void (*)(int layout, int trans_a, int trans_b, int m, int n, int k,
                              float alpha, const float* a, int lda, const float* b, int ldb,
                              float beta, float* c, int ldc);

void set_sgemm(CblasSgemmFn fn);
bool has_sgemm();

struct FloatGemmArgs {
  std::size_t m = 0;
  int n = 0, k = 0;
  const float* a = nullptr;  // unused when im2col is set
  const float* b = nullptr;
  const float* bias = nullptr;  // n values, or null
  float* c = nullptr;
  bool relu = false;
  int num_threads = 1;
  // Or A is im2col->output, made band by band from im2col->input (k = kh * kw * channels,
  // m = batch * out_h * out_w); the row range and num_threads fields are ignored.
  const Im2colArgs* im2col = nullptr;
};

// Throws std::runtime_error if no sgemm is registered.
void float_gemm(const FloatGemmArgs& args);

}  // namespace pocketbnn
