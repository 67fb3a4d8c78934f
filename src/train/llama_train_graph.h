// Training forward and backward of a Llama-family decoder with LoRA on some
// of its projections. The base model is frozen and stays in its file dtype
// (quantized weights are dequantized inside the kernels, as QLoRA does);
// only the LoRA matrices receive gradients.
//
// The math is LlamaForward's (embed → per layer RMSNorm → q/k/v (+bias) →
// RoPE → causal GQA attention → o → residual → RMSNorm → SwiGLU → residual →
// RMSNorm → logits), run on one sequence at a time with every activation the
// backward pass needs kept in memory. Logits are computed only at the
// positions whose next token is an answer token: the others carry no loss,
// and the output head is the largest projection of a small model.
//
// Sequences run one by one rather than right-padded side by side: a
// sequence of n tokens already gives the projections n-row matrix products
// (the prefill kernels' shape), padding would spend compute and memory on
// pad positions (attention is quadratic in the padded length) and need an
// attention mask, and a loop makes a batch's loss and gradients exactly the
// sum of its sequences' for any batch composition.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "train/lora_params.h"

namespace tokenlora {

// One training example: prompt tokens then answer tokens (then EOS). The
// loss is on predicting tokens [n_prompt, n): position t predicts t + 1.
struct TrainSequence {
  std::vector<int32_t> tokens;  // [n]
  int n_prompt = 0;             // 1 <= n_prompt <= n
  int64_t NumTargets() const { return static_cast<int64_t>(tokens.size()) - n_prompt; }
};

struct TrainRunOptions {
  bool backward = true;
  // Gradients added to the params are those of grad_scale × (summed loss).
  double grad_scale = 1.0;
  // LoRA dropout (training only): masks are a function of dropout_key, the
  // layer, the module and the element, so a key fixes them.
  bool dropout = false;
  uint64_t dropout_key = 0;
};

class LlamaTrainGraph {
 public:
  // `model` and `params` must outlive the graph. Throws InputError if a
  // target module has LoRA but the model has no such projection shape.
  LlamaTrainGraph(const Model& model, LoraParams& params);

  // Runs one sequence; returns the summed cross-entropy (natural log) over
  // its answer tokens, and with options.backward adds the gradients to the
  // params' grad_a / grad_b. Throws InputError for a token id outside the
  // vocabulary or a sequence longer than the model's context.
  double Run(const TrainSequence& seq, const TrainRunOptions& options, ThreadPool& pool);

 private:
  // What the backward pass of one adapted projection needs.
  struct LoraSaved {
    std::vector<float> x_dropped;  // [n, n_in]  dropout(x) (dropout only)
    std::vector<float> u;          // [n, rank]  A·dropout(x)
  };
  struct LayerSaved {
    std::vector<float> x_in;     // [n, d_model]  residual stream entering the layer
    std::vector<float> xn_attn;  // [n, d_model]  attn_norm(x_in)
    std::vector<float> q;        // [n, q_dim]    after RoPE
    std::vector<float> k;        // [n, kv_dim]   after RoPE
    std::vector<float> v;        // [n, kv_dim]
    std::vector<float> probs;    // [n_heads, n, n]
    std::vector<float> att;      // [n, q_dim]    attention output (input of o_proj)
    std::vector<float> x_mid;    // [n, d_model]  residual after attention
    std::vector<float> xn_ffn;   // [n, d_model]  ffn_norm(x_mid)
    std::vector<float> gate;     // [n, d_ff]     before SiLU
    std::vector<float> up;       // [n, d_ff]
    std::vector<float> h;        // [n, d_ff]     silu(gate)·up (input of down_proj)
    LoraSaved lora[kNumLoraKinds];
  };

  // y = x·Wᵀ (+ bias) + s·B·(A·dropout(x)) for n rows; saves what backward needs.
  void ProjectForward(const Linear& linear, int layer, const float* x, int n, float* y, LoraSaved& saved,
                      const TrainRunOptions& options, ThreadPool& pool);
  // Given dy [n, n_out]: LoRA gradients, and dx [n, n_in] += ∂L/∂x unless dx is null.
  void ProjectBackward(const Linear& linear, int layer, const float* x, int n, const float* dy, float* dx,
                       const LoraSaved& saved, const TrainRunOptions& options, ThreadPool& pool);
  void Forward(const TrainSequence& seq, const TrainRunOptions& options, ThreadPool& pool);
  double LossAndHeadBackward(const TrainSequence& seq, const TrainRunOptions& options, ThreadPool& pool);
  void Backward(int n, const TrainRunOptions& options, ThreadPool& pool);

  const Model& model_;
  LoraParams& params_;
  std::vector<LayerSaved> layers_;          // [n_layers]
  std::vector<float> x_final_;              // [n, d_model]  residual after the last layer
  std::vector<float> cos_, sin_, neg_sin_;  // [n, head_dim / 2]
  // Scratch.
  std::vector<float> xn_rows_;             // [n_targets, d_model]
  std::vector<float> logits_;              // [n_targets, vocab]
  std::vector<float> dx_;                  // [n, d_model]  gradient of the residual stream
  std::vector<float> dxn_;                 // [n, d_model]
  std::vector<float> d_att_;               // [n, q_dim]
  std::vector<float> dq_, dk_, dv_;        // [n, q_dim], [n, kv_dim], [n, kv_dim]
  std::vector<float> d_scores_;            // [n_heads, n, n]
  std::vector<float> dh_, d_gate_, d_up_;  // [n, d_ff]
  std::vector<float> lora_tmp_;            // [n, max(n_in, n_out)]
  std::vector<float> du_;                  // [n, rank]
  std::vector<float> du_t_;                // [rank, n]
  std::vector<float> dy_t_;                // [n_out, n]
};

// A [rows, cols] f32 view of a LoRA matrix, for the MatMul kernels.
inline TensorView F32View(const std::vector<float>& values, int64_t rows, int64_t cols, const char* name) {
  return TensorView{name, DType::kF32, {rows, cols}, values.data()};
}

}  // namespace tokenlora
