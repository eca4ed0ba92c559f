// Float GEMM of the engine's float convolutions and dense layers, C = A B (+ bias) (ReLU),
// row-major: A [m, k], B [k, n], C [m, n].
//
// The product itself is a real BLAS's sgemm, registered at run time (set_blas; the Python
// side hands over OpenBLAS's cblas_sgemm and cblas_sgemv from the scipy-openblas32 wheel,
// pinned to one thread). This file only schedules it: C is cut into row bands handed to the
// kernels' thread pool, and each band, while it is in cache, gets
//   1. its rows of A made by im2col (when `im2col` is set: A is the im2col matrix of that
//      window, so the copy and the product of a band share the cache instead of streaming the
//      whole matrix through memory twice),
//   2. one sgemm call,
//   3. the epilogue y = c + bias[j], then max(y, 0) if relu.
// With fewer rows than bands for every thread (dense layers at batch 1) the split is by
// columns of B and C instead, and a product of up to 3 rows is one sgemv per row (c = B^T a):
// sgemm packs all of B first, a whole extra pass over it, which made a batch-1 dense layer
// 3 to 4 times slower than sgemv on the Zen 3 VM.
#pragma once

#include <cstddef>
#include <cstdint>

#include "float_ops/float_ops.h"

namespace pocketbnn {

// cblas_sgemm's signature (CBLAS enums are ints: row-major 101, no-transpose 111).
using CblasSgemmFn = void (*)(int layout, int trans_a, int trans_b, int m, int n, int k,
                              float alpha, const float* a, int lda, const float* b, int ldb,
                              float beta, float* c, int ldc);

// cblas_sgemv's signature (transpose 112).
using CblasSgemvFn = void (*)(int layout, int trans, int m, int n, float alpha, const float* a,
                              int lda, const float* x, int incx, float beta, float* y, int incy);

void set_blas(CblasSgemmFn sgemm, CblasSgemvFn sgemv);
bool has_blas();

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

// Throws std::runtime_error if no BLAS is registered.
void float_gemm(const FloatGemmArgs& args);

}  // namespace pocketbnn
