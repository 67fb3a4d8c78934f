#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/adapter_provenance.h"
#include "io/json_text.h"
#include "lora/adapter.h"
#include "router/sha256.h"
#include "train/checkpoint.h"
#include "train/llama_train_graph.h"
#include "train/loss_curve.h"
#include "train/train_progress.h"

namespace tokenlora {
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

void ValidateOptions(const TrainerOptions& o) {
  if (o.batch < 1) throw InputError("--batch: expected >= 1, got " + std::to_string(o.batch));
  if (o.grad_accum < 1) throw InputError("--grad-accum: expected >= 1, got " + std::to_string(o.grad_accum));
  if (o.steps <= 0 && o.epochs < 1) throw InputError("--epochs: expected >= 1, got " + std::to_string(o.epochs));
  if (!(o.optimizer.lr > 0)) throw InputError("--lr: expected > 0, got " + std::to_string(o.optimizer.lr));
  if (o.optimizer.weight_decay < 0) throw InputError("--weight-decay: expected >= 0");
  if (o.optimizer.warmup_steps < 0) throw InputError("--warmup: expected >= 0");
  if (o.out_dir.empty()) throw InputError("-o: an output directory is required");
  if (o.stop_after > 0 && o.checkpoint_every <= 0) {
    throw InputError("--stop-after " + std::to_string(o.stop_after) +
                     " without --checkpoint-every would lose the run; add --checkpoint-every N (N <= " +
                     std::to_string(o.stop_after) + ")");
  }
}

// What adapter_config.json records about this run. The dropout is the one
// the forward pass applied (llama_train_forward.cc, when > 0); the base file
// is hashed so an adapter names the exact (e.g. quantized) weights it fits.
AdapterProvenance DescribeTraining(const Model& model, const TrainerOptions& o) {
  AdapterProvenance p;
  p.base_model_name_or_path = o.base_model_name;
  p.lora_dropout = o.lora.dropout;
  fs::path file = model.path();
  std::error_code ec;
  if (fs::is_directory(file, ec)) file /= "model.safetensors";  // sharded checkpoints: no single file
  if (fs::is_regular_file(file, ec)) {
    p.base_model_file = file.filename().string();
    p.base_model_sha256 = Sha256File(file.string());
  }
  return p;
}

// The data file's name (with its slice) for the loss curve's title: never the
// directories of the machine that trained.
std::string SourceFileName(const std::string& source) { return fs::path(source).filename().string(); }

// The dropout key of sequence k of step s: a function of the seed and its place only.
uint64_t DropoutKey(uint64_t seed, int64_t step, size_t k) {
  SplitMix64 g(seed ^ (static_cast<uint64_t>(step) << 20) ^ static_cast<uint64_t>(k));
  g.Next();
  return g.Next();
}

// Batches of one epoch at a time, in the order MakeBatches gives.
class BatchCursor {
 public:
  BatchCursor(const TrainDataset& data, int batch, uint64_t seed) : data_(data), batch_(batch), seed_(seed) {
    per_epoch_ =
        static_cast<int64_t>((data.sequences.size() + static_cast<size_t>(batch) - 1) / static_cast<size_t>(batch));
  }
  int64_t per_epoch() const { return per_epoch_; }
  // Micro-batch number m counted from the start of training.
  const std::vector<int32_t>& Get(int64_t m) {
    const int64_t epoch = m / per_epoch_;
    if (epoch != epoch_) {
      batches_ = MakeBatches(data_, batch_, seed_, epoch);
      epoch_ = epoch;
    }
    return batches_[static_cast<size_t>(m % per_epoch_)];
  }

 private:
  const TrainDataset& data_;
  int batch_;
  uint64_t seed_;
  int64_t per_epoch_ = 1;
  int64_t epoch_ = -1;
  std::vector<std::vector<int32_t>> batches_;
};

// Log lines of steps <= `step` from an existing log (a resumed run drops
// what the interrupted run logged after its last checkpoint).
std::vector<Json> ReadLogUpTo(const std::string& path, int64_t step) {
  std::vector<Json> kept;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json j = ParseBoundedJson<Json>(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("step", int64_t{-1}) <= step) kept.push_back(std::move(j));
  }
  return kept;
}

}  // namespace

