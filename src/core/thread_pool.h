// A fixed set of worker threads that run a ParallelFor together with the
// calling thread. Passed explicitly through the engine (no global pool).
//
// Decode runs ~200 small matmuls per token (15-25 µs each), so waking a
// sleeping thread through a condition variable (~40 µs) would cost more than
// the work. Workers therefore spin for a short while after each job before
// they go to sleep, and the caller spins while waiting for stragglers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tokenlora {

class ThreadPool {
 public:
  // `n_threads` counts the calling thread: 1 means no worker threads.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(begin, end, thread_index) over [0, n) split into contiguous
  // chunks of at least `grain` items. Blocks until all chunks are done.
  // Chunks are claimed dynamically so slow threads do not stall the rest.
  // Not reentrant: call it from one thread at a time.
  void ParallelFor(size_t n, size_t grain,
                   const std::function<void(size_t, size_t, int)>& fn);

  // Runs fn over [0, n) as one contiguous range per thread, each walked
  // front to back in chunks of `chunk` items: one long forward stream per
  // thread, which the hardware prefetchers need when the items are weights
  // read from DRAM (decode). A thread that finishes its range takes the back
  // half of the largest range left and walks that, so a thread the machine
  // slows down (or wakes late) does not hold up the others. Same blocking
  // and reentrancy rules as ParallelFor; n must be below 2^32.
  void ParallelForRanges(size_t n, size_t chunk,
                         const std::function<void(size_t, size_t, int)>& fn);

  // Number of physical cores (hyper-threads sharing a core count once).
  static int PhysicalCores();

 private:
  void WorkerLoop(int thread_index);
  void RunChunks(int thread_index);
  void RunRanges(int thread_index);
  void Publish(size_t n, size_t chunk, bool ranges,
               const std::function<void(size_t, size_t, int)>& fn);

  // One thread's remaining range of a ParallelForRanges job, packed as
  // front << 32 | back so the owner (taking from the front) and a thief
  // (taking from the back) agree through one compare-and-swap. One cache
  // line each: the owner updates it every chunk.
  struct alignas(64) Range {
    std::atomic<uint64_t> front_back{0};
  };

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<bool> stop_{false};

  // The job of the current generation (written before generation_ is bumped).
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  size_t job_chunk_ = 1;
  std::atomic<size_t> next_chunk_{0};
  bool job_ranges_ = false;
  std::unique_ptr<Range[]> ranges_;
};

}  // namespace tokenlora
