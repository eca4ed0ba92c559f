#include "bmaxpool/pool_rows.h"
#include "core/thread_pool.h"

namespace pocketbnn {

void bmaxpool_parallel(const BmaxpoolArgs& a, void (*rows)(const BmaxpoolArgs&, int, int)) {
  parallel_for(a.num_threads, std::size_t(a.batch) * a.out_h, [&](int, std::size_t unit) {
    rows(a, int(unit / a.out_h), int(unit % a.out_h));
  });
}

}  // namespace pocketbnn
