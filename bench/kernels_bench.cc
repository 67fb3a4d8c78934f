// Kernel microbenchmarks: MatMul per weight dtype at SmolLM2-135M shapes, and
// a DRAM read-bandwidth probe to compare decode-shaped MatMul against.
//
//   MatMul/<dtype>/<n_out>x<n_in>/tok:<n>/<hot|cold>
//     n_tok = 1 (decode): bytes_per_second = weight bytes read per second.
//       "cold" cycles through copies of the weights totalling >= 512 MiB so
//       every call streams them from DRAM, as decoding a whole model does;
//       "hot" reuses one copy (cache-resident when it fits).
//     n_tok = 64 / 512 (prefill): FLOP/s = 2·n_out·n_in·n_tok per second.
//   MatMulInt8/<dtype>/...: the same for the int8-activation path (every
//     Int8Packable type, repacked; label amx, vnni or avx2, the kernel in use
//     for that type — set TOKENLORA_INT8_KERNEL=vnni or =avx2 to measure
//     those on an AMX machine).
//   DramRead/threads:<t>/prefetch:<bytes>: a 1 GiB buffer summed with the
//     SIMD StreamSum kernel split across t threads, prefetching <bytes> ahead
//     (0: hardware prefetch only); bytes_per_second = buffer bytes per second.
// The decode benchmarks prefetch as decoding does (TOKENLORA_PREFETCH or the
// CPU's default, kernels/prefetch.h).
// Every benchmark is labelled with the SIMD target in use; pass
// --benchmark_repetitions=N for medians (speed drifts on shared machines).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/stream_buffer.h"
#include "core/thread_pool.h"
#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"

namespace tokenlora::kernels {
namespace {

ThreadPool& Pool() {
  static ThreadPool pool(ThreadPool::PhysicalCores());
  return pool;
}

constexpr size_t kColdBytes = size_t{512} << 20;

// Fast deterministic bytes (xorshift64*).
struct Bits {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  uint64_t Next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
  }
};

// A random finite half in ±[2^(e_lo−15), 2^(e_hi−14)), built from bits.
uint16_t RandomHalf(uint64_t r, int e_lo, int e_hi) {
  const uint32_t e = static_cast<uint32_t>(e_lo) +
                     static_cast<uint32_t>(r % static_cast<uint64_t>(e_hi - e_lo + 1));
  return static_cast<uint16_t>(((r >> 8) & 0x8000) | (e << 10) | ((r >> 20) & 0x3FF));
}

// Byte offsets of the f16 scale fields in a block of t.
std::vector<size_t> ScaleOffsets(DType t) {
  switch (t) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ5_0: return {0};
    case DType::kQ4_1:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K: return {0, 2};
    case DType::kQ6_K: return {208};
    default: return {};
  }
}

// `copies` back-to-back [n_out, n_in] weights of dtype t, every byte distinct
// random data: repeating one pattern would let the machine serve "cold"
// copies from cache (measured: repeated F32 copies read at 69 GB/s, random
// ones at 13 GB/s). Values are finite and normal-range so no denormal slow
// paths are hit; the kernels' speed does not depend on them otherwise.
// The copies live in a StreamBuffer (huge pages), as a loaded model's do.
struct WeightCopies {
  size_t matrix_bytes = 0;
  int copies = 0;
  std::unique_ptr<StreamBuffer> buffer;

