#include "dispatch/config.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace pocketbnn {
namespace {

constexpr int kUnset = -1;
std::atomic<int> g_forced{kUnset};

Isa checked(Isa isa, const char* source) {
  if (!isa_available(isa)) {
    throw std::runtime_error(std::string(source) + " selects ISA '" + isa_name(isa) +
                             "', which this CPU does not support");
  }
  return isa;
}

Isa default_isa() {
  static const Isa kDefault = [] {
    const char* env = std::getenv("POCKETBNN_ISA");
    if (env == nullptr || *env == '\0') return best_isa();
    return checked(isa_from_name(env), "POCKETBNN_ISA");
  }();
  return kDefault;
}

}  // namespace

Isa active_isa() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  return forced == kUnset ? default_isa() : static_cast<Isa>(forced);
}

void set_isa(Isa isa) { g_forced.store(static_cast<int>(checked(isa, "set_isa")),
                                       std::memory_order_relaxed); }

std::vector<UKernelInfo> list_ukernels(const std::string& op) {
  std::vector<UKernelInfo> all;
#define PBNN_UKERNEL(op_, isa, name, fn) all.push_back({#op_, Isa::isa, #name});
#include "bitpack/ukernels.inc"
#include "bconv2d/ukernels.inc"
#include "bmaxpool/ukernels.inc"
#include "float_ops/ukernels.inc"
#include "bench/ukernels.inc"
#undef PBNN_UKERNEL
  std::vector<UKernelInfo> selected;
  for (auto& k : all) {
    if (op.empty() || k.op == op) selected.push_back(k);
  }
  return selected;
}

std::string selected_ukernel_name(const std::string& op) {
  const Isa isa = active_isa();
  const UKernelInfo* best = nullptr;
  const auto kernels = list_ukernels(op);
  for (const auto& k : kernels) {
    if (preferred(k.isa, best ? &best->isa : nullptr, isa)) best = &k;
  }
  if (best == nullptr) throw std::invalid_argument("no micro-kernels are listed for op '" + op + "'");
  return best->name;
}

}  // namespace pocketbnn
