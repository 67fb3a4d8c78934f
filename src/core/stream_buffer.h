// Memory for bytes that are streamed from DRAM again and again: the model's
// projection weights, read once per decoded token. The buffer is 2 MiB
// aligned and advised to use transparent huge pages, so a pass over it takes
// one TLB entry per 2 MiB instead of one page walk per 4 KiB (measured on
// SmolLM2-135M Q4_1, 2 threads: decode +15-25%, interleaved runs).
//
// TOKENLORA_HUGE_PAGES=0 in the environment keeps 4 KiB pages (to measure
// the difference, or on a system where huge pages misbehave).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tokenlora {

class StreamBuffer {
 public:
  // Zero-filled. Throws InputError when the memory cannot be mapped.
  explicit StreamBuffer(size_t bytes);
  ~StreamBuffer();
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // The kernel accepted the huge-page advice (it may still fall back to
  // 4 KiB pages when no 2 MiB page is free).
  bool huge_pages() const { return huge_pages_; }
  // Bytes of the buffer the kernel actually backs with huge pages now
  // (AnonHugePages of its mapping in /proc/self/smaps; 0 when unknown).
  size_t HugePageBytes() const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  bool huge_pages_ = false;
};

}  // namespace tokenlora
