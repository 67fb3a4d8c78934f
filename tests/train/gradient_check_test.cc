// The trainer's analytic LoRA gradients (f32) against central finite
// differences of an independent double-precision forward (reference_llama),
// on tiny models covering both RoPE layouts (GGUF llama: adjacent pairs;
// safetensors: half split), untied and tied heads, q/k/v biases (qwen2) and
// quantized base weights, with LoRA on all seven projections.
//
// Tolerance: relative error |g − fd| / max(|fd|, floor) <= 1e-3 per checked
// element. The finite differences are taken in double with h = 1e-4 on the
// loss (≈ 5): truncation error ~h²·|L'''| ≈ 1e-8 and rounding ~1e-16·5/1e-4 ≈
// 5e-12, so fd is exact to far below the tolerance. The analytic gradient is
// an f32 computation whose elements each sum thousands of products; its
// rounding error is ~1e-6 of the gradient's overall size, not of each
// element, so tiny elements are compared against floor = 1e-2 · the largest
// |fd| checked in the same matrix (an element 100× below the largest may be
// off by 1e-5 of the largest). A wrong factor, a missing term or a
// transposed index gives errors of order 1.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "model/model.h"
#include "test_util.h"
#include "tiny_model.h"
#include "train/llama_train_graph.h"
#include "train/reference_llama.h"

