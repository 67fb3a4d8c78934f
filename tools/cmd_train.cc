// `tokenlora train`: argument parsing only; the work is in src/train/.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "train/lora_params.h"
#include "train/optimizer.h"
#include "train/train_data.h"
#include "train/trainer.h"

namespace tokenlora::cli {
namespace {

// "dir/model.gguf" -> "model.gguf", "hf/SmolLM2/" -> "SmolLM2".
std::string ModelFileName(const std::string& path) {
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

RunFn AddTrainCommand(CLI::App& app) {
  struct Args {
    std::string model, data, val, tmpl, out, targets = "q_proj,v_proj", schedule = "cosine", name = "adapter",
                                             base_name;
    int rank = 64, batch = 4, grad_accum = 1, max_len = 512, threads = 0;
    float alpha = 16, dropout = 0.1f;
    double lr = 2e-4, weight_decay = 0.0, max_grad_norm = 1.0;
    int64_t epochs = 1, steps = 0, stop_after = 0, warmup = 0, eval_every = 0, val_limit = 200, limit = -1,
            checkpoint_every = 0;
    uint64_t seed = 0;
    bool resume = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("train", "Fine-tune a LoRA adapter on a JSONL data set (writes a PEFT directory)");
  cmd->add_option("-m,--model", a->model,
                  "base model: a .gguf file or a Hugging Face directory (default: the built-in SmolLM2-135M-Instruct)");
  cmd->add_option("--data", a->data, "training records: FILE.jsonl, optionally sliced: FILE.jsonl[:90%]")->required();
  cmd->add_option("--val", a->val, "validation records (same form), or none; their loss is logged")->default_str("none");
  cmd->add_option(
         "--template", a->tmpl,
         "gsm8k, arc_challenge, squad, codealpaca, or a template with {field}s and \"Answer:\" (the loss is on "
         "the text after it)")
      ->required();
  cmd->add_option("-o,--output", a->out, "output directory: the adapter, train_log.jsonl, loss.svg")->required();
  cmd->add_option("--rank", a->rank, "LoRA rank r")->capture_default_str();
  cmd->add_option("--alpha", a->alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  cmd->add_option("--dropout", a->dropout, "LoRA dropout on the adapters' inputs")->capture_default_str();
  cmd->add_option("--targets", a->targets,
                  "adapted projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
      ->capture_default_str();
  cmd->add_option("--lr", a->lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "learning-rate decay after warm-up: cosine, linear or constant")
      ->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "linear warm-up steps")->capture_default_str();
  cmd->add_option("--weight-decay", a->weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  cmd->add_option("--max-grad-norm", a->max_grad_norm, "clip the global gradient norm to this (0: no clipping)")
      ->capture_default_str();
  auto* epochs = cmd->add_option("--epochs", a->epochs, "passes over the data")->capture_default_str();
  cmd->add_option("--steps", a->steps, "optimizer steps (instead of --epochs)")->check(IntRange(1))->excludes(epochs);
  cmd->add_option("--batch", a->batch, "sequences per batch")->capture_default_str();
  cmd->add_option("--grad-accum", a->grad_accum, "batches per optimizer step")->capture_default_str();
  cmd->add_option("--max-len", a->max_len, "tokens per sequence (longer ones are cut)")->capture_default_str();
  cmd->add_option("--limit", a->limit, "use only the first N training records (after the slice)");
  cmd->add_option("--seed", a->seed, "seed of the LoRA init, batch order and dropout")
      ->check(IntRange(0, std::numeric_limits<long long>::max()))
      ->capture_default_str();
  cmd->add_option("--eval-every", a->eval_every, "steps between validation losses (0: before and after only)")
      ->capture_default_str();
  cmd->add_option("--val-limit", a->val_limit, "validation sequences used")->capture_default_str();
  cmd->add_option("--checkpoint-every", a->checkpoint_every,
                  "steps between checkpoints (OUT/checkpoint.safetensors, written atomically; 0: none)")
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume, "continue from OUT/checkpoint.safetensors with the same options");
  cmd->add_option("--stop-after", a->stop_after,
                  "stop after this step as if interrupted (continue later with --resume); no adapter is written");
  cmd->add_option("--name", a->name, "adapter name in messages")->capture_default_str();
  cmd->add_option("--base-name", a->base_name,
                  "the base model's Hugging Face id, written as base_model_name_or_path in adapter_config.json "
                  "(default: HuggingFaceTB/SmolLM2-135M-Instruct for the built-in model, else the model's file "
                  "name)");
  AddThreadsOption(cmd, &a->threads);
  cmd->add_flag("-q,--quiet", a->quiet, "no progress bar");
  return [a] {
    TrainerOptions o;
    o.lora.rank = a->rank;
    o.lora.alpha = a->alpha;
    o.lora.dropout = a->dropout;
    o.lora.targets = ParseTargetModules(a->targets, "--targets");
    o.optimizer.lr = a->lr;
    o.optimizer.weight_decay = a->weight_decay;
    o.optimizer.max_grad_norm = a->max_grad_norm;
    o.optimizer.schedule = ParseLrSchedule(a->schedule);
    o.optimizer.warmup_steps = a->warmup;
    o.epochs = a->epochs;
    o.steps = a->steps;
    o.batch = a->batch;
    o.grad_accum = a->grad_accum;
    o.seed = a->seed;
    o.eval_every = a->eval_every;
    o.val_limit = a->val_limit;
    o.checkpoint_every = a->checkpoint_every;
    o.resume = a->resume;
    o.stop_after = a->stop_after;
    o.out_dir = a->out;
    o.adapter_name = a->name;
    o.base_model_name = !a->base_name.empty() ? a->base_name
                        : a->model.empty()    ? std::string(kDefaultModelHfId)
                                              : ModelFileName(a->model);
    o.progress = a->quiet ? nullptr : stderr;
    {  // the output directory first: never lose a run to a bad -o
      std::error_code ec;
      if (std::filesystem::exists(a->out, ec) && !std::filesystem::is_directory(a->out, ec)) {
        throw InputError("-o " + a->out + ": exists and is not a directory; give a directory for the adapter");
      }
      std::filesystem::create_directories(a->out, ec);
      if (ec) throw InputError("-o " + a->out + ": cannot create the directory: " + ec.message());
      CheckWritableOutput((std::filesystem::path(a->out) / "adapter_config.json").string());
    }

    auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model);
    TrainDataOptions data_options;
    data_options.template_spec = a->tmpl;
    data_options.max_len = a->max_len;
    data_options.limit = a->limit;
    const TrainDataset train = LoadTrainData(a->data, data_options, model->tokenizer());
    std::unique_ptr<TrainDataset> val;
    if (!a->val.empty() && a->val != "none") {  // "none": the default the help shows
      data_options.limit = -1;
      val = std::make_unique<TrainDataset>(LoadTrainData(a->val, data_options, model->tokenizer(), "--val"));
    }
    ThreadPool pool(a->threads > 0 ? a->threads : DefaultThreads());
    std::fprintf(stderr,
                 "train: %s: %zu sequences, %lld tokens (%lld answer tokens, %lld cut to --max-len %d); r=%d alpha=%g "
                 "%s; %d threads, %s\n",
                 train.source.c_str(), train.sequences.size(), static_cast<long long>(train.NumTokens()),
                 static_cast<long long>(train.NumTargets()), static_cast<long long>(train.truncated), a->max_len,
                 a->rank, static_cast<double>(a->alpha), a->targets.c_str(), pool.size(), kernels::SimdTargetName());
    const TrainSummary s = TrainLora(*model, train, val.get(), o, pool);
    if (s.steps == s.first_step) {  // --resume of a finished run: no step ran, so no speed or loss to report
      std::fprintf(stderr, "train: no step to run: the checkpoint is at step %lld", static_cast<long long>(s.steps));
    } else {
      std::fprintf(stderr, "train: %lld steps (from %lld), %lld tokens in %.1f s = %.1f tok/s; last loss %.4f",
                   static_cast<long long>(s.steps), static_cast<long long>(s.first_step),
                   static_cast<long long>(s.tokens), s.seconds, s.tokens_per_second(), s.last_loss);
    }
    if (s.val_loss_first >= 0) {
      std::fprintf(stderr, "; validation loss %.4f -> %.4f", s.val_loss_first, s.val_loss_last);
    }
    if (s.stopped) {
      std::fprintf(stderr, "\ntrain: stopped after step %lld as asked; continue with --resume\n",
                   static_cast<long long>(s.steps));
    } else {
      std::fprintf(stderr, "\ntrain: adapter written to %s\n", a->out.c_str());
    }
    return 0;
  };
}

}  // namespace tokenlora::cli
