// Baking a fixed adapter mixture into the base weights (`tokenlora merge`),
// for users who want one blend at zero run-time cost, and converting
// adapters between PEFT and llama.cpp GGUF (`tokenlora convert-adapter`).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "lora/adapter_bank.h"
#include "lora/mixer.h"

namespace tokenlora {

struct MergeOptions {
  MixMode mode = MixMode::kExact;
  // Type of the merged projections. nullopt keeps the base's own type:
  // float bases stay float; quantized bases are re-quantized with
  // QuantizeRow (same size and speed as the base, plus that type's rounding
  // of W + ΔW). kF16 or kF32 store the merged projections unquantized.
  std::optional<DType> merged_type = std::nullopt;
};

struct MergeResult {
  std::string path;        // the file written (OUT.gguf, or DIR/model.safetensors)
  int merged_tensors = 0;  // projections that changed
};

// W' = W + ΔW for every projection an adapter of `mixture` (name, weight)
// adapts, ΔW being what the mixer adds for that fixed mixture in
// `options.mode` (exact: Σ w·s·B·A). A GGUF base gives `out` = a .gguf file
// with every other tensor and all metadata copied; a Hugging Face base gives
// a directory (`out`, or the directory of `out` = .../model.safetensors)
// with model.safetensors and the base's config and tokenizer files. Throws
// InputError for bad names, weights, or output paths.
MergeResult MergeMixture(const AdapterBank& bank, const std::vector<std::pair<std::string, float>>& mixture,
                         const MergeOptions& options, const std::string& out, ThreadPool& pool);

// ΔW [n_out, n_in] (f32) that `mixture` adds to (layer, kind); empty when no
// weighted adapter adapts it. Weights by bank slot: [kMaxAdapters].
std::vector<float> MixtureDelta(const AdapterBank& bank, const float* slot_weights, MixMode mode, int layer,
                                ModuleKind kind, ThreadPool& pool);

// Reads an adapter (PEFT directory or LoRA GGUF), checks it against `base`,
// and writes it in the other format: `out` ending in .gguf gives a llama.cpp
// LoRA GGUF, anything else a PEFT directory. q/k rows are reordered for the
// target format. `storage`: f32, f16 or q8_0 tensors in the output (q8_0:
// GGUF only, as convert_lora_to_gguf --outtype q8_0 writes it: lora_B of a
// rank that is not a multiple of 32 stays f16).
void ConvertAdapter(const std::string& in, const std::string& out, const Model& base, DType storage);

}  // namespace tokenlora
