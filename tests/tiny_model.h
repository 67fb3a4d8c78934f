// Tiny random Llama-family models written by our own GGUF and safetensors
// writers, one per architecture, file format and weight type. The weights
// come from a fixed-seed generator, so every run writes the same bytes; the
// golden logits for them come from transformers (scripts/make_golden_tiny.py).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace tokenlora::testing {

struct TinySpec {
  std::string arch;    // "llama" or "qwen2"
  std::string format;  // "gguf" or "safetensors"
  DType dtype;         // type of the 2-D weights (norms and biases stay f32 in GGUF)
  bool llama3_rope = false;  // Llama 3 rope scaling (safetensors config.json)
  std::string Name() const;  // "llama_gguf_q4_K", "llama_safetensors_f32_rope_llama3"
};

inline void PrintTo(const TinySpec& spec, std::ostream* os) { *os << spec.Name(); }

// Every combination the golden file covers.
std::vector<TinySpec> AllTinySpecs();

// Writes the model under `dir` and returns what Model::Load takes: the .gguf
// file, or the Hugging Face directory.
std::string WriteTinyModel(const TinySpec& spec, const std::string& dir);

// The token ids the golden logits were computed for.
std::vector<int32_t> TinyPromptIds();

}  // namespace tokenlora::testing
