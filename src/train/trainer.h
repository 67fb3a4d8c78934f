// The LoRA fine-tuning loop: seeded PEFT initialisation, length-bucketed
// batches, gradient accumulation, clipping, AdamW with a warm-up + decay
// schedule, validation loss at intervals, a JSONL log, atomic checkpoints
// with exact resume, and the adapter written as a PEFT directory.
//
// One optimizer step = grad_accum batches of `batch` sequences; its loss is
// the mean cross-entropy over all answer tokens of those sequences (the sum
// over sequences divided by their answer-token count), so a step's gradient
// does not depend on how its sequences are split into batches.
//
// Everything random is a function of the seed and the step: the batch order
// of epoch e (MakeBatches(seed, e)), and the dropout masks of sequence k of
// step s. A checkpoint therefore needs only the LoRA matrices, the AdamW
// moments and the step count to continue exactly.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/thread_pool.h"
#include "model/model.h"
#include "train/lora_params.h"
#include "train/optimizer.h"
#include "train/train_data.h"

namespace tokenlora {

struct TrainerOptions {
  LoraTrainConfig lora;
  OptimizerConfig optimizer;  // total_steps is set from steps/epochs
  int64_t epochs = 1;         // used when steps <= 0
  int64_t steps = 0;          // optimizer steps; > 0 overrides epochs
  int batch = 4;
  int grad_accum = 1;
  uint64_t seed = 0;
  int64_t eval_every = 0;        // steps between validation losses (0: only before and after)
  int64_t val_limit = 200;       // validation sequences used (the first ones)
  int64_t checkpoint_every = 0;  // steps between checkpoints (0: none)
  bool resume = false;           // continue from out_dir/checkpoint.safetensors
  // > 0: stop after this step as if interrupted (no adapter written; the
  // last checkpoint stays): a long schedule can be run in parts with --resume.
  int64_t stop_after = 0;
  std::string out_dir;  // the adapter, train_log.jsonl, loss.svg, checkpoint.safetensors
  std::string adapter_name = "adapter";
  // The base's Hugging Face id, for adapter_config.json base_model_name_or_path
  // ("" writes null); the base file's name and SHA-256 are recorded beside it.
  std::string base_model_name;
  std::FILE* progress = stderr;  // null: quiet
};

struct TrainSummary {
  int64_t steps = 0;          // optimizer steps done in all (including before a resume)
  int64_t first_step = 0;     // where this run started (0, or the checkpoint's step)
  int64_t tokens = 0;         // tokens run forward and backward in this run
  int64_t target_tokens = 0;  // answer tokens among them
  double seconds = 0;
  double last_loss = 0;        // mean loss of the last step
  double val_loss_first = -1;  // validation loss at first_step (the base model's when 0); −1 without --val
  double val_loss_last = -1;   // after the last step
  bool stopped = false;        // stopped early by stop_after: no adapter written
  double tokens_per_second() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0; }
};

// Mean cross-entropy per answer token over the first `limit` sequences (no
// dropout, no gradients).
double MeanLoss(const Model& model, LoraParams& params, const TrainDataset& data, int64_t limit, ThreadPool& pool);

// Trains and writes out_dir (adapter_config.json + adapter_model.safetensors,
// train_log.jsonl, loss.svg). adapter_config.json records the base model
// (name, file, SHA-256), the task type and the dropout applied
// (io/adapter_provenance.h). Throws InputError for bad options or a
// checkpoint that does not match them.
TrainSummary TrainLora(const Model& model, const TrainDataset& train, const TrainDataset* val,
                       const TrainerOptions& options, ThreadPool& pool);

}  // namespace tokenlora