  WeightCopies(DType t, int64_t n_out, int64_t n_in, int n_copies) : copies(n_copies) {
    matrix_bytes = RowBytes(t, n_in) * static_cast<size_t>(n_out);
    const size_t total = matrix_bytes * static_cast<size_t>(copies);
    buffer = std::make_unique<StreamBuffer>(total);
    Bits bits;
    uint8_t* p = buffer->data();
    if (t == DType::kF32) {
      for (size_t i = 0; i + 4 <= total; i += 4) {
        const float v =
            static_cast<float>(static_cast<int32_t>(bits.Next() >> 32)) * 0x1p-36f;  // |v| < 0.03
        std::memcpy(p + i, &v, 4);
      }
    } else if (t == DType::kF16 || t == DType::kBF16) {
      for (size_t i = 0; i + 2 <= total; i += 2) {
        const uint16_t h = RandomHalf(bits.Next(), 8, 14);  // |v| in [2^-7, 1)
        const uint16_t v = t == DType::kF16 ? h : F32ToBF16(F16ToF32(h));
        std::memcpy(p + i, &v, 2);
      }
    } else {
      for (size_t i = 0; i < total; i += 8) {
        const uint64_t r = bits.Next();
        std::memcpy(p + i, &r, std::min<size_t>(8, total - i));
      }
      const size_t block_bytes = static_cast<size_t>(Info(t).block_bytes);
      const std::vector<size_t> offsets = ScaleOffsets(t);
      for (size_t b = 0; b + block_bytes <= total; b += block_bytes) {
        for (size_t off : offsets) {
          const uint16_t h = RandomHalf(bits.Next(), 1, 6);  // |d| in [2^-14, 2^-8)
          std::memcpy(p + b + off, &h, 2);
        }
      }
    }
  }
};

void BM_MatMul(benchmark::State& state, DType t, int64_t n_out, int64_t n_in, int64_t n_tok,
               bool cold) {
  const size_t matrix_bytes = RowBytes(t, n_in) * static_cast<size_t>(n_out);
  const int copies =
      cold ? static_cast<int>(std::max<size_t>(2, (kColdBytes + matrix_bytes - 1) / matrix_bytes))
           : 1;
  WeightCopies w(t, n_out, n_in, copies);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tok * n_in)), y(static_cast<size_t>(n_tok * n_out));
  for (float& v : x) v = dist(rng);
  TensorView view;
  view.name = "bench.weight";
  view.dtype = t;
  view.shape = {n_out, n_in};
  int next = 0;
  for (auto _ : state) {
    view.data = w.buffer->data() + static_cast<size_t>(next) * w.matrix_bytes;
    next = next + 1 == copies ? 0 : next + 1;
    MatMul(view, x.data(), n_tok, y.data(), Pool());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(matrix_bytes));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n_out * n_in * n_tok),
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(SimdTargetName());
}

void BM_MatMulInt8(benchmark::State& state, DType t, int64_t n_out, int64_t n_in, int64_t n_tok,
                   bool cold) {
  const size_t matrix_bytes = RowBytes(t, n_in) * static_cast<size_t>(n_out);
  const int copies =
      cold ? static_cast<int>(std::max<size_t>(2, (kColdBytes + matrix_bytes - 1) / matrix_bytes))
           : 1;
  std::vector<std::unique_ptr<PackedMatrix>> packed;
  TensorView view{"bench.weight", t, {n_out, n_in}, nullptr};
  const size_t packed_bytes = PackedInt8Bytes(view);
  StreamBuffer packed_buffer(packed_bytes * static_cast<size_t>(copies));  // as Model::Load places them
  {
    WeightCopies w(t, n_out, n_in, copies);
    for (int c = 0; c < copies; ++c) {
      view.data = w.buffer->data() + static_cast<size_t>(c) * w.matrix_bytes;
      packed.push_back(PackForInt8Into(view, packed_buffer.data() + static_cast<size_t>(c) * packed_bytes));
    }
  }
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tok * n_in)), y(static_cast<size_t>(n_tok * n_out));
  for (float& v : x) v = dist(rng);
  size_t next = 0;
  for (auto _ : state) {
    MatMulInt8(*packed[next], x.data(), n_tok, y.data(), Pool());
    next = next + 1 == packed.size() ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(matrix_bytes));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n_out * n_in * n_tok),
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(Int8Accelerated() ? Int8KernelNameFor(t, n_tok) : "scalar");
}

