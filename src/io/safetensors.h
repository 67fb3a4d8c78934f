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

 private:
  std::shared_ptr<MappedFile> file_;
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
};

// All tensors of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json. Tensor names must be unique across shards.
class SafetensorsModel {
 public:
  static SafetensorsModel OpenDirectory(const std::string& dir);
  const TensorView* Find(const std::string& name) const;
  std::vector<const TensorView*> All() const;  // sorted by name
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorView*> by_name_;
};

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