namespace tokenlora::testing {
namespace {

// Two sequences of different lengths (a batch): 7 tokens with a 3-token
// prompt, 10 with a 6-token prompt.
std::vector<TrainSequence> Batch() {
  return {{{12, 300, 45, 7, 99, 256, 3}, 3}, {{5, 6, 7, 8, 9, 10, 200, 201, 50, 25}, 6}};
}

LoraParams RandomParams(const LlamaConfig& c, int rank, float alpha) {
  LoraTrainConfig cfg;
  cfg.rank = rank;
  cfg.alpha = alpha;
  cfg.targets = {ModuleKind::kQ,    ModuleKind::kK,  ModuleKind::kV,   ModuleKind::kO,
                 ModuleKind::kGate, ModuleKind::kUp, ModuleKind::kDown};
  LoraParams p(c, cfg);
  p.InitPeft(42);
  // B non-zero so that A gets gradients too.
  SplitMix64 rng(7);
  for (TrainableModule& m : p.modules()) {
    for (float& v : m.b) v = static_cast<float>((2 * rng.Uniform01() - 1) * 0.1);
  }
  return p;
}

// Analytic gradient of the mean loss over the batch's answer tokens.
double AnalyticMeanLoss(const Model& model, LoraParams& params, ThreadPool& pool) {
  const auto batch = Batch();
  int64_t targets = 0;
  for (const auto& s : batch) targets += s.NumTargets();
  LlamaTrainGraph graph(model, params);
  params.ZeroGrad();
  double loss = 0;
  TrainRunOptions opt;
  opt.grad_scale = 1.0 / static_cast<double>(targets);
  for (const auto& s : batch) loss += graph.Run(s, opt, pool);
  return loss / static_cast<double>(targets);
}

double ReferenceMeanLoss(const ReferenceLlama& ref, const LoraParams& params) {
  const auto batch = Batch();
  double loss = 0;
  int64_t targets = 0;
  for (const auto& s : batch) loss += ref.SummedLoss(params, s), targets += s.NumTargets();
  return loss / static_cast<double>(targets);
}

class GradientCheck : public ::testing::TestWithParam<TinySpec> {};

TEST_P(GradientCheck, AnalyticMatchesFiniteDifferences) {
  const std::string path = WriteTinyModel(GetParam(), TempDir());
  const auto model = Model::Load(path);
  ThreadPool pool(2);
  LoraParams params = RandomParams(model->config(), /*rank=*/2, /*alpha=*/4);
  const double loss = AnalyticMeanLoss(*model, params, pool);
  const ReferenceLlama ref(*model);
  const double ref_loss = ReferenceMeanLoss(ref, params);
  // f32 forward vs double: a few ulps of f32 relative to the loss.
  EXPECT_NEAR(loss, ref_loss, 1e-5 * std::fabs(ref_loss));

  const double h = 1e-4;
  double worst = 0;
  SplitMix64 pick(99);
  for (TrainableModule& m : params.modules()) {
    for (int which = 0; which < 2; ++which) {
      std::vector<float>& values = which == 0 ? m.a : m.b;
      const std::vector<float>& grads = which == 0 ? m.grad_a : m.grad_b;
      // The largest analytic element and a random one.
      size_t largest = 0;
      for (size_t i = 0; i < grads.size(); ++i) {
        if (std::fabs(grads[i]) > std::fabs(grads[largest])) largest = i;
      }
      constexpr int kPicks = 2;
      const size_t picks[kPicks] = {largest, pick.Next() % values.size()};
      double fds[kPicks], floor = 0;
      for (int k = 0; k < kPicks; ++k) {
        const float saved = values[picks[k]];
        values[picks[k]] = static_cast<float>(saved + h);
        const double plus = ReferenceMeanLoss(ref, params);
        values[picks[k]] = static_cast<float>(saved - h);
        const double minus = ReferenceMeanLoss(ref, params);
        values[picks[k]] = saved;
        // The f32 parameter moved by exactly (float)(saved ± h) − saved.
        const double step = static_cast<double>(static_cast<float>(saved + h)) - static_cast<float>(saved - h);
        fds[k] = (plus - minus) / step;
        floor = std::max(floor, 1e-2 * std::fabs(fds[k]));
      }
      for (int k = 0; k < kPicks; ++k) {
        const double g = grads[picks[k]];
        const double err = std::fabs(g - fds[k]) / std::max(std::fabs(fds[k]), std::max(floor, 1e-12));
        worst = std::max(worst, err);
        EXPECT_LE(err, 1e-3) << "layer " << m.layer << " " << ModuleName(m.kind) << (which == 0 ? " lora_A" : " lora_B")
                             << " element " << picks[k] << ": analytic " << g << ", finite difference " << fds[k];
      }
    }
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
  std::printf("[ gradient check %s ] loss %.6f (reference %.6f), worst relative error %.2e\n",
              GetParam().Name().c_str(), loss, ref_loss, worst);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, GradientCheck,
                         ::testing::Values(TinySpec{"llama", "gguf", DType::kF32},
                                           TinySpec{"llama", "safetensors", DType::kF32},
                                           TinySpec{"qwen2", "gguf", DType::kQ4_K}),
                         [](const auto& info) { return info.param.Name(); });

// Gradients and loss are bit-identical with 1 and 2 threads.
TEST(TrainGraph, DeterministicAcrossThreadCounts) {
  const auto model = Model::Load(WriteTinyModel({"llama", "gguf", DType::kQ8_0}, TempDir()));
  ThreadPool pool1(1), pool2(2);
  LoraParams a = RandomParams(model->config(), 4, 8), b = RandomParams(model->config(), 4, 8);
  EXPECT_EQ(AnalyticMeanLoss(*model, a, pool1), AnalyticMeanLoss(*model, b, pool2));
  for (size_t i = 0; i < a.modules().size(); ++i) {
    EXPECT_EQ(a.modules()[i].grad_a, b.modules()[i].grad_a);
    EXPECT_EQ(a.modules()[i].grad_b, b.modules()[i].grad_b);
  }
}

}  // namespace
}  // namespace tokenlora::testing

namespace tokenlora::testing {
namespace {

// With LoRA dropout the masks are fixed by the key, so the loss is a smooth
// function of A and B whose directional derivative along the gradient g must
// be |g|². Taken by central differences of the trainer's own f32 forward:
// with a step of 1e-2/|g| the loss moves by ~1e-2·|g| while its f32 rounding
// noise is ~1e-6, so 1% agreement checks the masked backward (a mask applied
// in only one direction, or a missing 1/(1 − p), is off by 10% or more).
TEST(TrainGraph, DropoutGradientMatchesDirectionalDerivative) {
  const auto model = Model::Load(WriteTinyModel({"llama", "safetensors", DType::kF32}, TempDir()));
  ThreadPool pool(2);
  LoraTrainConfig cfg;
  cfg.rank = 4;
  cfg.alpha = 8;
  cfg.dropout = 0.3f;
  cfg.targets = {ModuleKind::kQ, ModuleKind::kV, ModuleKind::kUp, ModuleKind::kDown};
  LoraParams params(model->config(), cfg);
  params.InitPeft(3);
  SplitMix64 rng(4);
  for (TrainableModule& m : params.modules()) {
    for (float& v : m.b) v = static_cast<float>((2 * rng.Uniform01() - 1) * 0.1);
  }
  const TrainSequence seq{{12, 300, 45, 7, 99, 256, 3, 50, 60, 70}, 4};
  LlamaTrainGraph graph(*model, params);
  TrainRunOptions opt;
  opt.dropout = true;
  opt.dropout_key = 77;
  params.ZeroGrad();
  const double loss = graph.Run(seq, opt, pool);
  TrainRunOptions eval = opt;
  eval.backward = false;
  EXPECT_EQ(graph.Run(seq, eval, pool), loss) << "a key fixes the masks";
  eval.dropout_key = 78;
  EXPECT_NE(graph.Run(seq, eval, pool), loss) << "another key, other masks";

  double norm_sq = 0;
  for (const TrainableModule& m : params.modules()) {
    for (float g : m.grad_a) norm_sq += static_cast<double>(g) * g;
    for (float g : m.grad_b) norm_sq += static_cast<double>(g) * g;
  }
  const double step = 1e-2 / std::sqrt(norm_sq);
  auto shifted_loss = [&](double sign) {
    LoraParams moved = params;  // copies A, B and their gradients
    for (TrainableModule& m : moved.modules()) {
      for (size_t i = 0; i < m.a.size(); ++i) m.a[i] += static_cast<float>(sign * step * m.grad_a[i]);
      for (size_t i = 0; i < m.b.size(); ++i) m.b[i] += static_cast<float>(sign * step * m.grad_b[i]);
    }
    LlamaTrainGraph g(*model, moved);
    TrainRunOptions same_masks = opt;
    same_masks.backward = false;
    return g.Run(seq, same_masks, pool);
  };
  const double directional = (shifted_loss(+1) - shifted_loss(-1)) / (2 * step);
  EXPECT_NEAR(directional, norm_sq, 1e-2 * norm_sq);
  std::printf("[ dropout gradient ] directional derivative %.6g, |g|^2 %.6g\n", directional, norm_sq);
}

}  // namespace
}  // namespace tokenlora::testing
