// The trainable LoRA matrices of one adapter being fine-tuned, with their
// gradients. PEFT semantics for every adapted projection W [n_out, n_in]:
//
//   y = W·x + s·B·(A·dropout(x)),   s = alpha / rank
//
// A [rank, n_in] starts as kaiming_uniform(a=√5), i.e. U(−1/√n_in, 1/√n_in)
// (what PEFT's reset_lora_parameters does), B [n_out, rank] as zeros, so the
// adapter starts as the base model. Only A and B are trained.
//
// q_proj/k_proj rows follow the base's row order (GGUF llama files
// interleave each head's halves, see QkRowOrder); ToAdapter() records that
// order so WritePeftAdapter writes Hugging Face order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lora/adapter.h"
#include "model/llama/config.h"
#include "model/llama/weights.h"

namespace tokenlora {

struct LoraTrainConfig {
  int rank = 64;
  float alpha = 16.0f;
  float dropout = 0.0f;  // probability of zeroing an input of A (PEFT lora_dropout)
  std::vector<ModuleKind> targets = {ModuleKind::kQ, ModuleKind::kV};
};

// "q_proj,v_proj" → kinds, in the order given. Accepts q, k, v, o, gate, up,
// down with or without "_proj". Throws InputError naming `field`.
std::vector<ModuleKind> ParseTargetModules(const std::string& text, const std::string& field);

struct TrainableModule {
  int layer = 0;
  ModuleKind kind = ModuleKind::kQ;
  int64_t n_in = 0, n_out = 0;
  std::vector<float> a;       // [rank, n_in]   lora_A
  std::vector<float> b;       // [n_out, rank]  lora_B
  std::vector<float> grad_a;  // [rank, n_in]
  std::vector<float> grad_b;  // [n_out, rank]
};

class LoraParams {
 public:
  // A and B zero; call InitPeft() or set them. Throws InputError for a rank
  // < 1, alpha <= 0, dropout outside [0, 1) or no targets.
  LoraParams(const LlamaConfig& base, LoraTrainConfig config);

  // A ~ U(−1/√n_in, 1/√n_in) from a generator seeded by `seed` (modules in
  // (layer, kind) order, A row-major), B = 0.
  void InitPeft(uint64_t seed);
  void ZeroGrad();

  const LoraTrainConfig& config() const { return config_; }
  int rank() const { return config_.rank; }
  float scale() const { return config_.alpha / static_cast<float>(config_.rank); }
  // null when (layer, kind) is not adapted.
  TrainableModule* Find(int layer, ModuleKind kind) {
    const int32_t i = index_[Slot(layer, kind)];
    return i < 0 ? nullptr : &modules_[static_cast<size_t>(i)];
  }
  const TrainableModule* Find(int layer, ModuleKind kind) const {
    const int32_t i = index_[Slot(layer, kind)];
    return i < 0 ? nullptr : &modules_[static_cast<size_t>(i)];
  }
  std::vector<TrainableModule>& modules() { return modules_; }
  const std::vector<TrainableModule>& modules() const { return modules_; }
  int64_t NumParameters() const;

  // An f32 LoraAdapter of the current A and B (q/k rows in `base_rows`
  // order) for WritePeftAdapter.
  LoraAdapter ToAdapter(const std::string& name, QkRowOrder base_rows) const;

 private:
  size_t Slot(int layer, ModuleKind kind) const {
    return static_cast<size_t>(layer) * kNumLoraKinds + static_cast<size_t>(LoraKindIndex(kind));
  }
  LoraTrainConfig config_;
  std::vector<TrainableModule> modules_;  // sorted by (layer, kind)
  std::vector<int32_t> index_;            // [n_layers · kNumLoraKinds] → modules_ index, −1: none
};

// splitmix64: portable, so a seed gives the same numbers everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Uniform01() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t s_;
};

// A stateless hash of (key, index) → uniform [0, 1): dropout masks are a
// function of (seed, step, sequence, layer, module, element), so they do not
// depend on the order or the thread that draws them.
inline double HashUniform01(uint64_t key, uint64_t index) {
  SplitMix64 g(key ^ (index * 0xd1b54a32d192ed03ull));
  return g.Uniform01();
}

// The dropout key of one adapted module, derived from a sequence's key:
// forward and backward draw the same mask from it.
inline uint64_t ModuleDropoutKey(uint64_t key, int layer, ModuleKind kind) {
  SplitMix64 g(key + static_cast<uint64_t>(layer) * kNumLoraKinds + static_cast<uint64_t>(LoraKindIndex(kind)));
  return g.Next();
}

}  // namespace tokenlora
