// One training step against PyTorch + PEFT (tests/golden/train/, made by
// scripts/make_golden_train.py): from the same base and the same initial
// adapter, the same batch gives the same loss, gradients, gradient norm and,
// after clipping and one AdamW step, the same LoRA matrices.
//
// Tolerances. Loss: both sum the same f32 products in different orders,
// ~1e-6 relative. Gradients: f32 chains of a few thousand terms each, so
// |ours − torch| <= 1e-4 · the matrix's largest |gradient| (we measure
// ~1e-6). Updated weights: AdamW's first step moves each element by
// lr·ĝ/(|ĝ| + eps) (ĝ: the clipped gradient), ≈ ±lr = 1e-3 whatever ĝ's size,
// so a gradient difference Δĝ moves the weight by lr·eps·Δĝ/(|ĝ| + eps)² to
// first order: negligible except for elements whose gradient is within a
// few eps of 0. Each element may differ by lr·1e-4 (rounding) plus twice
// that first-order effect of its own measured Δĝ; a wrong sign, decay or
// bias correction is an error of order lr·0.01 or more.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "io/io_util.h"
#include "io/safetensors.h"
#include "lora/lora_test_util.h"
#include "model/model.h"
#include "test_util.h"
#include "train/llama_train_graph.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace tokenlora {
namespace {

// Writes the tiny base for the golden script, and an adapter trained on it
// by TrainLora with the loss it gives on two sequences (the script checks
// that PEFT loads the adapter and computes the same loss). Does nothing in
// a normal run.
TEST(TrainGoldenExport, WriteBase) {
  const char* dir = std::getenv("TOKENLORA_TRAIN_EXPORT_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set TOKENLORA_TRAIN_EXPORT_DIR to export the tiny base";
  std::filesystem::create_directories(dir);
  const auto model = Model::Load(testing::WriteTinyLlamaSafetensors(dir));
  TrainDataset data;
  data.sequences = {{{256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114}, 5},
                    {{256, 65, 110, 115, 119, 101, 114, 58, 32, 52, 50, 33, 257, 10, 84, 104}, 9}};
  TrainerOptions o;
  o.lora = {8,
            16.0f,
            0.0f,
            {ModuleKind::kQ, ModuleKind::kK, ModuleKind::kV, ModuleKind::kO, ModuleKind::kGate, ModuleKind::kUp,
             ModuleKind::kDown}};
  o.optimizer.lr = 1e-2;
  o.steps = 3;
  o.batch = 2;
  o.out_dir = std::string(dir) + "/trained";
  o.progress = nullptr;
  ThreadPool pool(2);
  TrainLora(*model, data, nullptr, o, pool);
  LoraParams params(model->config(), o.lora);
  const LoraAdapter adapter = LoadAdapter("trained", o.out_dir);
  for (TrainableModule& m : params.modules()) {
    m.a = adapter.Find(m.layer, m.kind)->a.ToF32();
    m.b = adapter.Find(m.layer, m.kind)->b.ToF32();
  }
  nlohmann::json j = {{"loss", MeanLoss(*model, params, data, -1, pool)}};
  std::ofstream(std::string(dir) + "/trained_loss.json") << j.dump();
}

std::vector<float> ToFloats(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.NumElements()));
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

TEST(TrainGolden, OneStepMatchesPeft) {
  const auto golden = nlohmann::json::parse(ReadTextFile(testing::SourcePath("tests/golden/train/one_step.json")));
  const SafetensorsFile tensors = SafetensorsFile::Open(testing::SourcePath("tests/golden/train/one_step.safetensors"));
  const auto model = Model::Load(testing::WriteTinyLlamaSafetensors(testing::TempDir()));
  const LoraAdapter initial = LoadAdapter("golden", testing::SourcePath("tests/golden/train/initial"));

  LoraTrainConfig config;
  config.rank = golden["rank"].get<int>();
  config.alpha = golden["alpha"].get<float>();
  config.targets.clear();
  for (const auto& t : golden["targets"])
    config.targets.push_back(ParseTargetModules(t.get<std::string>(), "golden")[0]);
  LoraParams params(model->config(), config);
  ASSERT_EQ(params.modules().size(), initial.modules.size());
  for (TrainableModule& m : params.modules()) {
    const LoraModule* src = initial.Find(m.layer, m.kind);
    ASSERT_NE(src, nullptr);
    m.a = src->a.ToF32();
    m.b = src->b.ToF32();
  }

  std::vector<TrainSequence> batch;
  int64_t targets = 0;
  for (const auto& s : golden["batch"]) {
    batch.push_back({s["tokens"].get<std::vector<int32_t>>(), s["n_prompt"].get<int>()});
    targets += batch.back().NumTargets();
  }
  ThreadPool pool(2);
  LlamaTrainGraph graph(*model, params);
  params.ZeroGrad();
  TrainRunOptions run;
  run.grad_scale = 1.0 / static_cast<double>(targets);
  double loss = 0;
  for (const auto& s : batch) loss += graph.Run(s, run, pool);
  loss /= static_cast<double>(targets);
  EXPECT_NEAR(loss, golden["loss"].get<double>(), 2e-6 * golden["loss"].get<double>());

  double worst_grad = 0;
  for (const TrainableModule& m : params.modules()) {
    const std::string key = HfModuleKey(m.layer, m.kind);
    for (int which = 0; which < 2; ++which) {
      const TensorView* g = tensors.Find(key + (which == 0 ? ".lora_A.grad" : ".lora_B.grad"));
      ASSERT_NE(g, nullptr) << key;
      const std::vector<float> want = ToFloats(*g);
      const std::vector<float>& got = which == 0 ? m.grad_a : m.grad_b;
      ASSERT_EQ(got.size(), want.size());
      float max_abs = 0;
      for (float v : want) max_abs = std::max(max_abs, std::fabs(v));
      for (size_t i = 0; i < got.size(); ++i) {
        worst_grad = std::max(worst_grad, static_cast<double>(std::fabs(got[i] - want[i]) / max_abs));
        ASSERT_NEAR(got[i], want[i], 1e-4 * max_abs) << key << (which == 0 ? " grad A " : " grad B ") << i;
      }
    }
  }

  OptimizerConfig opt;
  opt.lr = golden["lr"].get<double>();
  opt.weight_decay = golden["weight_decay"].get<double>();
  opt.max_grad_norm = golden["max_grad_norm"].get<double>();
  opt.schedule = LrSchedule::kConstant;
  std::vector<std::vector<float>> grads;  // before clipping, per module: grad_A, grad_B
  for (const TrainableModule& m : params.modules()) grads.push_back(m.grad_a), grads.push_back(m.grad_b);
  const double norm = ClipGradNorm(params, opt.max_grad_norm);
  const double coef = std::min(1.0, opt.max_grad_norm / (norm + 1e-6));
  EXPECT_NEAR(norm, golden["grad_norm"].get<double>(), 1e-5 * norm);
  ASSERT_GT(norm, opt.max_grad_norm) << "the golden must exercise clipping";
  AdamW adamw(params, opt);
  EXPECT_EQ(adamw.Step(), opt.lr);

  double worst_weight = 0;
  size_t k = 0;
  for (const TrainableModule& m : params.modules()) {
    const std::string key = HfModuleKey(m.layer, m.kind);
    for (int which = 0; which < 2; ++which, ++k) {
      const std::string part = which == 0 ? ".lora_A" : ".lora_B";
      const std::vector<float> want = ToFloats(*tensors.Find(key + part + ".after"));
      const std::vector<float> want_grad = ToFloats(*tensors.Find(key + part + ".grad"));
      const std::vector<float>& got = which == 0 ? m.a : m.b;
      for (size_t i = 0; i < got.size(); ++i) {
        const double g = coef * grads[k][i], dg = coef * std::fabs(grads[k][i] - want_grad[i]);
        const double sensitivity = opt.lr * opt.eps * dg / ((std::fabs(g) + opt.eps) * (std::fabs(g) + opt.eps));
        worst_weight = std::max(worst_weight, static_cast<double>(std::fabs(got[i] - want[i])));
        ASSERT_NEAR(got[i], want[i], opt.lr * 1e-4 + 2 * sensitivity)
            << key << part << " after the step, element " << i;
      }
    }
  }
  std::printf("[ golden ] loss %.7f vs %.7f; worst gradient diff %.2e of the matrix max; worst weight diff %.2e\n",
              loss, golden["loss"].get<double>(), worst_grad, worst_weight);
}

}  // namespace
}  // namespace tokenlora
