// A loaded model: hyper-parameters, weights (views into the mapped file),
// and tokenizer. Immutable after load; sessions hold their own KV caches.
#pragma once

#include <memory>
#include <string>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/llama/config.h"
#include "model/llama/weights.h"
#include "tokenizer/tokenizer.h"

namespace tokenlora {

class Model {
 public:
  // `path`: a .gguf file, or a Hugging Face model directory (config.json,
  // model.safetensors or its sharded index, tokenizer.json), or a
  // .safetensors file inside such a directory. Throws InputError.
  static std::unique_ptr<Model> Load(const std::string& path);

  const LlamaConfig& config() const { return config_; }
  const LlamaWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::vector<float>& rope_inv_freq() const { return rope_inv_freq_; }  // [head_dim / 2]
  const std::string& path() const { return path_; }
  // "gguf" or "safetensors"
  const std::string& format() const { return format_; }

 private:
  Model() = default;
  void Finish();

  std::string path_;
  std::string format_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  LlamaConfig config_;
  LlamaWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<float> rope_inv_freq_;
};

}  // namespace tokenlora
