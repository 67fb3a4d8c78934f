#include "model/project.h"

#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"

namespace tokenlora {

namespace {

void AddBias(const Linear& linear, int64_t n_tok, float* y) {
  if (linear.bias.empty()) return;
  const int64_t n_out = linear.n_out();
  for (int64_t t = 0; t < n_tok; ++t) kernels::AddInPlace(y + t * n_out, linear.bias.data(), n_out);
}

// Bias and adapter terms on top of y = x·Wᵀ.
void AddBiasAndHook(const Linear& linear, const float* x, int64_t n_tok, float* y,
                    const ForwardContext& ctx) {
  AddBias(linear, n_tok, y);
  if (ctx.hook != nullptr) ctx.hook->AddDelta(linear, x, n_tok, y, *ctx.pool);
}

}  // namespace

void Project(const Linear& linear, const float* x, int64_t n_tok, float* y,
             const ForwardContext& ctx) {
  if (linear.packed != nullptr) {
    kernels::MatMulInt8(*linear.packed, x, n_tok, y, *ctx.pool);
  } else {
    kernels::MatMul(linear.weight, x, n_tok, y, *ctx.pool);
  }
  AddBiasAndHook(linear, x, n_tok, y, ctx);
}

void ProjectShared(const Linear* const* linears, float* const* ys, int n, const float* x,
                   int64_t n_tok, const ForwardContext& ctx) {
  bool all_packed = n <= kernels::kMaxShared, none_packed = n <= kernels::kMaxShared;
  for (int i = 0; i < n; ++i) {
    const bool packed = linears[i]->packed != nullptr;
    all_packed = all_packed && packed && linears[i]->packed->dtype == linears[0]->packed->dtype;
    none_packed = none_packed && !packed;
  }
  if (all_packed) {
    const kernels::PackedMatrix* ws[kernels::kMaxShared] = {};
    for (int i = 0; i < n; ++i) ws[i] = linears[i]->packed.get();
    kernels::MatMulInt8Shared(ws, ys, n, x, n_tok, *ctx.pool);
  } else if (none_packed) {
    const TensorView* ws[kernels::kMaxShared] = {};
    for (int i = 0; i < n; ++i) ws[i] = &linears[i]->weight;
    kernels::MatMulShared(ws, ys, n, x, n_tok, *ctx.pool);
  } else {
    for (int i = 0; i < n; ++i) Project(*linears[i], x, n_tok, ys[i], ctx);
    return;
  }
  for (int i = 0; i < n; ++i) AddBias(*linears[i], n_tok, ys[i]);
  if (ctx.hook != nullptr) ctx.hook->AddDeltaShared(linears, ys, n, x, n_tok, *ctx.pool);
}

}  // namespace tokenlora
