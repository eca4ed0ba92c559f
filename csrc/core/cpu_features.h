// Instruction sets the kernels are written for, and which of them this CPU can run.
#pragma once

#include <string>
#include <vector>

namespace pocketbnn {

// Ordered from the plainest to the richest: a kernel written for Isa k may be used whenever
// the selected ISA is k or richer. kReference selects the test oracles everywhere.
enum class Isa : int { kReference = 0, kPortable = 1, kAvx2 = 2, kAvx512Vpopcnt = 3 };

inline constexpr Isa kAllIsas[] = {Isa::kReference, Isa::kPortable, Isa::kAvx2,
                                   Isa::kAvx512Vpopcnt};

// "reference", "portable", "avx2", "avx512vpopcnt".
const char* isa_name(Isa isa);

// Throws std::invalid_argument naming the valid choices if `name` is not an ISA name.
Isa isa_from_name(const std::string& name);

// True if this CPU and OS support every instruction the ISA's kernels use
// (AVX2: AVX2+FMA+BMI2+POPCNT; AVX-512: F, BW, DQ, VL and VPOPCNTDQ).
bool isa_available(Isa isa);

// The richest available ISA.
Isa best_isa();

}  // namespace pocketbnn
