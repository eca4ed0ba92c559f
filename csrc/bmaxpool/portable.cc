// Portable max-pool: bmaxpool_rows compiled without ISA flags.
#include "bmaxpool/pool_rows.h"

namespace pocketbnn::portable {
namespace {
struct Tag {};
}  // namespace

void bmaxpool(const BmaxpoolArgs& args) { bmaxpool_parallel(args, &bmaxpool_rows<Tag>); }

}  // namespace pocketbnn::portable
