// TensorView: a non-owning view of a dense row-major tensor (weights mapped
// from a file, or activations). Shapes are written outermost first, as
// PyTorch writes them: a linear weight is [n_out, n_in] and each of its n_out
// rows holds n_in elements (ggml's ne[] is the reverse of this).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace tokenlora {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  const void* data = nullptr;

  int64_t NumElements() const;
  int64_t Rows() const;  // product of all but the last dim (1 for a vector)
  int64_t Cols() const;  // last dim
  size_t NumBytes() const { return static_cast<size_t>(Rows()) * RowBytes(dtype, Cols()); }
  const uint8_t* RowPtr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * RowBytes(dtype, Cols());
  }
};

std::string ShapeString(const std::vector<int64_t>& shape);  // "[576, 49152]"

}  // namespace tokenlora
