// GGUF v2/v3 reader (over mmap) and writer.
// Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/mapped_file.h"
#include "tensor/tensor.h"

namespace tokenlora {

// GGUF metadata value types (gguf_type in ggml).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
  kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
std::string_view GgufTypeName(GgufType t);

// One metadata value. Scalars are widened into the variant; arrays keep their
// element type. Arrays of arrays are supported (nested GgufValue).
struct GgufValue {
  GgufType type = GgufType::kU32;
  GgufType array_type = GgufType::kU8;  // element type when type == kArray
  std::variant<uint64_t, int64_t, double, bool, std::string> scalar;
  std::vector<GgufValue> array;         // when type == kArray (not for strings, see below)
  std::vector<std::string> strings;     // when type == kArray and array_type == kString

  bool IsArray() const { return type == GgufType::kArray; }
  size_t ArraySize() const { return array_type == GgufType::kString ? strings.size() : array.size(); }
  // Conversions; throw InputError naming `key` on a type mismatch.
  int64_t AsInt(const std::string& key) const;
  double AsFloat(const std::string& key) const;
  bool AsBool(const std::string& key) const;
  const std::string& AsString(const std::string& key) const;
  // For `inspect`: arrays show their first `max_items` items and the count;
  // long strings are cut. max_items == SIZE_MAX shows everything, uncut.
  std::string ToDisplayString(size_t max_items = 8) const;
  // "u32", "string", "array[f32]", "array[array[i32]]".
  std::string TypeString() const;

  // Builders (for GgufWriter::SetValue and tests). The type must match the
  // function: Uint takes kU8/kU16/kU32/kU64, Int kI8..kI64, Float kF32/kF64.
  static GgufValue Uint(GgufType type, uint64_t v);
  static GgufValue Int(GgufType type, int64_t v);
  static GgufValue Float(GgufType type, double v);
  static GgufValue Bool(bool v);
  static GgufValue String(std::string v);
  static GgufValue StringArray(std::vector<std::string> v);
  // Array of non-string values, each of type `element_type` (kArray for nested arrays).
  static GgufValue Array(GgufType element_type, std::vector<GgufValue> items);

  bool operator==(const GgufValue&) const = default;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // outermost first (reverse of ggml ne[])
  uint64_t offset;             // relative to the start of the data section

  uint64_t NumElements() const;
  // Bytes of data in ggml block layout (the reader checked that this fits).
  uint64_t NumBytes() const;
};

class GgufFile {
 public:
  // Maps and parses `path`, validating header, metadata, tensor types,
  // shapes, alignment and that every tensor lies inside the file.
  // Throws InputError naming the file and the offending key/tensor.
  static GgufFile Open(const std::string& path);
  // Same checks over a byte buffer (for fuzzing); `name` is used in errors.
  // The buffer must outlive the returned object.
  static GgufFile Parse(const uint8_t* data, size_t size, const std::string& name);

  uint32_t version() const { return version_; }
  const std::string& path() const { return path_; }
  uint64_t alignment() const { return alignment_; }
  // Absolute file offset of the (aligned) tensor data section.
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  // Insertion order of metadata keys as in the file.
  const std::vector<std::string>& metadata_order() const { return metadata_order_; }
  const GgufValue* Find(const std::string& key) const;
  // Required lookups; throw InputError naming the file and key.
  const GgufValue& Get(const std::string& key) const;
  int64_t GetInt(const std::string& key) const;
  std::optional<int64_t> FindInt(const std::string& key) const;
  double GetFloat(const std::string& key) const;
  std::optional<double> FindFloat(const std::string& key) const;
  std::string GetString(const std::string& key) const;
  std::optional<std::string> FindString(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  // View of a tensor's data inside the mapping.
  TensorView View(const GgufTensorInfo& info) const;

 private:
  std::shared_ptr<MappedFile> file_;  // keeps the mapping alive (null when parsed from a buffer)
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<std::string> metadata_order_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Builds a GGUF v3 file in memory and writes it atomically.
class GgufWriter {
 public:
  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetU64(const std::string& key, uint64_t v);
  void SetF32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, const std::string& v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);
  void SetValue(const std::string& key, const GgufValue& v);  // any value (copying metadata)

  // `data` holds RowBytes(dtype, shape.back()) * rows bytes in ggml block layout.
  void AddTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                 const void* data, size_t num_bytes);

  void SetAlignment(uint32_t alignment);
  std::string Serialize() const;
  void Write(const std::string& path) const;  // atomic

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace tokenlora