double MeanLoss(const Model& model, LoraParams& params, const TrainDataset& data, int64_t limit, ThreadPool& pool) {
  LlamaTrainGraph graph(model, params);
  TrainRunOptions opt;
  opt.backward = false;
  double loss = 0;
  int64_t targets = 0;
  const size_t n = limit < 0 ? data.sequences.size() : std::min(data.sequences.size(), static_cast<size_t>(limit));
  for (size_t i = 0; i < n; ++i) {
    loss += graph.Run(data.sequences[i], opt, pool);
    targets += data.sequences[i].NumTargets();
  }
  return targets > 0 ? loss / static_cast<double>(targets) : 0.0;
}

TrainSummary TrainLora(const Model& model, const TrainDataset& train, const TrainDataset* val,
                       const TrainerOptions& options, ThreadPool& pool) {
  ValidateOptions(options);
  BatchCursor cursor(train, options.batch, options.seed);
  const int64_t total_steps = options.steps > 0
                                  ? options.steps
                                  : (options.epochs * cursor.per_epoch() + options.grad_accum - 1) / options.grad_accum;
  OptimizerConfig opt_config = options.optimizer;
  opt_config.total_steps = total_steps;
  LoraParams params(model.config(), options.lora);
  params.InitPeft(options.seed);
  AdamW optimizer(params, opt_config);
  LlamaTrainGraph graph(model, params);

  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) throw InputError("-o: cannot create directory " + options.out_dir + ": " + ec.message());
  const std::string checkpoint_path = (fs::path(options.out_dir) / "checkpoint.safetensors").string();
  const std::string log_path = (fs::path(options.out_dir) / "train_log.jsonl").string();
  std::string targets_text;
  for (ModuleKind k : options.lora.targets)
    targets_text += std::string(targets_text.empty() ? "" : ",") + ModuleName(k);
  const std::map<std::string, std::string> fingerprint = {{"rank", std::to_string(options.lora.rank)},
                                                          {"alpha", std::to_string(options.lora.alpha)},
                                                          {"targets", targets_text},
                                                          {"seed", std::to_string(options.seed)},
                                                          {"batch", std::to_string(options.batch)},
                                                          {"grad_accum", std::to_string(options.grad_accum)},
                                                          {"total_steps", std::to_string(total_steps)},
                                                          {"train_sequences", std::to_string(train.sequences.size())},
                                                          {"train_tokens", std::to_string(train.NumTokens())},
                                                          {"dropout", std::to_string(options.lora.dropout)},
                                                          {"lr", std::to_string(opt_config.lr)}};

  std::vector<Json> log;
  if (options.resume) {
    if (!fs::exists(checkpoint_path)) {
      throw InputError("--resume: no checkpoint at " + checkpoint_path + " (was --checkpoint-every set?)");
    }
    LoadCheckpoint(checkpoint_path, params, optimizer, fingerprint);
    log = ReadLogUpTo(log_path, optimizer.step());
  }
  std::string log_text;
  for (const Json& j : log) log_text += j.dump() + "\n";
  WriteFileAtomically(log_path, log_text);
  std::ofstream log_out(log_path, std::ios::app);
  auto write_log = [&](Json j) {
    log_out << j.dump() << "\n";
    log_out.flush();
    log.push_back(std::move(j));
  };

  TrainSummary summary;
  summary.first_step = optimizer.step();
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  TrainProgress progress(total_steps, summary.first_step, options.progress);
  auto validate = [&](int64_t step) {
    if (val == nullptr) return -1.0;
    const double v = MeanLoss(model, params, *val, options.val_limit, pool);
    write_log({{"step", step}, {"val_loss", v}});
    progress.SetValLoss(v);
    return v;
  };
  // A resumed run reuses the validation loss its checkpoint's step logged.
  for (const Json& j : log) {
    if (j.contains("val_loss") && j["step"].get<int64_t>() == summary.first_step) {
      summary.val_loss_first = j["val_loss"].get<double>();
      progress.SetValLoss(summary.val_loss_first);
    }
  }
  if (summary.val_loss_first < 0) summary.val_loss_first = validate(summary.first_step);
  // Speed and ETA count from here: the first validation is not training.
  start = std::chrono::steady_clock::now();
  progress.Restart();

  std::vector<const TrainSequence*> step_seqs;
  for (int64_t step = summary.first_step; step < total_steps; ++step) {
    step_seqs.clear();
    for (int g = 0; g < options.grad_accum; ++g) {
      for (int32_t i : cursor.Get(step * options.grad_accum + g))
        step_seqs.push_back(&train.sequences[static_cast<size_t>(i)]);
    }
    int64_t targets = 0, tokens = 0;
    for (const TrainSequence* s : step_seqs)
      targets += s->NumTargets(), tokens += static_cast<int64_t>(s->tokens.size());
    params.ZeroGrad();
    double loss = 0;
    TrainRunOptions run;
    run.grad_scale = targets > 0 ? 1.0 / static_cast<double>(targets) : 0.0;
    run.dropout = options.lora.dropout > 0;
    for (size_t k = 0; k < step_seqs.size(); ++k) {
      run.dropout_key = DropoutKey(options.seed, step, k);
      loss += graph.Run(*step_seqs[k], run, pool);
    }
    const double mean_loss = targets > 0 ? loss / static_cast<double>(targets) : 0.0;
    const double grad_norm = ClipGradNorm(params, opt_config.max_grad_norm);
    // A non-finite loss or gradient would poison the weights and every later
    // step: stop before the optimizer applies it. The adapter and checkpoint
    // already on disk (the last good ones) stay as they are.
    if (!std::isfinite(mean_loss) || !std::isfinite(grad_norm)) {
      throw InputError("train: step " + std::to_string(step + 1) + " has a non-finite " +
                       (std::isfinite(mean_loss) ? "gradient norm" : "loss") +
                       " — the run diverged; try a lower --lr or a --max-grad-norm (nothing was written for this "
                       "step; earlier checkpoints and adapters are kept)");
    }
    const double lr = optimizer.Step();
    summary.tokens += tokens;
    summary.target_tokens += targets;
    summary.last_loss = mean_loss;
    const int64_t done = step + 1;
    write_log({{"step", done},
               {"epoch", static_cast<double>(done * options.grad_accum) / static_cast<double>(cursor.per_epoch())},
               {"loss", mean_loss},
               {"lr", lr},
               {"grad_norm", grad_norm},
               {"tokens", tokens},
               {"target_tokens", targets},
               {"tokens_per_s", static_cast<double>(summary.tokens) / std::max(1e-9, elapsed())},
               {"elapsed_s", elapsed()}});
    progress.Update(done, mean_loss, summary.tokens);
    if (options.eval_every > 0 && done % options.eval_every == 0 && done < total_steps) validate(done);
    if (options.checkpoint_every > 0 && done % options.checkpoint_every == 0 && done < total_steps) {
      SaveCheckpoint(checkpoint_path, params, optimizer, fingerprint);
    }
    if (options.stop_after > 0 && done >= options.stop_after && done < total_steps) {
      progress.Finish(done, summary.tokens);
      summary.steps = done;
      summary.seconds = elapsed();
      summary.stopped = true;
      return summary;
    }
  }
  summary.steps = optimizer.step();
  summary.seconds = elapsed();
  summary.val_loss_last = summary.steps > summary.first_step ? validate(summary.steps) : summary.val_loss_first;
  progress.Finish(summary.steps, summary.tokens);

  const LoraAdapter adapter = params.ToAdapter(options.adapter_name, BaseQkRowOrder(model.config()));
  WritePeftAdapter(adapter, model.config(), options.out_dir);
  WriteAdapterProvenance(options.out_dir, DescribeTraining(model, options));
  std::vector<std::pair<double, double>> train_curve, val_curve;
  for (const Json& j : log) {
    if (j.contains("loss")) train_curve.emplace_back(j["step"].get<double>(), j["loss"].get<double>());
    if (j.contains("val_loss")) val_curve.emplace_back(j["step"].get<double>(), j["val_loss"].get<double>());
  }
  WriteFileAtomically((fs::path(options.out_dir) / "loss.svg").string(),
                      LossCurveSvg(train_curve, val_curve, "LoRA training: " + SourceFileName(train.source)));
  if (options.checkpoint_every > 0) SaveCheckpoint(checkpoint_path, params, optimizer, fingerprint);
  return summary;
}

}  // namespace tokenlora
