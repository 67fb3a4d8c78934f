// The pieces of the Llama forward pass that training needs in a saving form
// (attention keeps its probabilities) and their backward passes. Plain C++
// over spans and dimensions, threaded through the pool where the work is
// quadratic in the sequence length; each output element is computed by one
// thread in a fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace tokenlora::train {

// Causal attention over one sequence (shape.n_past must be 0), keeping the
// softmax probabilities for the backward pass.
//   q:     [n, n_heads, head_dim]     (after RoPE)
//   k, v:  [n, n_kv_heads, head_dim]  (k after RoPE)
//   probs: [n_heads, n, n]  row (h, t): softmax over s <= t of q·k/√head_dim, 0 for s > t
//   out:   [n, n_heads, head_dim]
void AttentionForward(const float* q, const float* k, const float* v, float* probs, float* out,
                      const kernels::AttentionShape& shape, ThreadPool& pool);

// Gradients of AttentionForward given d_out [n, n_heads, head_dim]:
// dq [n, n_heads, head_dim], dk, dv [n, n_kv_heads, head_dim] (overwritten).
// d_scores: scratch [n_heads, n, n] (the gradient w.r.t. the pre-softmax
// scores, scale included).
void AttentionBackward(const float* q, const float* k, const float* v, const float* probs, const float* d_out,
                       float* dq, float* dk, float* dv, float* d_scores, const kernels::AttentionShape& shape,
                       ThreadPool& pool);

// y = x / √(mean(x²) + eps) · weight  →  dx += ∂L/∂x given dy (one row of n).
//   dx = r·(w⊙dy) − (r³/n)·x·Σ_i x_i·w_i·dy_i,   r = 1/√(mean(x²) + eps)
void RmsNormBackwardAdd(const float* x, const float* weight, const float* dy, float* dx, int64_t n, float eps);

// h = silu(gate)·up  →  d_gate = dh·up·silu'(gate), d_up = dh·silu(gate);
// silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
void SiluMulBackward(const float* gate, const float* up, const float* dh, float* d_gate, float* d_up, int64_t n);

// Cross-entropy of one row of logits [vocab] against `label`: returns
// −log softmax(logits)[label] (double) and replaces logits by its gradient
// times `grad_scale`: (softmax − onehot(label))·grad_scale.
double CrossEntropyWithGrad(float* logits, int64_t vocab, int32_t label, float grad_scale);
// The same without the gradient (logits left as they are).
double CrossEntropy(const float* logits, int64_t vocab, int32_t label);

}  // namespace tokenlora::train
