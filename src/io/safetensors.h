// Hugging Face safetensors reader (single file, or sharded with
// model.safetensors.index.json) and writer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "tensor/tensor.h"

namespace tokenlora {

class SafetensorsFile {
 public:
  // Opens one .safetensors file, validating the header JSON, dtypes, shapes
  // and data offsets. Throws InputError naming the file and tensor.
  static SafetensorsFile Open(const std::string& path);
  static SafetensorsFile Parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // __metadata__
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in file order
  const TensorView* Find(const std::string& name) const;
  // Length of the JSON header (the data section starts 8 bytes later).
  uint64_t header_bytes() const { return header_bytes_; }
  // Offset of a tensor of this file within its data section.
  uint64_t DataOffset(const TensorView& t) const {
    return static_cast<uint64_t>(static_cast<const uint8_t*>(t.data) - data_section_);
  }

 private:
  std::shared_ptr<MappedFile> file_;
  std::string path_;
  uint64_t header_bytes_ = 0;
  const uint8_t* data_section_ = nullptr;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
};

// All tensors of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json. Tensor names must be unique across shards.
class SafetensorsModel {
 public:
  // Throws InputError naming the directory, index file or shard.
  static SafetensorsModel OpenDirectory(const std::string& dir);

  // Move-only: by_name_ points into files_ (a move keeps those addresses, a copy would not).
  SafetensorsModel() = default;
  SafetensorsModel(SafetensorsModel&&) = default;
  SafetensorsModel& operator=(SafetensorsModel&&) = default;
  SafetensorsModel(const SafetensorsModel&) = delete;
  SafetensorsModel& operator=(const SafetensorsModel&) = delete;

  const TensorView* Find(const std::string& name) const;
  std::vector<const TensorView*> All() const;  // sorted by name
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorView*> by_name_;
};

// Writes files the Python `safetensors` package reads: header padded with
// spaces to a multiple of 8 bytes, tensor data contiguous in AddTensor order.
// Only F32, F16, BF16 and I32 can be written (the dtypes safetensors has).
class SafetensorsWriter {
 public:
  void SetMetadata(const std::string& key, const std::string& value);
  void AddTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                 const void* data, size_t num_bytes);
  std::string Serialize() const;
  void Write(const std::string& path) const;  // atomic

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace tokenlora
