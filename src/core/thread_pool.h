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

  // Number of physical cores (hyper-threads sharing a core count once).
  static int PhysicalCores();

 private:
  void WorkerLoop(int thread_index);
  void RunChunks(int thread_index);

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
};

}  // namespace tokenlora
