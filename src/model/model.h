// A loaded model: hyper-parameters, weights (views into the mapped file),
// and tokenizer. Immutable after load; sessions hold their own KV caches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/stream_buffer.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/llama/config.h"
#include "model/llama/weights.h"
#include "tokenizer/tokenizer.h"

namespace tokenlora {

struct ModelOptions {
  // Quantize activations to int8 per block of 32 for Q4_0/Q4_1/Q5_0/Q5_1/
  // Q8_0/Q4_K/Q5_K/Q6_K weights and run integer dot products
  // (kernels/int8_matmul.h): about 2x faster decoding on CPUs with AVX-512
  // VNNI (AVX2 has a kernel too), not f32-exact (llama.cpp computes these
  // types the same way). Ignored on CPUs without AVX2 and for other weight
  // types.
  bool int8_activations = false;
  // Copy (or, for int8, repack) every projection weight into one buffer in
  // the order a forward pass reads them, backed by transparent huge pages
  // (core/stream_buffer.h): decoding streams them with far fewer TLB misses.
  // Costs a copy of the projection weights at load; false keeps them as
  // views into the mapped file.
  bool stream_buffer = true;
  // Threads that repack / copy the weights into that buffer (0: every
  // physical core); the CLI passes its -t.
  int load_threads = 0;
};

class Model {
 public:
  // `path`: a .gguf file, or a Hugging Face model directory (config.json,
  // model.safetensors or its sharded index, tokenizer.json), or a
  // .safetensors file inside such a directory. Throws InputError.
  static std::unique_ptr<Model> Load(const std::string& path, const ModelOptions& options = {});

  const LlamaConfig& config() const { return config_; }
  const LlamaWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::vector<float>& rope_inv_freq() const { return rope_inv_freq_; }  // [head_dim / 2]
  const std::string& path() const { return path_; }
  // "gguf" or "safetensors"
  const std::string& format() const { return format_; }
  // Projections that run with int8 activations (0: all f32).
  int int8_projections() const { return int8_projections_; }
  // The buffer holding the projection weights (ModelOptions::stream_buffer),
  // or null when they are views into the mapped file.
  const StreamBuffer* weight_buffer() const { return weight_buffer_.get(); }

 private:
  Model() = default;
  void Finish();
  // Packs (int8) or copies the projections into weight_buffer_.
  void PlaceWeights(const ModelOptions& options);
  // Every layer's projections in forward order, then the output head.
  std::vector<Linear*> AllProjections();

  std::string path_;
  std::string format_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  LlamaConfig config_;
  LlamaWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<float> rope_inv_freq_;
  int int8_projections_ = 0;
  std::unique_ptr<StreamBuffer> weight_buffer_;
};

}  // namespace tokenlora
