// Float ops compiled for portable (see kernels.inc).
#define PBNN_FLOAT_NS portable
#include "float_ops/kernels.inc"
