// Microbenchmarks of CausalAttention over the KV cache, per cache type:
// decoding one token (the split-K decode path) and a prompt block of 64
// tokens (the blocked path), at several context lengths, SmolLM2-135M's
// shape (9 query heads, 3 KV heads, head_dim 64). Reports FLOP/s, the cache
// bytes per second (each key and value counted once per call: what decoding
// must read) and the SIMD target.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"

namespace tokenlora::kernels {
namespace {

constexpr int kHeads = 9, kKvHeads = 3, kHeadDim = 64;

// args: threads, context (cached positions), new tokens, cache type (0 f32, 1 f16)
void BM_Attention(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const int n_past = static_cast<int>(state.range(1));
  const int n_tok = static_cast<int>(state.range(2));
  const DType type = state.range(3) == 1 ? DType::kF16 : DType::kF32;
  KvLayer kv;
  kv.type = type;
  kv.capacity = (n_past + n_tok + kKvCapacityStep - 1) / kKvCapacityStep * kKvCapacityStep;
  kv.n_kv_heads = kKvHeads;
  kv.head_dim = kHeadDim;
  const size_t cache_bytes = static_cast<size_t>(kv.capacity) * kKvHeads * kHeadDim * kv.ElementBytes();
  std::vector<uint8_t> keys(cache_bytes), values(cache_bytes);
  kv.keys = keys.data();
  kv.values = values.data();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> k(kKvHeads * kHeadDim), v(kKvHeads * kHeadDim);
  for (int pos = 0; pos < n_past + n_tok; ++pos) {
    for (float& x : k) x = dist(rng);
    for (float& x : v) x = dist(rng);
    StoreKv(kv, pos, k.data(), v.data());
  }
  std::vector<float> q(static_cast<size_t>(n_tok) * kHeads * kHeadDim), out(q.size());
  for (float& x : q) x = dist(rng);
  ThreadPool pool(threads);
  const AttentionShape shape{n_tok, n_past, kHeads, kKvHeads, kHeadDim};
  for (auto _ : state) {
    CausalAttention(q.data(), kv, out.data(), shape, pool);
    benchmark::DoNotOptimize(out.data());
  }
  const double read = 2.0 * (n_past + n_tok) * kKvHeads * kHeadDim * static_cast<double>(kv.ElementBytes());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(read));
  // Scores and weighted values: 2 multiply-adds per (query head, key, dim).
  double keys_attended = 0;
  for (int t = 0; t < n_tok; ++t) keys_attended += n_past + t + 1;
  state.counters["FLOP/s"] = benchmark::Counter(4.0 * kHeads * kHeadDim * keys_attended,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(SimdTargetName());
}

[[maybe_unused]] const bool kRegistered = [] {
  for (const int type : {0, 1}) {
    for (const int threads : {1, 2}) {
      for (const int ctx : {256, 1024, 4096}) {
        for (const int n_tok : {1, 64}) {
          const std::string name = std::string("Attention/") + (type == 1 ? "f16" : "f32") + "/threads:" +
                                   std::to_string(threads) + "/ctx:" + std::to_string(ctx) + "/new:" +
                                   std::to_string(n_tok);
          benchmark::RegisterBenchmark(name.c_str(), BM_Attention)
              ->Args({threads, ctx, n_tok, type})
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace tokenlora::kernels
