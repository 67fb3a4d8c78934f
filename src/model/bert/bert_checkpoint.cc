#include "model/bert/bert_checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_text.h"
#include "tensor/dtype.h"

namespace tokenlora {
namespace fs = std::filesystem;

namespace {

// Buffers the encoder does not read, which may be stored in dtypes the
// safetensors reader does not hold.
bool IsUnusedBuffer(const std::string& name) {
  return name == "embeddings.position_ids" || name == "bert.embeddings.position_ids";
}

// Rewrites the header at data + 8 in place so that the unused buffers whose
// dtype the reader refuses become opaque I32 placeholders over the same
// bytes (the reader checks that the tensors tile the data section, so their
// bytes must stay accounted for); returns what was dropped. Leaves the header
// as is when it is not parseable (the reader then reports the problem).
std::vector<std::string> DropUnusedBuffers(uint8_t* data, size_t size) {
  uint64_t header_bytes;
  if (size < 8) return {};
  std::memcpy(&header_bytes, data, 8);
  if (header_bytes > size - 8) return {};
  char* text = reinterpret_cast<char*>(data + 8);
  nlohmann::ordered_json header =
      ParseBoundedJson<nlohmann::ordered_json>(std::string_view(text, header_bytes), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return {};
  std::vector<std::string> dropped;
  for (auto it = header.begin(); it != header.end();) {
    const auto& entry = it.value();
    if (IsUnusedBuffer(it.key()) && entry.is_object() && entry.contains("dtype") &&
        entry["dtype"].is_string() && !DTypeFromSafetensors(entry["dtype"].get<std::string>())) {
      dropped.push_back(it.key() + " (" + entry["dtype"].get<std::string>() + " " +
                        (entry.contains("shape") ? entry["shape"].dump() : "?") + ")");
      const auto offsets = entry.value("data_offsets", nlohmann::ordered_json());
      if (offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
          offsets[1].is_number_unsigned() && offsets[1].get<uint64_t>() >= offsets[0].get<uint64_t>() &&
          (offsets[1].get<uint64_t>() - offsets[0].get<uint64_t>()) % 4 == 0) {
        const uint64_t n = (offsets[1].get<uint64_t>() - offsets[0].get<uint64_t>()) / 4;
        it.value() = {{"dtype", "I32"}, {"shape", {n}}, {"data_offsets", offsets}};
        ++it;
      } else {
        it = header.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (dropped.empty()) return {};
  const std::string rewritten = header.dump();  // about as long as the original (checked)
  if (rewritten.size() > header_bytes) return {};
  std::memcpy(text, rewritten.data(), rewritten.size());
  std::memset(text + rewritten.size(), ' ', header_bytes - rewritten.size());  // JSON allows trailing spaces
  return dropped;
}

}  // namespace

BertCheckpoint::~BertCheckpoint() {
  single_.reset();  // its views point into the mapping
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
}

std::unique_ptr<BertCheckpoint> BertCheckpoint::Open(const std::string& dir_or_gguf) {
  std::unique_ptr<BertCheckpoint> c(new BertCheckpoint());
  std::error_code ec;
  if (fs::is_regular_file(dir_or_gguf, ec)) {
    c->gguf_ = GgufFile::Open(dir_or_gguf);
    for (const GgufTensorInfo& info : c->gguf_->tensors()) c->gguf_views_.push_back(c->gguf_->View(info));
    c->files_.push_back(dir_or_gguf);
    return c;
  }
  const std::string& dir = dir_or_gguf;
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  if (!fs::exists(path, ec)) {
    c->sharded_ = SafetensorsModel::OpenDirectory(dir);  // sharded, or its error names what is missing
    for (const SafetensorsFile& f : c->sharded_->files()) c->files_.push_back(f.path());
    return c;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    throw InputError("'" + path + "' is not a regular, non-empty file");
  }
  c->mapping_bytes_ = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, c->mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw InputError("cannot map '" + path + "' into memory: " + std::strerror(err));
  c->mapping_ = p;
  auto* bytes = static_cast<uint8_t*>(p);
  c->dropped_ = DropUnusedBuffers(bytes, c->mapping_bytes_);
  c->single_ = SafetensorsFile::Parse(bytes, c->mapping_bytes_, path);
  c->files_.push_back(path);
  return c;
}

const TensorView* BertCheckpoint::Find(const std::string& name) const {
  if (gguf_) {
    const GgufTensorInfo* info = gguf_->FindTensor(name);
    return info == nullptr ? nullptr : &gguf_views_[static_cast<size_t>(info - gguf_->tensors().data())];
  }
  return single_ ? single_->Find(name) : sharded_->Find(name);
}

std::vector<const TensorView*> BertCheckpoint::All() const {
  if (gguf_) {
    std::vector<const TensorView*> out;
    for (const TensorView& t : gguf_views_) out.push_back(&t);
    return out;
  }
  if (sharded_) return sharded_->All();
  std::vector<const TensorView*> out;
  for (const TensorView& t : single_->tensors()) out.push_back(&t);
  return out;
}

}  // namespace tokenlora
