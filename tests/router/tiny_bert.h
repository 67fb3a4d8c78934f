// A tiny random sentence-transformers BERT written by our own safetensors
// writer (2 layers, d_model 16, 4 heads, 12-token vocabulary), and a naive
// reference forward pass to check the encoder against without the real model.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace tokenlora::testing {

struct TinyBertFiles {
  nlohmann::json config;           // config.json
  nlohmann::json modules;          // modules.json
  nlohmann::json pooling;          // 1_Pooling/config.json
  nlohmann::json sentence_config;  // sentence_bert_config.json
  // Tensor name -> (shape, values); written as F32.
  std::vector<std::pair<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>> tensors;
};

// The default tiny model (fixed seed): 10 positions, max_seq_length 8.
TinyBertFiles TinyBert(int positions = 10, int max_seq_length = 8);
// Writes `files` (+ a vocab.txt) into a fresh directory and returns it.
std::string WriteTinyBert(const TinyBertFiles& files);

// The same model as a GGUF file of llama.cpp's `bert` architecture (2-D
// weights in `dtype`, the rest f32); returns its path.
std::string WriteTinyBertGguf(const TinyBertFiles& files, DType dtype);

// Sentence embedding of `ids` by a direct, loop-by-loop transcription of
// BertModel + mean pooling + normalisation (double precision).
std::vector<float> ReferenceEmbedding(const TinyBertFiles& files, const std::vector<int32_t>& ids);

// The tiny vocabulary: [PAD] [UNK] [CLS] [SEP] [MASK] the cat sat on mat ##s .
std::vector<std::string> TinyVocab();

}  // namespace tokenlora::testing
