#include "core/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pocketbnn {
namespace {

// How long an idle worker polls for the next job before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(200);

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
    fn_ = &fn;
    units_ = units;
    next_.store(0);
    error_ = nullptr;
    active_.store(threads - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      helpers_ = threads - 1;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    work(0);
    while (active_.load() != 0) std::this_thread::yield();
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      // The generation is read here, before the job that needs the worker is published: a
      // worker that read it on its own might start after that and miss the job.
      const int index = static_cast<int>(workers_.size()) + 1;
      const unsigned seen = generation_.load();
      workers_.emplace_back([this, index, seen] { loop(index, seen); });
    }
  }

  void work(int thread) {
    for (std::size_t u = next_.fetch_add(1); u < units_; u = next_.fetch_add(1)) {
      try {
        (*fn_)(thread, u);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(units_);
      }
    }
  }

  void loop(int index, unsigned seen) {
    for (;;) {
      const auto deadline = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load() == seen && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      if (generation_.load() == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
      }
      // The generation and the job's thread count are read together, so a worker that was
      // descheduled never mistakes a later job for the one it woke for. Workers beyond the
      // job's thread count sit it out.
      bool mine;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
        seen = generation_.load();
        mine = index <= helpers_;
      }
      if (mine) {
        work(index);
        active_.fetch_sub(1);
      }
    }
  }

  std::mutex job_mutex_, mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<unsigned> generation_{0};
  std::atomic<std::size_t> next_{0};
  std::atomic<int> active_{0};
  int helpers_ = 0;
  bool stop_ = false;
  const UnitFn* fn_ = nullptr;
  std::size_t units_ = 0;
  std::exception_ptr error_;
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

}  // namespace pocketbnn
