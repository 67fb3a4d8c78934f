// Read-only memory mapping of a whole file. Model weights stay mapped for the
// lifetime of the model; tensors are views into the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace tokenlora {

class MappedFile {
 public:
  // Throws InputError naming `path` if it cannot be opened or mapped.
  static MappedFile Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  void Reset();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string. Throws InputError naming `path`,
// also when it holds more than `max_bytes` (a device such as /dev/zero, or
// the wrong file): the read is bounded, never "until memory runs out".
inline constexpr size_t kMaxTextFileBytes = size_t{512} << 20;
std::string ReadTextFile(const std::string& path, size_t max_bytes = kMaxTextFileBytes);

// Writes `contents` to `path` atomically (temp file + fsync + rename), so an
// interrupted write never leaves a half-written file behind.
void WriteFileAtomically(const std::string& path, std::string_view contents);

}  // namespace tokenlora
