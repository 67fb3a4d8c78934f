#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace tokenlora {
namespace {

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 2, 7, 64, 1000, 4097}) {
      for (size_t grain : {1, 3, 16, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.ParallelFor(n, grain, [&](size_t b, size_t e, int t) {
          ASSERT_GE(t, 0);
          ASSERT_LT(t, threads);
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << grain << " " << i;
      }
    }
  }
}

TEST(ThreadPool, ManyBackToBackJobs) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int job = 0; job < 20000; ++job) {
    pool.ParallelFor(8, 1, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) sum.fetch_add(static_cast<long>(i));
    });
  }
  EXPECT_EQ(sum.load(), 20000L * 28);
}

TEST(ThreadPool, RangesRunEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 5, 8}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 2, 7, 64, 1000, 4097}) {
      for (size_t chunk : {1, 3, 16, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.ParallelForRanges(n, chunk, [&](size_t b, size_t e, int t) {
          ASSERT_GE(t, 0);
          ASSERT_LT(t, threads);
          ASSERT_LT(b, e);
          // One call covers everything when it runs serially.
          if (threads > 1 && n > chunk) {
            ASSERT_LE(e - b, chunk);
          }
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << chunk << " " << i;
      }
    }
  }
}

// A thread that stalls on its first chunk has the back of its range taken
// by the others; chunks are walked front to back within each range. The
// stall lasts until the others have done their own ranges and a third of
// the stalled one (not a fixed sleep, which a loaded machine under ctest -j
// can outlast), which they can only do by stealing; a bounded wait keeps a
// pool that never steals from hanging the test (it then fails the count).
TEST(ThreadPool, RangesStealFromAStalledThread) {
  for (int threads : {2, 4}) {
    ThreadPool pool(threads);
    const size_t n = 400;
    std::vector<std::atomic<int>> owner(n);
    const size_t first_range = n / static_cast<size_t>(threads);
    std::atomic<size_t> done{0};
    pool.ParallelForRanges(n, 2, [&](size_t b, size_t e, int t) {
      // Thread 0 owns [0, first_range) and stalls in its first chunk. (On an
      // oversubscribed machine thread 0 may not run before the others have
      // stolen its whole range, chunk 0 included: then nothing stalls.)
      if (b == 0 && t == 0) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (done.load() < n - first_range + first_range / 3 && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::yield();
        }
      }
      for (size_t i = b; i < e; ++i) owner[i].store(t + 1);
      done.fetch_add(e - b);
    });
    int stolen = 0;
    for (size_t i = 0; i < first_range; ++i) {
      ASSERT_NE(owner[i].load(), 0) << i;
      stolen += owner[i].load() != 1;  // done by a thread other than 0
    }
    EXPECT_GT(stolen, static_cast<int>(first_range) / 4) << threads;
  }
}

TEST(ThreadPool, ManyBackToBackJobsOfBothKinds) {
  ThreadPool pool(3);
  std::atomic<long> sum{0};
  for (int job = 0; job < 20000; ++job) {
    auto add = [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) sum.fetch_add(static_cast<long>(i));
    };
    if (job % 2) {
      pool.ParallelForRanges(9, 1, add);
    } else {
      pool.ParallelFor(9, 1, add);
    }
  }
  EXPECT_EQ(sum.load(), 20000L * 36);
}

TEST(ThreadPool, PhysicalCoresIsPositive) { EXPECT_GE(ThreadPool::PhysicalCores(), 1); }

}  // namespace
}  // namespace tokenlora
