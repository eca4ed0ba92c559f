#include "float_ops/gemm.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "core/thread_pool.h"
#include "dispatch/config.h"

namespace pocketbnn {
namespace {

struct Blas {
  CblasSgemmFn sgemm;
  CblasSgemvFn sgemv;
};
std::atomic<const Blas*> g_blas{nullptr};

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
// Products of up to this many rows (without im2col) run as one sgemv per row.
constexpr std::size_t kGemvRows = 3;

// A band's A and C rows should stay in L2 between its im2col, product and epilogue.
constexpr std::size_t kBandBytes = 256 * 1024;
// Fewer rows than this per thread: split by columns instead (blocks of 16).
constexpr std::size_t kMinRowsPerThread = 16;
constexpr int kColumnBlock = 16;

void epilogue(const FloatGemmArgs& g, std::size_t r0, std::size_t r1, int j0, int j1) {
  if (g.bias == nullptr && !g.relu) return;
  const float lo = g.relu ? 0.0f : -__builtin_inff();
  for (std::size_t r = r0; r < r1; ++r) {
    float* __restrict row = g.c + r * std::size_t(g.n);
    if (g.bias != nullptr) {
      for (int j = j0; j < j1; ++j) row[j] = std::max(row[j] + g.bias[j], lo);
    } else {
      for (int j = j0; j < j1; ++j) row[j] = std::max(row[j], lo);
    }
  }
}

// C rows [r0, r1), columns [j0, j1).
void product(const FloatGemmArgs& g, const Blas& blas, std::size_t r0, std::size_t r1, int j0, int j1) {
  const float* a = g.im2col != nullptr ? g.im2col->output : g.a;
  if (g.im2col == nullptr && r1 - r0 <= kGemvRows) {
    // Row r of C, columns [j0, j1): B[:, j0:j1]^T a_r, B's columns read as rows of its transpose.
    for (std::size_t r = r0; r < r1; ++r) {
      blas.sgemv(kRowMajor, kTrans, g.k, j1 - j0, 1.0f, g.b + j0, g.n, a + r * std::size_t(g.k), 1, 0.0f,
                 g.c + r * std::size_t(g.n) + j0, 1);
    }
  } else {
    blas.sgemm(kRowMajor, kNoTrans, kNoTrans, int(r1 - r0), j1 - j0, g.k, 1.0f, a + r0 * std::size_t(g.k), g.k,
               g.b + j0, g.n, 0.0f, g.c + r0 * std::size_t(g.n) + j0, g.n);
  }
  epilogue(g, r0, r1, j0, j1);
}

}  // namespace

void set_blas(CblasSgemmFn sgemm, CblasSgemvFn sgemv) {
  // Registered once per process in practice; a table replaced later is kept (a GEMM running on
  // another thread may still hold it).
  g_blas.store(new Blas{sgemm, sgemv});
}

bool has_blas() { return g_blas.load() != nullptr; }

void float_gemm(const FloatGemmArgs& g) {
  const Blas* blas = g_blas.load();
  if (blas == nullptr) throw std::runtime_error("no BLAS is registered (set_blas)");
  if (g.m == 0 || g.n == 0) return;
  const int threads = std::max(g.num_threads, 1);
  if (g.im2col == nullptr && threads > 1 && g.m < kMinRowsPerThread * threads) {
    const std::size_t blocks = std::size_t(g.n + kColumnBlock - 1) / kColumnBlock;
    const std::size_t units = std::min<std::size_t>(blocks, threads);
    parallel_for(threads, units, [&](int, std::size_t u) {
      const int j0 = int(blocks * u / units) * kColumnBlock;
      const int j1 = std::min(g.n, int(blocks * (u + 1) / units) * kColumnBlock);
      product(g, *blas, 0, g.m, j0, j1);
    });
    return;
  }
  // Row bands; with im2col, whole output image rows of out_w pixels each.
  const std::size_t row_pixels = g.im2col != nullptr ? std::size_t(g.im2col->g.out_w) : 1;
  const std::size_t groups = g.m / row_pixels;
  const std::size_t row_bytes = row_pixels * (std::size_t(g.k) + std::size_t(g.n)) * sizeof(float);
  std::size_t per_band = std::max<std::size_t>(1, kBandBytes / row_bytes);
  if (threads > 1) per_band = std::min(per_band, std::max<std::size_t>(1, groups / threads));
  const std::size_t bands = (groups + per_band - 1) / per_band;
  parallel_for(threads, bands, [&](int, std::size_t band) {
    const std::size_t q0 = band * per_band, q1 = std::min(groups, q0 + per_band);
    if (g.im2col != nullptr) {
      Im2colArgs cols = *g.im2col;
      cols.row_begin = q0;
      cols.row_end = q1;
      cols.num_threads = 1;
      select_ukernel<ops::float_im2col>().fn(cols);
    }
    product(g, *blas, q0 * row_pixels, q1 * row_pixels, 0, g.n);
  });
}

}  // namespace pocketbnn
