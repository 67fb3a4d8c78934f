// An independent double-precision forward of a Llama-family model with LoRA
// (no dropout), written plainly from the definitions, for checking the
// trainer: its loss against the trainer's, and its central finite
// differences against the trainer's analytic gradients.
#pragma once

#include <vector>

#include "model/model.h"
#include "train/llama_train_graph.h"
#include "train/lora_params.h"

namespace tokenlora::testing {

class ReferenceLlama {
 public:
  // Dequantizes every weight of `model` once (to f32 by the scalar kernels, then double).
  explicit ReferenceLlama(const Model& model);

  // Σ over the answer tokens of −log p(token), in double, with the LoRA
  // matrices of `params` (A, B in f32, computed in double).
  double SummedLoss(const LoraParams& params, const TrainSequence& seq) const;

 private:
  struct Matrix {
    int64_t rows = 0, cols = 0;
    std::vector<double> v;     // [rows, cols]
    std::vector<double> bias;  // [rows] or empty
  };
  static Matrix FromLinear(const Linear& linear);
  // y [n, rows] = x [n, cols] · Wᵀ + bias + s·B·A·x (LoRA of (layer, kind) when present).
  std::vector<double> Apply(const Matrix& w, const std::vector<double>& x, int64_t n, const LoraParams& params,
                            int layer, ModuleKind kind) const;

  const Model& model_;
  std::vector<std::vector<Matrix>> layers_;  // [n_layers][q, k, v, o, gate, up, down]
  Matrix output_, embed_;
};

}  // namespace tokenlora::testing
