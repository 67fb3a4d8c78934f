// Helpers shared by the PEFT and GGUF adapter loaders and writers.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lora/adapter.h"

namespace tokenlora::lora_internal {

// "adapter 'math' ('/data/math')" — the prefix of every message about an adapter.
std::string Who(const std::string& name, const std::string& path);

// s = alpha / r, or alpha / √r with rsLoRA (Kalajdzievski 2023).
float LoraScale(float alpha, int rank, bool use_rslora);

// Converts a file tensor into storage `dtype`, refusing NaN/Inf (a corrupt or
// diverged adapter would otherwise poison every token it touches).
// InputError naming `what` when a value does not fit f16 (|x| > 65504):
// stored as f16 it would turn into Inf.
void CheckFitsF16(std::span<const float> values, const std::string& what);
LoraMatrix ReadLoraTensor(const TensorView& t, DType dtype, const std::string& who,
                          const std::string& tensor_name);

// A matrix as a writer stores it: f32 and f16 as they are; Q8_0 as plain
// ggml Q8_0 blocks with value_scale folded into the block scales (GGUF), or
// as f32 (safetensors, which has no Q8_0). Requantizing the true values
// gives the stored quants back exactly wherever a block's scale is a normal
// f16, so the GGUF tensor holds the values the mixer ran with.
struct FileTensor {
  DType dtype = DType::kF32;
  std::vector<uint8_t> bytes;  // [rows, cols] elements of `dtype`
};
FileTensor EncodeForFile(const LoraMatrix& m, bool gguf);

// Sorts modules by (layer, kind) and refuses duplicates.
void SortModules(LoraAdapter& adapter, const std::string& who);

// The most common rank and alpha of the modules (what a writer puts in r /
// lora_alpha; the rest go to rank_pattern / alpha_pattern).
int MostCommonRank(const LoraAdapter& adapter);

// B's rows in the order `to` for a q/k module of `base` (a copy; other
// modules and matching orders come back unchanged).
LoraMatrix BRowsInOrder(const LoraModule& m, const LlamaConfig& base, QkRowOrder from, QkRowOrder to);

// Tensor names are parsed by hand (they are fixed dotted paths):
// "a.b.c" → {"a", "b", "c"}.
std::vector<std::string_view> SplitDots(std::string_view s);
// A layer index: decimal digits only, below 1,000,000.
std::optional<int> ParseLayerIndex(std::string_view s);
// "q_proj" → kQ ... "down_proj" → kDown (projections LoRA may adapt).
std::optional<ModuleKind> KindFromHfName(std::string_view name);
// "attn_q" → kQ ... "ffn_down" → kDown.
std::optional<ModuleKind> KindFromGgufRole(std::string_view role);
const char* GgufRole(ModuleKind kind);

}  // namespace tokenlora::lora_internal
