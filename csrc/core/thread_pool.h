// A small fork-join pool for the kernels: parallel_for(threads, units, fn) runs fn(thread, unit)
// for every unit in [0, units) on up to `threads` threads, the caller being thread 0.
//
// Thread i first claims, one at a time, the units of its own contiguous share (the i-th of
// `threads`), so repeated calls give each thread the same units and their data stays in its
// core's cache; then it claims from the other shares, so a core slowed by other work simply
// takes fewer units, and the caller never waits for a worker that has not started a unit.
// Workers spin for a short while after each job before sleeping on a condition
// variable: waking a sleeping thread costs tens of microseconds, as long as a whole small
// layer, and back-to-back layers are the common case.
#pragma once

#include <cstddef>
#include <functional>

namespace pocketbnn {

using UnitFn = std::function<void(int thread, std::size_t unit)>;

// Runs fn over all units and returns when every call has returned. threads <= 1 (or a single
// unit) runs inline on the caller. The first exception thrown by fn is rethrown here.
void parallel_for(int threads, std::size_t units, const UnitFn& fn);

// Below this many values (rows * work_per_row) parallel_rows runs on the caller: waking
// workers costs more.
constexpr std::size_t kMinParallelWork = std::size_t(1) << 15;

// Runs body(r0, r1) over [0, rows) cut into up to 4 contiguous blocks per thread.
void parallel_rows(int threads, std::size_t rows, std::size_t work_per_row,
                   const std::function<void(std::size_t, std::size_t)>& body);

}  // namespace pocketbnn
