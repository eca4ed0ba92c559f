// Float ops compiled for avx512_vpopcnt (see kernels.inc).
#define PBNN_FLOAT_NS avx512_vpopcnt
#include "float_ops/kernels.inc"
