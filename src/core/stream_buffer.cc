#include "core/stream_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.h"

namespace tokenlora {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

bool HugePagesWanted() {
  const char* env = std::getenv("TOKENLORA_HUGE_PAGES");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

}  // namespace

StreamBuffer::StreamBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  // Map one huge page more than needed and cut the unaligned ends off, so
  // the buffer starts on a 2 MiB boundary. Anonymous memory comes zeroed.
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const size_t over = rounded + kHugePage;
  void* p = ::mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw InputError("cannot map " + std::to_string(bytes >> 20) + " MiB for the model weights: " +
                     std::strerror(errno) + " (is the machine out of memory?)");
  }
  auto* base = static_cast<uint8_t*>(p);
  const auto addr = reinterpret_cast<uintptr_t>(base);
  const size_t head = (kHugePage - addr % kHugePage) % kHugePage;
  if (head > 0) ::munmap(base, head);
  if (over - head > rounded) ::munmap(base + head + rounded, over - head - rounded);
  data_ = base + head;
  mapped_ = rounded;
  // Advise before the first touch: the pages are faulted in as huge pages.
  huge_pages_ = HugePagesWanted() && ::madvise(data_, mapped_, MADV_HUGEPAGE) == 0;
}

size_t StreamBuffer::HugePageBytes() const {
  if (data_ == nullptr) return 0;
  std::ifstream smaps("/proc/self/smaps");
  const auto begin = reinterpret_cast<uintptr_t>(data_), end = begin + mapped_;
  bool inside = false;
  size_t kib = 0;
  std::string line;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    // A mapping's header line: "lo-hi perms offset dev inode [path]".
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = lo < end && hi > begin;
      continue;
    }
    size_t value = 0;
    if (inside && std::sscanf(line.c_str(), "AnonHugePages: %zu kB", &value) == 1) kib += value;
  }
  return std::min(kib * 1024, mapped_);
}

StreamBuffer::~StreamBuffer() {
  if (data_ != nullptr) ::munmap(data_, mapped_);
}

}  // namespace tokenlora
