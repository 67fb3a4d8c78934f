// scalar::MatMul: the single-threaded reference for MatMul. Each weight row
// is dequantized by the scalar twin and dotted with every token in order.
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"

namespace tokenlora::kernels::scalar {

void MatMul(const TensorView& w, const float* x, int64_t n_tok, float* y) {
  const int64_t n_out = w.Rows();
  const int64_t n_in = w.Cols();
  TL_CHECK_MSG(w.dtype != DType::kI32 && n_in % Info(w.dtype).block_size == 0,
               "scalar::MatMul: weight '" + w.name + "' has no weight dtype or a partial block");
  std::vector<float> row(static_cast<size_t>(n_in));  // once per call, outside the loops
  for (int64_t o = 0; o < n_out; ++o) {
    DequantizeRow(w.dtype, w.RowPtr(o), row.data(), n_in);
    for (int64_t t = 0; t < n_tok; ++t) y[t * n_out + o] = Dot(row.data(), x + t * n_in, n_in);
  }
}

}  // namespace tokenlora::kernels::scalar
