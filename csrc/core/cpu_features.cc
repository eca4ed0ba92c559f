#include "core/cpu_features.h"

#include <stdexcept>

namespace pocketbnn {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kReference: return "reference";
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vpopcnt: return "avx512vpopcnt";
  }
  return "unknown";
}

Isa isa_from_name(const std::string& name) {
  for (Isa isa : kAllIsas) {
    if (name == isa_name(isa)) return isa;
  }
  throw std::invalid_argument("unknown ISA '" + name +
                              "'; expected one of: reference, portable, avx2, avx512vpopcnt");
}

bool isa_available(Isa isa) {
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV).
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kReference:
    case Isa::kPortable:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
    case Isa::kAvx512Vpopcnt:
      return isa_available(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
  }
  return false;
}

Isa best_isa() {
  Isa best = Isa::kPortable;
  for (Isa isa : kAllIsas) {
    if (isa_available(isa)) best = isa;
  }
  return best;
}

}  // namespace pocketbnn
