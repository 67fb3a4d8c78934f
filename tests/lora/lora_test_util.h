// Shared pieces of the LoRA tests: random adapters built in memory, the tiny
// Llama base in both file formats, and logits helpers.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "lora/adapter.h"
#include "lora/mixer.h"
#include "model/model.h"

namespace tokenlora::testing {

// Logit tolerance of Q8_0 adapter storage against f32 storage, relative to
// the adapters' own effect D = max |logits(f32 adapters) − logits(base)|:
// |q8_0 − f32| <= kQ8RelTol·D + kQ8AbsTol. Q8_0 keeps every value within
// amax·(1/254 + 2^-11) of the original (amax: its block's largest
// magnitude). For weights spread evenly in their block (uniform: PEFT's
// kaiming init of lora_A, RandomAdapter), the rounding errors have RMS
// amax/(127·√12) against the values' amax/√3: 1/254 = 0.39% of a Q8_0
// matrix in norm, at most √3·(1/254 + 2^-11) = 0.77% if every error took
// its worst value. ΔW = s·B·A with both in Q8_0 (r % 32 == 0) is then off
// by √2·0.39% = 0.55% (independent errors), at most 1.5%. To first order
// the logits move by that fraction of D when the errors line up with ΔW,
// less otherwise. 3% of D is twice the aligned worst case, leaving room for
// the non-linear layers (softmax, SiLU, RMSNorm); 1e-4 is f32 summation
// noise, as in the PEFT goldens. Measured: 0.2–0.6% of D.
inline constexpr float kQ8RelTol = 0.03f;
inline constexpr float kQ8AbsTol = 1e-4f;

// A random adapter for `base`: rank `rank` on every layer's `kinds`, A and B
// uniform with magnitudes that give a visible but moderate change.
LoraAdapter RandomAdapter(const LlamaConfig& base, const std::string& name, int rank, float alpha,
                          const std::vector<ModuleKind>& kinds, uint64_t seed, DType storage = DType::kF32,
                          bool use_rslora = false);

// The tiny llama safetensors f32 model (tests/tiny_model.h) and the same
// model as GGUF with q/k rows permuted the way convert_hf_to_gguf does, so
// both compute the same function. Returns the paths Model::Load takes.
std::string WriteTinyLlamaSafetensors(const std::string& dir);
std::string WriteTinyLlamaGgufPermuted(const std::string& dir);

// All logits [n, vocab] of `ids` from a fresh KV cache; `hook` may be null.
std::vector<float> RunLogits(const Model& model, const std::vector<int32_t>& ids, const ProjectionHook* hook,
                             ThreadPool& pool, int max_batch = 256);

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b);

// Success when `text` contains `part`; the failure shows both.
::testing::AssertionResult Contains(const std::string& text, const std::string& part);

// The 8-token prompt of the PEFT goldens (tests/golden/lora/peft_logits.json).
std::vector<int32_t> LoraPromptIds();

}  // namespace tokenlora::testing
