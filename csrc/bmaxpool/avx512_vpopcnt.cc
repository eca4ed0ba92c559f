// AVX-512 max-pool: bmaxpool_rows vectorized by the compiler with AVX-512 flags.
#include "bmaxpool/pool_rows.h"

namespace pocketbnn::avx512_vpopcnt {
namespace {
struct Tag {};
}  // namespace

void bmaxpool(const BmaxpoolArgs& args) { bmaxpool_parallel(args, &bmaxpool_rows<Tag>); }

}  // namespace pocketbnn::avx512_vpopcnt
