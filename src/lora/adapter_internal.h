// Helpers shared by the PEFT and GGUF adapter loaders and writers.
#pragma once

#include <optional>
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
LoraMatrix ReadLoraTensor(const TensorView& t, DType dtype, const std::string& who,
                          const std::string& tensor_name);

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
