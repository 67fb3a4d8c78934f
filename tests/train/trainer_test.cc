// The training loop on the tiny model: data preparation (template split,
// EOS, truncation), loss falling, exact resume from a checkpoint, and a
// written adapter that tokenlora loads back and runs with the same loss.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "lora/adapter_bank.h"
#include "lora/lora_test_util.h"
#include "lora/mixer.h"
#include "model/model.h"
#include "test_util.h"
#include "tiny_model.h"
#include "train/train_ops.h"

namespace tokenlora {
namespace {

// GSM8K-shaped records for the tiny byte-level tokenizer.
std::string WriteRecords(const std::string& dir, int n) {
  const std::string path = dir + "/data.jsonl";
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = {{"question", "What is " + std::to_string(i) + " plus " + std::to_string(2 * i) + "?"},
                        {"answer", std::to_string(i) + " + " + std::to_string(2 * i) + " = " + std::to_string(3 * i) +
                                       "\n#### " + std::to_string(3 * i)}};
    out << j.dump() << "\n";
  }
  return path;
}

TEST(TrainData, SplitsPromptAndAnswerAtAnswerMark) {
  const std::string dir = testing::TempDir();
  const auto model = Model::Load(testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir));
  TrainDataOptions o;
  o.template_spec = "gsm8k";
  o.max_len = 256;
  const TrainDataset data = LoadTrainData(WriteRecords(dir, 3) + "[1:]", o, model->tokenizer());
  ASSERT_EQ(data.sequences.size(), 2u);  // the slice
  const Tokenizer& tok = model->tokenizer();
  const TrainSequence& s = data.sequences[0];
  const std::vector<int32_t> prompt(s.tokens.begin(), s.tokens.begin() + s.n_prompt);
  const std::vector<int32_t> answer(s.tokens.begin() + s.n_prompt, s.tokens.end());
  EXPECT_EQ(tok.Decode(prompt, true), "Question: What is 1 plus 2?\n\nAnswer:");
  EXPECT_EQ(answer.back(), tok.eos_id());
  EXPECT_EQ(tok.Decode(std::vector<int32_t>(answer.begin(), answer.end() - 1), true), " 1 + 2 = 3\n#### 3");
  EXPECT_EQ(data.truncated, 0);

  o.max_len = 30;  // cuts the prompt's start, keeps a quarter of the sequence for the answer
  const TrainDataset cut = LoadTrainData(WriteRecords(dir, 3), o, tok);
  for (const auto& seq : cut.sequences) {
    EXPECT_LE(seq.tokens.size(), 30u);
    EXPECT_GE(seq.NumTargets(), 7);
  }
  EXPECT_EQ(cut.truncated, 3);

  o.template_spec = "Q: {question} A: {answer}";  // no "Answer:"
  EXPECT_THROW(LoadTrainData(WriteRecords(dir, 3), o, tok), InputError);
  o.template_spec = "Q: {question}\nAnswer: {answer}";
  EXPECT_EQ(LoadTrainData(WriteRecords(dir, 3), o, tok).sequences.size(), 3u);
  o.template_spec = "Q: {missing}\nAnswer: {answer}";
  try {
    LoadTrainData(WriteRecords(dir, 3), o, tok);
    FAIL() << "a missing field must throw";
  } catch (const InputError& e) {
    EXPECT_TRUE(testing::Contains(e.what(), "data.jsonl:1"));
    EXPECT_TRUE(testing::Contains(e.what(), "missing"));
  }
}