void BM_DramRead(benchmark::State& state) {
  const size_t n = (size_t{1} << 30) / sizeof(float);
  StreamBuffer mem(n * sizeof(float));  // huge pages, as the weights
  auto* buf = reinterpret_cast<float*>(mem.data());
  Bits bits;  // distinct data on every page (see WeightCopies)
  for (size_t i = 0; i < n; ++i)
    buf[i] = static_cast<float>(static_cast<int32_t>(bits.Next() >> 32)) * 0x1p-31f;
  const int threads = static_cast<int>(state.range(0));
  const auto prefetch = static_cast<size_t>(state.range(1));
  ThreadPool pool(threads);
  std::vector<float> partial(static_cast<size_t>(threads) * 16);  // one cache line per thread
  constexpr size_t kChunk = size_t{4} << 20;  // floats per claimed chunk (16 MiB)
  for (auto _ : state) {
    std::fill(partial.begin(), partial.end(), 0.0f);
    pool.ParallelFor(n / kChunk, 1, [&](size_t begin, size_t end, int thread) {
      float s = 0.0f;
      for (size_t c = begin; c < end; ++c) {
        s += StreamSum(buf + c * kChunk, static_cast<int64_t>(kChunk), prefetch);
      }
      partial[static_cast<size_t>(thread) * 16] += s;
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(n * sizeof(float)));
  state.SetLabel(SimdTargetName());
}

struct BenchShape {
  int64_t n_out, n_in;
};

// SmolLM2-135M: q/o/(k,v padded) 576x576, gate/up 1536x576, down 576x1536,
// tied embedding / lm_head 49152x576.
const BenchShape kShapes[] = {{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}};

const DType kTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                        DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                        DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

[[maybe_unused]] const bool kRegistered = [] {
  for (DType t : kTypes) {
    for (const BenchShape& s : kShapes) {
      if (s.n_in % Info(t).block_size != 0) continue;  // K-quants need n_in % 256 == 0
      const std::string base = "MatMul/" + std::string(Name(t)) + "/" + std::to_string(s.n_out) +
                               "x" + std::to_string(s.n_in) + "/tok:";
      for (bool cold : {false, true}) {
        benchmark::RegisterBenchmark((base + "1/" + (cold ? "cold" : "hot")).c_str(), BM_MatMul, t,
                                     s.n_out, s.n_in, int64_t{1}, cold)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
      for (int64_t n_tok : {64, 256, 512}) {
        benchmark::RegisterBenchmark((base + std::to_string(n_tok)).c_str(), BM_MatMul, t, s.n_out,
                                     s.n_in, n_tok, false)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  for (DType t : kTypes) {
    if (!Int8Packable(t)) continue;
    for (const BenchShape& s : kShapes) {
      if (s.n_in % Info(t).block_size != 0) continue;
      const std::string base = "MatMulInt8/" + std::string(Name(t)) + "/" + std::to_string(s.n_out) +
                               "x" + std::to_string(s.n_in) + "/tok:";
      for (bool cold : {false, true}) {
        benchmark::RegisterBenchmark((base + (cold ? "1/cold" : "1/hot")).c_str(), BM_MatMulInt8, t, s.n_out,
                                     s.n_in, int64_t{1}, cold)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
      for (int64_t n_tok : {64, 512}) {
        benchmark::RegisterBenchmark((base + std::to_string(n_tok)).c_str(), BM_MatMulInt8, t, s.n_out,
                                     s.n_in, n_tok, false)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  // Decode at the paper's 7B shapes (Llama-2-7B's q/k/v/o and gate/up), the
  // types of its Q4_0 and Q4_K_M files: "hot" (9-23 MB, L3-resident where the
  // L3 holds it) against "cold" shows how far the kernel's own speed is above
  // the DRAM stream it has to keep up with.
  for (DType t : {DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    for (const BenchShape& s : {BenchShape{4096, 4096}, BenchShape{11008, 4096}}) {
      const std::string base = "MatMulInt8/" + std::string(Name(t)) + "/" + std::to_string(s.n_out) + "x" +
                               std::to_string(s.n_in) + "/tok:1/";
      for (bool cold : {false, true}) {
        benchmark::RegisterBenchmark((base + (cold ? "cold" : "hot")).c_str(), BM_MatMulInt8, t, s.n_out, s.n_in,
                                     int64_t{1}, cold)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::RegisterBenchmark("DramRead", BM_DramRead)
      ->ArgNames({"threads", "prefetch"})
      ->ArgsProduct({{1, 2}, {0, 4096}})
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
}  // namespace tokenlora::kernels
