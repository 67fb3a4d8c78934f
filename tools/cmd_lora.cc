// `tokenlora merge` and `tokenlora convert-adapter`: argument parsing only;
// the work is in src/lora/merge.h.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/adapter_provenance.h"
#include "lora/adapter_bank.h"
#include "lora/merge.h"
#include "lora/mix_spec.h"
#include "model/model.h"

namespace tokenlora::cli {

RunFn AddMergeCommand(CLI::App& app) {
  struct Args {
    std::string model, out, mix, mix_mode = "exact", merged_type = "keep";
    std::vector<std::string> adapters;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("merge", "Bake a fixed mixture of LoRA adapters into the base weights");
  cmd->add_option(
      "-m,--model", a->model,
      "base model: a .gguf file or a Hugging Face directory (default: the built-in SmolLM2-135M-Instruct)");
  cmd->add_option("--adapter", a->adapters,
                  "LoRA adapter NAME=PATH: a PEFT directory or a llama.cpp LoRA .gguf (repeatable)")
      ->required();
  cmd->add_option("--mix", a->mix, "adapter weights NAME=W,... (default: every --adapter at weight 1)");
  cmd->add_option("--mix-mode", a->mix_mode,
                  "how weighted adapters combine: exact, peft-linear or peft04-linear")
      ->check(CLI::IsMember({"exact", "peft-linear", "peft04-linear"}));
  cmd->add_option("--merged-type", a->merged_type,
                  "type of the changed projections: keep (the base's type; quantized bases are "
                  "re-quantized), f16 or f32")
      ->check(CLI::IsMember({"keep", "f16", "f32"}));
  cmd->add_option("-o,--output", a->out,
                  "OUT.gguf for a GGUF base; a directory (or DIR/model.safetensors) for a Hugging Face base")
      ->required();
  AddThreadsOption(cmd, &a->threads);
  return [a] {
    auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model);
    AdapterBank bank(*model);
    for (const std::string& s : a->adapters) {
      const AdapterSpec spec = ParseAdapterSpec(s);
      bank.Load(spec.name, spec.path);
    }
    std::vector<std::pair<std::string, float>> mix;
    if (a->mix.empty()) {
      for (const std::string& name : bank.Names()) mix.emplace_back(name, 1.0f);
    } else {
      mix = ParseMixSpec(a->mix);
    }
    MergeOptions options;
    options.mode = ParseMixMode(a->mix_mode);
    if (a->merged_type != "keep") options.merged_type = a->merged_type == "f16" ? DType::kF16 : DType::kF32;
    ThreadPool pool(a->threads > 0 ? a->threads : DefaultThreads());
    const MergeResult r = MergeMixture(bank, mix, options, a->out, pool);
    std::fprintf(stderr, "merged %d projections into %s (%s)\n", r.merged_tensors, r.path.c_str(),
                 a->merged_type == "keep" ? "base type kept" : a->merged_type.c_str());
    return 0;
  };
}

RunFn AddConvertAdapterCommand(CLI::App& app) {
  struct Args {
    std::string in, out, model, outtype = "f32";
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "convert-adapter", "Convert a LoRA adapter between a PEFT directory and a llama.cpp LoRA .gguf");
  cmd->add_option("ADAPTER", a->in, "a PEFT adapter directory or a llama.cpp LoRA .gguf")->required();
  cmd->add_option("-o,--output", a->out, "OUT.gguf (llama.cpp LoRA) or a directory (PEFT)")->required();
  cmd->add_option("-m,--model", a->model,
                  "the base model the adapter belongs to, for shapes and head counts (default: the built-in "
                  "SmolLM2-135M-Instruct)");
  cmd->add_option("--outtype", a->outtype,
                  "tensor type of the output: f32 (default), f16, or q8_0 (.gguf output only; lora_B of a "
                  "rank that is not a multiple of 32 stays f16)");
  return [a] {
    const DType outtype = ParseAdapterStorage(a->outtype);
    auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model);
    ConvertAdapter(a->in, a->out, *model, outtype);
    const bool gguf = std::filesystem::path(a->out).extension() == ".gguf";
    // PEFT to PEFT keeps what the trainer recorded (base model, dropout).
    if (!gguf && std::filesystem::is_directory(a->in)) {
      if (const auto provenance = ReadAdapterProvenance(a->in)) WriteAdapterProvenance(a->out, *provenance);
    }
    std::fprintf(stderr, "wrote %s (%s)\n", a->out.c_str(),
                 gguf ? "llama.cpp LoRA GGUF" : "PEFT adapter directory");
    return 0;
  };
}

}  // namespace tokenlora::cli
