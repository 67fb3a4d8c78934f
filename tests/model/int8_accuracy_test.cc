// Int8 activations against the f32 path of the same model, on the real
// files named in TOKENLORA_INT8_ACCURACY_MODELS (':'-separated GGUF paths;
// skipped when unset: the models are large and not part of the repository).
// For each model: the golden texts (tests/golden/model/*.json) tokenized,
// each continued greedily by the f32 model for 32 tokens, then the logits of
// every position of prompt + continuation from both paths compared: top-1
// agreement, max and mean |Δ logit| over the whole row. It prints the
// numbers (docs/performance.md quotes them) and checks only loose bounds:
// the kernels themselves are checked exactly in
// tests/kernels/int8_matmul_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "kernels/int8_matmul.h"
#include "model/llama/forward.h"
#include "model/model.h"
#include "test_util.h"

namespace tokenlora {
namespace {

std::vector<std::string> ModelsFromEnv() {
  std::vector<std::string> out;
  const char* env = std::getenv("TOKENLORA_INT8_ACCURACY_MODELS");
  if (env == nullptr) return out;
  std::stringstream ss(env);
  for (std::string p; std::getline(ss, p, ':');) {
    if (!p.empty()) out.push_back(p);
  }
  return out;
}

// logits of every position of seq: [seq.size(), vocab].
std::vector<float> AllLogits(const Model& model, const std::vector<int32_t>& seq, ThreadPool& pool) {
  KvCache kv(model.config(), static_cast<int>(seq.size()));
  LlamaForward forward(model, 64);
  std::vector<float> logits(seq.size() * static_cast<size_t>(model.config().vocab_size));
  forward.Run(seq, kv, {&pool, nullptr}, logits.data(), true);
  return logits;
}

// seq continued greedily by `model` for n tokens.
std::vector<int32_t> Greedy(const Model& model, std::vector<int32_t> seq, int n, ThreadPool& pool) {
  const int vocab = model.config().vocab_size;
  KvCache kv(model.config(), static_cast<int>(seq.size()) + n);
  LlamaForward forward(model, 64);
  std::vector<float> logits(static_cast<size_t>(vocab));
  forward.Run(seq, kv, {&pool, nullptr}, logits.data(), false);
  for (int i = 0; i < n; ++i) {
    const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    seq.push_back(next);
    const int32_t one[] = {next};
    forward.Run(one, kv, {&pool, nullptr}, logits.data(), false);
  }
  return seq;
}

TEST(Int8Accuracy, AgainstF32OnRealModels) {
  const auto models = ModelsFromEnv();
  if (models.empty()) GTEST_SKIP() << "set TOKENLORA_INT8_ACCURACY_MODELS to GGUF paths";
  if (!kernels::Int8Accelerated()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  const auto golden = nlohmann::json::parse(
      ReadTextFile(testing::SourcePath("tests/golden/model/smollm2_135m_q4_1.json")));
  ThreadPool pool(2);
  for (const std::string& path : models) {
    SCOPED_TRACE(path);
    ModelOptions f32_options, int8_options;
    f32_options.int8_activations = false;
    int8_options.int8_activations = true;
    const auto f32 = Model::Load(path, f32_options);
    const auto int8 = Model::Load(path, int8_options);
    const int vocab = f32->config().vocab_size;
    int positions = 0, top1_same = 0;
    double worst = 0, sum_abs = 0, sum_ref_abs = 0, worst_shifted = 0;
    std::string worst_at;
    for (const auto& c : golden["cases"]) {
      std::vector<int32_t> seq = f32->tokenizer().Encode(c["text"].get<std::string>(), true);
      seq = Greedy(*f32, seq, 32, pool);
      const auto a = AllLogits(*f32, seq, pool), b = AllLogits(*int8, seq, pool);
      for (size_t t = 0; t < seq.size(); ++t) {
        const float* ra = &a[t * static_cast<size_t>(vocab)];
        const float* rb = &b[t * static_cast<size_t>(vocab)];
        ++positions;
        top1_same += std::max_element(ra, ra + vocab) - ra == std::max_element(rb, rb + vocab) - rb;
        // Softmax ignores a shift of the whole row: also the largest
        // difference after removing the row's mean difference.
        double mean_d = 0;
        for (int v = 0; v < vocab; ++v) mean_d += static_cast<double>(rb[v]) - ra[v];
        mean_d /= vocab;
        for (int v = 0; v < vocab; ++v) {
          worst_shifted = std::max(worst_shifted, std::fabs(static_cast<double>(rb[v]) - ra[v] - mean_d));
        }
        for (int v = 0; v < vocab; ++v) {
          const double d = std::fabs(static_cast<double>(ra[v]) - rb[v]);
          if (d > worst) {
            worst = d;
            worst_at = c["name"].get<std::string>() + " position " + std::to_string(t) + " of " +
                       std::to_string(seq.size());
          }
          sum_abs += d;
          sum_ref_abs += std::fabs(ra[v]);
        }
      }
    }
    const double n = static_cast<double>(positions) * vocab;
    std::printf("%s: int8 projections %d; top-1 same at %d of %d positions (%.1f%%); |logit int8 - f32| "
                "max %.3f (%s; %.3f less the row's mean shift), mean %.4f (mean |logit| %.2f)\n",
                path.c_str(), int8->int8_projections(), top1_same, positions, 100.0 * top1_same / positions,
                worst, worst_at.c_str(), worst_shifted, sum_abs / n, sum_ref_abs / n);
    EXPECT_GT(int8->int8_projections(), 0);
    EXPECT_GE(top1_same, positions * 90 / 100);
  }
}

}  // namespace
}  // namespace tokenlora
