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
