#include "model/project.h"

#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"

namespace tokenlora {

void Project(const Linear& linear, const float* x, int64_t n_tok, float* y,
             const ForwardContext& ctx) {
  if (linear.packed != nullptr) {
    kernels::MatMulInt8(*linear.packed, x, n_tok, y, *ctx.pool);
  } else {
    kernels::MatMul(linear.weight, x, n_tok, y, *ctx.pool);
  }
  if (!linear.bias.empty()) {
    const int64_t n_out = linear.n_out();
    for (int64_t t = 0; t < n_tok; ++t) kernels::AddInPlace(y + t * n_out, linear.bias.data(), n_out);
  }
  if (ctx.hook != nullptr) ctx.hook->AddDelta(linear, x, n_tok, y, *ctx.pool);
}

}  // namespace tokenlora
