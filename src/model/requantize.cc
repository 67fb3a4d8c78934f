#include "model/requantize.h"

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "kernels/quantize.h"

namespace tokenlora {
namespace {

// llama.cpp's LLAMA_FTYPE_* for files whose weights are mostly `t` (-1: none).
int FileType(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ4_1: return 3;
    case DType::kQ8_0: return 7;
    case DType::kQ5_0: return 8;
    case DType::kQ5_1: return 9;
    case DType::kQ6_K: return 18;
    case DType::kBF16: return 32;
    default: return -1;  // Q4_K/Q5_K have S/M variants; leave the key out
  }
}

}  // namespace

RequantizeResult RequantizeGguf(const std::string& in, const std::string& out, DType target, ThreadPool& pool) {
  namespace fs = std::filesystem;
  if (target == DType::kI32) throw InputError("quantize: I32 cannot hold weights; pick f16, q8_0, q4_0, ...");
  std::error_code ec;
  if (fs::is_directory(in, ec)) {
    throw InputError("quantize: " + in + " is a directory; quantize reads a GGUF file (convert a Hugging Face "
                     "model to GGUF first, e.g. with llama.cpp's convert_hf_to_gguf.py)");
  }
  if (fs::equivalent(in, out, ec)) throw InputError("quantize: -o " + out + " would overwrite the input");
  const GgufFile src = GgufFile::Open(in);
  GgufWriter g;
  for (const std::string& key : src.metadata_order()) {
    if (key != "general.file_type") g.SetValue(key, src.metadata().at(key));
  }
  if (FileType(target) >= 0) g.SetU32("general.file_type", static_cast<uint32_t>(FileType(target)));
  const int64_t block = Info(target).block_size;
  RequantizeResult r;
  std::vector<uint8_t> bytes;
  for (const GgufTensorInfo& info : src.tensors()) {
    const TensorView t = src.View(info);
    r.bytes_in += t.NumBytes();
    const int64_t cols = info.shape.back();
    const bool convert = info.shape.size() >= 2 && info.name.ends_with(".weight") && cols % block == 0 &&
                         info.dtype != target && info.dtype != DType::kI32;
    if (!convert) {
      g.AddTensor(info.name, info.dtype, info.shape, t.data, t.NumBytes());
      r.bytes_out += t.NumBytes();
      ++r.kept;
      continue;
    }
    const int64_t rows = t.NumElements() / cols;
    const size_t out_row = RowBytes(target, cols);
    bytes.assign(static_cast<size_t>(rows) * out_row, 0);
    pool.ParallelFor(static_cast<size_t>(rows), 16, [&](size_t begin, size_t end, int) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (size_t i = begin; i < end; ++i) {
        kernels::DequantizeRow(info.dtype, t.RowPtr(static_cast<int64_t>(i)), row.data(), cols);
        kernels::QuantizeRow(target, row.data(), bytes.data() + i * out_row, cols);
      }
    });
    g.AddTensor(info.name, target, info.shape, bytes.data(), bytes.size());
    r.bytes_out += bytes.size();
    ++r.converted;
  }
  g.Write(out);
  return r;
}

}  // namespace tokenlora
