// Safetensors writer. The reference reader (the Rust `safetensors` crate
// behind the Python package) demands that tensor data be contiguous and
// cover the data section exactly, and that the header start with '{'; it
// pads the header with spaces to a multiple of 8 bytes so that data stays
// aligned, and so do we.
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/io_util.h"
#include "io/safetensors.h"

namespace tokenlora {
namespace {

using io_internal::Quote;
using Json = nlohmann::ordered_json;

constexpr size_t kHeaderAlignment = 8;

}  // namespace

void SafetensorsWriter::SetMetadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::AddTensor(const std::string& name, DType dtype,
                                  const std::vector<int64_t>& shape, const void* data,
                                  size_t num_bytes) {
  const std::string what = "safetensors tensor " + Quote(name);
  if (name == "__metadata__") throw InputError(what + ": the name is reserved for metadata");
  for (const Tensor& t : tensors_) {
    if (t.name == name) throw InputError(what + " is added twice");
  }
  if (SafetensorsName(dtype).empty()) {
    throw InputError(what + ": dtype " + std::string(Name(dtype)) +
                     " cannot be stored in safetensors (F32, F16, BF16 and I32 can); "
                     "write quantized tensors to GGUF");
  }
  const std::optional<uint64_t> n = io_internal::CheckedProduct(shape);
  const std::optional<uint64_t> bytes =
      n ? io_internal::CheckedMul(*n, Info(dtype).block_bytes) : std::nullopt;
  if (!bytes || *bytes != num_bytes) {
    throw InputError(what + ": " + std::string(SafetensorsName(dtype)) + " " + ShapeString(shape) +
                     " takes " + (bytes ? std::to_string(*bytes) : std::string("an invalid number of")) +
                     " bytes, got " + std::to_string(num_bytes));
  }
  TL_CHECK(data != nullptr || num_bytes == 0);
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back(Tensor{name, dtype, shape, std::vector<uint8_t>(p, p + num_bytes)});
}

std::string SafetensorsWriter::Serialize() const {
  Json header = Json::object();
  if (!metadata_.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    header[t.name] = {{"dtype", std::string(SafetensorsName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text;
  try {
    text = header.dump();  // strict: throws on invalid UTF-8
  } catch (const Json::exception& e) {
    throw InputError(std::string("safetensors header: a tensor name or metadata string is not "
                                 "valid UTF-8 (") + e.what() + ")");
  }
  text.append((kHeaderAlignment - text.size() % kHeaderAlignment) % kHeaderAlignment, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t header_bytes = text.size();
  char len[8];
  std::memcpy(len, &header_bytes, 8);  // little-endian host (checked in safetensors.cc)
  out.append(len, 8);
  out += text;
  for (const Tensor& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return out;
}

void SafetensorsWriter::Write(const std::string& path) const {
  WriteFileAtomically(path, Serialize());
}

}  // namespace tokenlora
