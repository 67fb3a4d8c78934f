#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "core/error.h"

namespace tokenlora {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// How long a worker keeps polling for the next job before sleeping.
constexpr auto kSpinTime = std::chrono::microseconds(50);

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), ranges_(new Range[static_cast<size_t>(n_threads_)]) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunChunks(int thread_index) {
  const size_t n = job_n_;
  const size_t chunk = job_chunk_;
  for (;;) {
    const size_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    const size_t begin = c * chunk;
    if (begin >= n) break;
    (*job_)(begin, std::min(n, begin + chunk), thread_index);
  }
}

namespace {
constexpr uint64_t kLow32 = 0xFFFFFFFFull;
uint64_t Pack(uint64_t front, uint64_t back) { return front << 32 | back; }
}  // namespace

void ThreadPool::RunRanges(int thread_index) {
  const size_t chunk = job_chunk_;
  Range& own = ranges_[static_cast<size_t>(thread_index)];
  for (;;) {
    // Walk the own range from its front.
    uint64_t v = own.front_back.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t front = v >> 32, back = v & kLow32;
      if (front >= back) break;
      const uint64_t stop = std::min<uint64_t>(back, front + chunk);
      if (own.front_back.compare_exchange_weak(v, Pack(stop, back), std::memory_order_acq_rel)) {
        (*job_)(front, stop, thread_index);
        v = own.front_back.load(std::memory_order_acquire);
      }
    }
    // Own range done: take the back half of the largest range left.
    bool stole = false;
    while (!stole) {
      int victim = -1;
      uint64_t most = 0;
      for (int t = 0; t < n_threads_; ++t) {
        const uint64_t w = ranges_[static_cast<size_t>(t)].front_back.load(std::memory_order_acquire);
        const uint64_t left = (w >> 32) < (w & kLow32) ? (w & kLow32) - (w >> 32) : 0;
        if (left > most) most = left, victim = t;
      }
      if (victim < 0) return;  // nothing left anywhere
      Range& r = ranges_[static_cast<size_t>(victim)];
      uint64_t w = r.front_back.load(std::memory_order_acquire);
      const uint64_t front = w >> 32, back = w & kLow32;
      if (front >= back) continue;
      const uint64_t take = (back - front + 1) / 2;
      if (r.front_back.compare_exchange_strong(w, Pack(front, back - take), std::memory_order_acq_rel)) {
        // Own range is empty, and thieves skip empty ranges: a plain store is safe.
        own.front_back.store(Pack(back - take, back), std::memory_order_release);
        stole = true;
      }
    }
  }
}

void ThreadPool::WorkerLoop(int thread_index) {
  uint64_t seen = 0;
  for (;;) {
    // Poll briefly: the next matmul usually follows within microseconds.
    const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    int polls = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      CpuRelax();
      if (++polls % 64 == 0 && std::chrono::steady_clock::now() > spin_until) break;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    if (job_ranges_) {
      RunRanges(thread_index);
    } else {
      RunChunks(thread_index);
    }
    busy_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(size_t n, size_t grain,
                             const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  // About 4 chunks per thread balances load without much claiming overhead.
  const size_t target_chunks = static_cast<size_t>(n_threads_) * 4;
  next_chunk_.store(0, std::memory_order_relaxed);
  Publish(n, std::max(grain, (n + target_chunks - 1) / target_chunks), false, fn);
}

void ThreadPool::ParallelForRanges(size_t n, size_t chunk,
                                   const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  chunk = std::max<size_t>(1, chunk);
  if (n_threads_ == 1 || n <= chunk) {
    fn(0, n, 0);
    return;
  }
  TL_CHECK_MSG(n <= kLow32, "ParallelForRanges: more than 2^32 - 1 items");
  const size_t per_thread = (n + static_cast<size_t>(n_threads_) - 1) / static_cast<size_t>(n_threads_);
  for (size_t t = 0; t < static_cast<size_t>(n_threads_); ++t) {
    const size_t front = std::min(n, t * per_thread), back = std::min(n, front + per_thread);
    ranges_[t].front_back.store(Pack(front, back), std::memory_order_relaxed);
  }
  Publish(n, chunk, true, fn);
}

void ThreadPool::Publish(size_t n, size_t chunk, bool ranges,
                         const std::function<void(size_t, size_t, int)>& fn) {
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = chunk;
  job_ranges_ = ranges;
  busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Bump under the lock so a worker between its check and its wait cannot
    // miss the notification. The bump also publishes the job fields above.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  start_cv_.notify_all();
  if (ranges) {
    RunRanges(0);
  } else {
    RunChunks(0);
  }
  // Every worker must leave this job before the next one may be published.
  // Spin briefly, then yield: on an oversubscribed machine the straggler
  // needs this core to finish.
  for (int polls = 0; busy_workers_.load(std::memory_order_acquire) != 0; ++polls) {
    if (polls < 2000) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

int ThreadPool::PhysicalCores() {
  // Count distinct (physical id, core id) pairs; fall back to hardware_concurrency.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) phys = value();
    if (line.rfind("core id", 0) == 0) cores.insert({phys, value()});
  }
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  if (cores.empty()) return std::max(1, hw);
  return std::max(1, std::min(static_cast<int>(cores.size()), hw > 0 ? hw : 1 << 20));
}

}  // namespace tokenlora
