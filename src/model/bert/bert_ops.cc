#include "model/bert/bert_ops.h"

namespace tokenlora::bert_ops {

void AddBias(float* y, const float* bias, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += bias[i];
}

}  // namespace tokenlora::bert_ops
