// Small ops the BERT encoder needs beyond src/kernels (whose LayerNorm and
// GeluErf it uses): the bias add after its projections.
#pragma once

#include <cstdint>

namespace tokenlora::bert_ops {

// y[i] += bias[i]
void AddBias(float* y, const float* bias, int64_t n);

}  // namespace tokenlora::bert_ops
