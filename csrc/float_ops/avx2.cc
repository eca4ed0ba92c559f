// Float ops compiled for avx2 (see kernels.inc).
#define PBNN_FLOAT_NS avx2
#include "float_ops/kernels.inc"
