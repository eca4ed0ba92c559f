#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pocketbnn {
namespace {

// Busy-wait step. A PAUSE keeps the core (yielding would hand it to any other runnable
// process on a shared machine, for a whole time slice); elsewhere, yield.
inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// How long an idle worker polls for the next job before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(200);

// One parallel_for call. Every unit is claimed exactly once and then either run or, after an
// error, skipped; the caller returns when all are accounted for in `done`. Thread i owns the
// i-th contiguous share of the units and claims from it first, so a layer run again (or the
// next layer, over the same pixels) gives each thread the same output rows as last time, and
// they stay in its core's cache instead of moving between cores (with one shared counter,
// which thread got which unit changed every call: on the 2-core VM that cost a third of the
// second thread's gain). A thread whose share is done claims from the other shares, so a core
// slowed by other work takes fewer units, and the caller never waits for a worker that has
// not claimed anything: on an oversubscribed machine a descheduled worker would otherwise
// stall every call by a whole time slice. A late worker still holds the Job, finds nothing
// left to claim, and leaves.
struct Job {
  struct alignas(64) Share {
    std::atomic<std::size_t> next{0};
    std::size_t end = 0;
  };

  const UnitFn* fn = nullptr;
  std::size_t units = 0;
  int helpers = 0;  // workers 1..helpers may join
  std::unique_ptr<Share[]> shares;  // helpers + 1 of them
  std::atomic<std::size_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;

  Job(const UnitFn& f, std::size_t n, int threads)
      : fn(&f), units(n), helpers(threads - 1), shares(new Share[std::size_t(threads)]) {
    for (int i = 0; i < threads; ++i) {
      shares[std::size_t(i)].next.store(n * std::size_t(i) / std::size_t(threads));
      shares[std::size_t(i)].end = n * std::size_t(i + 1) / std::size_t(threads);
    }
  }

  void work(int thread) {
    const int threads = helpers + 1;
    for (int k = 0; k < threads; ++k) {
      Share& share = shares[std::size_t((thread + k) % threads)];
      for (std::size_t u = share.next.fetch_add(1); u < share.end; u = share.next.fetch_add(1)) {
        if (!failed.load(std::memory_order_relaxed)) {
          try {
            (*fn)(thread, u);
          } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            failed.store(true);
          }
        }
        done.fetch_add(1, std::memory_order_release);
      }
    }
  }
};

class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int threads, std::size_t units, const UnitFn& fn) {
    std::lock_guard<std::mutex> job_lock(job_mutex_);  // one job at a time
    grow(threads - 1);
    auto job = std::make_shared<Job>(fn, units, threads);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    job->work(0);
    while (job->done.load(std::memory_order_acquire) != units) relax();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      const int index = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back([this, index] { loop(index); });
    }
  }

  void loop(int index) {
    unsigned seen = 0;
    for (;;) {
      const auto deadline = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load() == seen && std::chrono::steady_clock::now() < deadline) relax();
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        if (stop_) return;
        seen = generation_.load();
        job = job_;  // the current job, or none if it already finished
      }
      if (job && index <= job->helpers) job->work(index);
    }
  }

  std::mutex job_mutex_, mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<unsigned> generation_{0};
  std::shared_ptr<Job> job_;
  bool stop_ = false;
};

}  // namespace

void parallel_for(int threads, std::size_t units, const UnitFn& fn) {
  if (threads > static_cast<int>(units)) threads = static_cast<int>(units);
  if (threads <= 1) {
    for (std::size_t u = 0; u < units; ++u) fn(0, u);
    return;
  }
  Pool::instance().run(threads, units, fn);
}

void parallel_rows(int threads, std::size_t rows, std::size_t work_per_row,
                   const std::function<void(std::size_t, std::size_t)>& body) {
  if (threads <= 1 || rows < 2 || rows * work_per_row < kMinParallelWork) {
    body(0, rows);
    return;
  }
  const std::size_t blocks = std::min<std::size_t>(rows, std::size_t(threads) * 4);
  parallel_for(threads, blocks, [&](int, std::size_t b) {
    body(rows * b / blocks, rows * (b + 1) / blocks);
  });
}

}  // namespace pocketbnn