TEST(TrainData, BatchesAreDeterministicBucketedPermutations) {
  TrainDataset data;
  for (int i = 0; i < 37; ++i)
    data.sequences.push_back({std::vector<int32_t>(static_cast<size_t>(5 + (i * 7) % 23), 1), 1});
  const auto a = MakeBatches(data, 4, 3, 0), b = MakeBatches(data, 4, 3, 0), c = MakeBatches(data, 4, 3, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int> seen(37, 0);
  for (const auto& batch : a) {
    EXPECT_LE(batch.size(), 4u);
    for (int32_t i : batch) ++seen[static_cast<size_t>(i)];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST(Optimizer, ScheduleWarmsUpThenDecays) {
  OptimizerConfig c;
  c.lr = 1.0;
  c.warmup_steps = 10;
  c.total_steps = 110;
  EXPECT_DOUBLE_EQ(LearningRate(c, 0), 0.0);
  EXPECT_DOUBLE_EQ(LearningRate(c, 5), 0.5);
  EXPECT_DOUBLE_EQ(LearningRate(c, 10), 1.0);
  EXPECT_NEAR(LearningRate(c, 60), 0.5, 1e-12);  // cosine half way
  EXPECT_NEAR(LearningRate(c, 110), 0.0, 1e-12);
  c.schedule = LrSchedule::kLinear;
  EXPECT_NEAR(LearningRate(c, 60), 0.5, 1e-12);
  EXPECT_NEAR(LearningRate(c, 85), 0.25, 1e-12);
  EXPECT_THROW(ParseLrSchedule("step"), InputError);
}

TrainerOptions SmallRun(const std::string& out) {
  TrainerOptions o;
  o.lora.rank = 4;
  o.lora.alpha = 8;
  o.lora.dropout = 0.1f;
  o.lora.targets = {ModuleKind::kQ, ModuleKind::kK, ModuleKind::kV, ModuleKind::kDown};
  o.optimizer.lr = 5e-3;
  o.optimizer.warmup_steps = 2;
  o.optimizer.weight_decay = 0.01;
  o.steps = 8;
  o.batch = 3;
  o.grad_accum = 2;
  o.seed = 5;
  o.out_dir = out;
  o.progress = nullptr;
  return o;
}

std::vector<double> Losses(const std::string& log_path) {
  std::vector<double> losses;
  std::ifstream in(log_path);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  return losses;
}

TEST(Trainer, LossFallsAndResumeContinuesExactly) {
  const std::string dir = testing::TempDir();
  const auto model = Model::Load(testing::WriteTinyModel({"llama", "gguf", DType::kQ8_0}, dir));
  TrainDataOptions d;
  d.template_spec = "gsm8k";
  d.max_len = 64;
  const TrainDataset data = LoadTrainData(WriteRecords(dir, 10), d, model->tokenizer());
  ThreadPool pool(2);

  const TrainSummary full = TrainLora(*model, data, &data, SmallRun(dir + "/full"), pool);
  EXPECT_EQ(full.steps, 8);
  EXPECT_LT(full.val_loss_last, full.val_loss_first - 0.05) << "the adapter should fit its training records";
  const auto full_losses = Losses(dir + "/full/train_log.jsonl");
  ASSERT_EQ(full_losses.size(), 8u);
  EXPECT_TRUE(std::filesystem::exists(dir + "/full/loss.svg"));

  // Interrupted after step 5 with checkpoints every 3 steps, then resumed.
  TrainerOptions part = SmallRun(dir + "/part");
  part.checkpoint_every = 3;
  part.stop_after = 5;
  const TrainSummary first = TrainLora(*model, data, &data, part, pool);
  EXPECT_TRUE(first.stopped);
  EXPECT_FALSE(std::filesystem::exists(dir + "/part/adapter_config.json"));
  part.stop_after = 0;
  part.resume = true;
  const TrainSummary second = TrainLora(*model, data, &data, part, pool);
  EXPECT_EQ(second.first_step, 3);
  EXPECT_EQ(second.steps, 8);
  EXPECT_EQ(Losses(dir + "/part/train_log.jsonl"), full_losses) << "resumed losses must be bit-identical";
  EXPECT_EQ(ReadTextFile(dir + "/part/adapter_model.safetensors"),
            ReadTextFile(dir + "/full/adapter_model.safetensors"));

  // A checkpoint of different options is refused with the differing option named.
  part.seed = 6;
  try {
    TrainLora(*model, data, &data, part, pool);
    FAIL() << "a mismatched resume must throw";
  } catch (const InputError& e) {
    EXPECT_TRUE(testing::Contains(e.what(), "seed"));
  }
}

// The written adapter, loaded through the ordinary loader (PEFT directory →
// BindToBase, which reorders q/k rows for this GGUF base) and run by the
// inference mixer, gives the trainer's own loss.
TEST(Trainer, WrittenAdapterRunsInInferenceWithTheSameLoss) {
  const std::string dir = testing::TempDir();
  const auto model = Model::Load(testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir));
  TrainDataOptions d;
  d.template_spec = "gsm8k";
  d.max_len = 64;
  const TrainDataset data = LoadTrainData(WriteRecords(dir, 6), d, model->tokenizer());
  ThreadPool pool(2);
  TrainerOptions o = SmallRun(dir + "/out");
  o.lora.dropout = 0;
  o.steps = 4;
  TrainLora(*model, data, nullptr, o, pool);

  AdapterBank bank(*model);
  bank.Load("trained", dir + "/out");
  LoraMixer mixer(bank);
  mixer.SetMixture({{"trained", 1.0f}});
  double loss = 0;
  int64_t targets = 0;
  for (const TrainSequence& s : data.sequences) {
    const auto logits = testing::RunLogits(*model, s.tokens, &mixer, pool);
    for (size_t t = static_cast<size_t>(s.n_prompt) - 1; t + 1 < s.tokens.size(); ++t) {
      loss += train::CrossEntropy(&logits[t * static_cast<size_t>(model->config().vocab_size)],
                                  model->config().vocab_size, s.tokens[t + 1]);
    }
    targets += s.NumTargets();
  }
  loss /= static_cast<double>(targets);

  // The trainer's forward on the final matrices (read back from the checkpoint-free run's adapter).
  const LoraAdapter adapter = LoadAdapter("trained", dir + "/out");
  LoraParams params(model->config(), o.lora);
  LoraAdapter bound = adapter;
  BindToBase(bound, model->config(), model->path());
  for (TrainableModule& m : params.modules()) {
    const LoraModule* src = bound.Find(m.layer, m.kind);
    ASSERT_NE(src, nullptr);
    m.a = src->a.ToF32();
    m.b = src->b.ToF32();
  }
  const double trainer_loss = MeanLoss(*model, params, data, -1, pool);
  EXPECT_NEAR(loss, trainer_loss, 1e-5 * trainer_loss);
  const auto config = nlohmann::json::parse(ReadTextFile(dir + "/out/adapter_config.json"));
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 8.0);
}

}  // namespace
}  // namespace tokenlora
