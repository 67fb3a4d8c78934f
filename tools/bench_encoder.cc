#include "bench_encoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench_routing.h"
#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/int8_matmul.h"
#include "model/bert/bert_model.h"
#include "router/policy.h"

namespace tokenlora::cli {
namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int RunEncoderBench(const EncoderBenchArgs& a) {
  const std::string dir = EmbedderPath(a.embedder);
  const int threads = a.threads > 0 ? a.threads : DefaultThreads();
  ThreadPool pool(threads);
  const std::unique_ptr<BertModel> models[2] = {BertModel::Load(dir, EncoderPrecision::kF32),
                                                BertModel::Load(dir, EncoderPrecision::kInt8)};
  const BertModel& f32 = *models[0];
  BertWorkspace ws[2];

  // Word pieces of the passage, repeated as needed: window w of a call
  // starts w·7 pieces in, so the windows of one batch differ.
  std::string text = BenchPassage();
  std::vector<int32_t> pieces = f32.tokenizer().Encode(text, false);
  const int longest = *std::max_element(a.pieces.begin(), a.pieces.end());
  for (int p : a.pieces) {
    if (p < 1 || p > f32.max_pieces()) {
      throw InputError("bench --encoder: " + std::to_string(p) + " word pieces; expected 1.." +
                       std::to_string(f32.max_pieces()) + " (the embedder's max_seq_length - 2)");
    }
  }
  while (static_cast<int>(pieces.size()) < longest + 7 * a.batch) {
    text += BenchPassage();
    pieces = f32.tokenizer().Encode(text, false);
  }

  const int dim = f32.dim();
  nlohmann::json rows = nlohmann::json::array();
  if (!a.json) {
    std::printf("encoder %s (%d layers, d %d), %d threads, batch %d, int8 kernel %s; median of %d reps\n",
                dir.c_str(), f32.config().n_layers, dim, threads, a.batch, kernels::Int8KernelName(), a.reps);
    std::printf("%7s %9s %9s %8s %12s %12s %10s\n", "pieces", "f32 ms", "int8 ms", "speedup", "f32 GFLOP/s",
                "int8 GFLOP/s", "min cos");
  }
  for (int n : a.pieces) {
    std::vector<std::vector<int32_t>> batch;
    for (int w = 0; w < a.batch; ++w) {
      const auto begin = pieces.begin() + 7 * w;
      batch.push_back(f32.WithSpecialTokens(std::vector<int32_t>(begin, begin + n)));
    }
    const double flops = BertEncoderFlops(f32.config(), n + 2) * a.batch;
    std::vector<float> out[2];
    for (int m = 0; m < 2; ++m) {
      out[m].resize(static_cast<size_t>(a.batch * dim));
      models[m]->Embed(batch, pool, ws[m], out[m].data());  // warm-up (scratch, caches)
    }
    double min_cos = 1;
    for (int w = 0; w < a.batch; ++w) {
      const size_t n = static_cast<size_t>(dim), at = static_cast<size_t>(w) * n;
      min_cos = std::min(min_cos, double{CosineSimilarity({out[0].data() + at, n}, {out[1].data() + at, n})});
    }
    // Calls per rep: about 0.2 s of f32 work, at least 3.
    const auto t0 = std::chrono::steady_clock::now();
    models[0]->Embed(batch, pool, ws[0], out[0].data());
    const double once = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int calls = std::clamp(static_cast<int>(0.2 / std::max(once, 1e-6)), 3, 1000);
    std::vector<double> ms[2];
    for (int r = 0; r < a.reps; ++r) {
      for (int m = 0; m < 2; ++m) {
        const auto s = std::chrono::steady_clock::now();
        for (int c = 0; c < calls; ++c) models[m]->Embed(batch, pool, ws[m], out[m].data());
        ms[m].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count() /
                        calls);
      }
    }
    const double f32_ms = Median(ms[0]), int8_ms = Median(ms[1]);
    if (a.json) {
      rows.push_back({{"pieces", n}, {"batch", a.batch}, {"f32_ms", f32_ms}, {"int8_ms", int8_ms},
                      {"speedup", f32_ms / int8_ms}, {"f32_gflops", flops / f32_ms / 1e6},
                      {"int8_gflops", flops / int8_ms / 1e6}, {"min_cosine", min_cos}});
    } else {
      std::printf("%7d %9.2f %9.2f %7.2fx %12.1f %12.1f %10.6f\n", n, f32_ms, int8_ms, f32_ms / int8_ms,
                  flops / f32_ms / 1e6, flops / int8_ms / 1e6, min_cos);
      std::fflush(stdout);
    }
  }
  if (a.json) {
    const nlohmann::json j = {{"embedder", dir},         {"threads", threads}, {"batch", a.batch},
                              {"int8_kernel", kernels::Int8KernelName()}, {"reps", a.reps}, {"rows", rows}};
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace tokenlora::cli
