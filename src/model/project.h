// The one choke point every linear layer of every model goes through:
//   y = x·Wᵀ + b + (adapter deltas)
// LoRA adapters plug in here through a ProjectionHook, so no model code
// knows about adapters.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "model/llama/weights.h"

namespace tokenlora {

// Adds extra terms to a projection's output (LoRA mixtures). Implementations
// know the per-token mixture weights of the batch being run.
class ProjectionHook {
 public:
  virtual ~ProjectionHook() = default;
  // x: [n_tok, n_in], y: [n_tok, n_out] (already holds x·Wᵀ + b).
  virtual void AddDelta(const Linear& linear, const float* x, int64_t n_tok, float* y,
                        ThreadPool& pool) const = 0;
  // AddDelta(*linears[i], x, n_tok, ys[i]) for i < n: projections of one
  // input (q/k/v, gate/up), so an implementation may share work on x.
  virtual void AddDeltaShared(const Linear* const* linears, float* const* ys, int n, const float* x,
                              int64_t n_tok, ThreadPool& pool) const {
    for (int i = 0; i < n; ++i) AddDelta(*linears[i], x, n_tok, ys[i], pool);
  }
};

struct ForwardContext {
  ThreadPool* pool = nullptr;
  const ProjectionHook* hook = nullptr;  // null: the base model alone
};

// x: [n_tok, n_in] -> y: [n_tok, n_out]
void Project(const Linear& linear, const float* x, int64_t n_tok, float* y,
             const ForwardContext& ctx);

// Project(*linears[i], x, n_tok, ys[i], ctx) for i < n, projections of one
// input (q/k/v, gate/up). When all run int8 activations of one dtype, the
// input is quantized once and the matmuls share one parallel region; when
// none does (f32 activations), they share one region of MatMulShared. The
// results are the same as separate Project calls.
void ProjectShared(const Linear* const* linears, float* const* ys, int n, const float* x,
                   int64_t n_tok, const ForwardContext& ctx);

}  // namespace tokenlora
