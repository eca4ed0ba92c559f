// The dispatch table: for each op, the micro-kernel to run on this CPU.
//
// Every op's ukernels.inc lists its kernels as PBNN_UKERNEL(op, isa, name, function). The
// selected ISA is POCKETBNN_ISA if set, else the richest the CPU has; set_isa() overrides both
// at run time (tests use it to exercise every path on one machine). For an op, the kernel of
// the richest ISA not above the selected one is used. Selecting an ISA the CPU lacks is an
// error, never a silent fallback.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "bconv2d/bconv2d.h"
#include "bench/peak.h"
#include "bitpack/bitpack.h"
#include "bmaxpool/bmaxpool.h"
#include "core/cpu_features.h"
#include "float_ops/float_ops.h"

namespace pocketbnn {

// One tag per op, naming the op's function type.
namespace ops {
struct bitpack_f32 { using Fn = BitpackF32Fn; };
struct bitpack_i8 { using Fn = BitpackI8Fn; };
struct unpack_f32 { using Fn = UnpackF32Fn; };
struct unpack_i8 { using Fn = UnpackI8Fn; };
struct bconv2d { using Fn = Bconv2dFn; };
struct bmaxpool { using Fn = BmaxpoolFn; };
struct float_depthwise2d { using Fn = FloatDepthwiseFn; };
struct float_direct_conv2d { using Fn = FloatDirectConvFn; };
struct float_pool2d { using Fn = FloatPoolFn; };
struct float_im2col { using Fn = FloatIm2colFn; };
struct float_channel_affine { using Fn = FloatChannelAffineFn; };
struct float_add { using Fn = FloatAddFn; };
struct float_channel_map { using Fn = FloatChannelMapFn; };
struct float_gemv_i8 { using Fn = FloatGemvI8Fn; };
struct xor_popcount_loop { using Fn = XorPopcountLoopFn; };
}  // namespace ops


template <class Fn>
struct UKernel {
  Isa isa;
  const char* name;
  Fn fn;
};

struct UKernelInfo {
  std::string op;
  Isa isa;
  std::string name;
};

// The ISA kernels are selected for now. Throws std::runtime_error if POCKETBNN_ISA names an
// unknown ISA or one this CPU lacks.
Isa active_isa();

// Overrides the selection for the whole process; throws if the CPU lacks `isa`.
void set_isa(Isa isa);

// Every listed kernel of every op (or of `op` only, when not empty).
std::vector<UKernelInfo> list_ukernels(const std::string& op = "");

// The selection rule: the richest kernel ISA not above the active one.
inline bool preferred(Isa candidate, const Isa* current_best, Isa active) {
  return candidate <= active && (current_best == nullptr || candidate > *current_best);
}

// Name of the kernel select_ukernel() returns for `op`; throws std::invalid_argument for an
// unknown op.
std::string selected_ukernel_name(const std::string& op);

namespace detail {
template <class Op, class Tag, class Fn>
void add_if(std::vector<UKernel<typename Op::Fn>>& table, Isa isa, const char* name, Fn fn) {
  if constexpr (std::is_same_v<Op, Tag>) table.push_back({isa, name, fn});
}

template <class Op>
const std::vector<UKernel<typename Op::Fn>>& table() {
  static const std::vector<UKernel<typename Op::Fn>> kTable = [] {
    std::vector<UKernel<typename Op::Fn>> t;
#define PBNN_UKERNEL(op, isa, name, fn) add_if<Op, ops::op>(t, Isa::isa, #name, &fn);
#include "bitpack/ukernels.inc"
#include "bconv2d/ukernels.inc"
#include "bmaxpool/ukernels.inc"
#include "float_ops/ukernels.inc"
#include "bench/ukernels.inc"
#undef PBNN_UKERNEL
    return t;
  }();
  return kTable;
}
}  // namespace detail

// The kernel for `Op` under the active ISA.
template <class Op>
const UKernel<typename Op::Fn>& select_ukernel() {
  const Isa isa = active_isa();
  const UKernel<typename Op::Fn>* best = nullptr;
  for (const auto& k : detail::table<Op>()) {
    if (preferred(k.isa, best ? &best->isa : nullptr, isa)) best = &k;
  }
  return *best;  // every op lists a kReference kernel, so best is never null
}

}  // namespace pocketbnn
