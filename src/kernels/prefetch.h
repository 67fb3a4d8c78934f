// How far ahead the decode kernels prefetch the weight stream.
//
// Decoding reads every weight once per token, front to back: a pure stream.
// On the Intel Xeon this project targets (2 cores of a Sapphire/Emerald
// Rapids-class VM) the hardware prefetchers alone leave that stream short of
// the memory's speed: a software prefetch 4 KiB ahead lifted cold f16 decode
// rows from 12-14 to 18-22 GB/s, the int8 Q4_0 panels from 13-15 to 17-21
// GB/s and a plain streaming sum from 22 to 25-26 GB/s (2 threads, huge
// pages). On AMD Zen 4 with huge pages the same prefetch cost the int8
// kernel 5-14%, so other CPUs keep it off by default.
#pragma once

#include <cstddef>
#include <optional>

namespace tokenlora::kernels {

// Bytes ahead of the current read that decode kernels prefetch (0: none).
// TOKENLORA_PREFETCH=N sets it (0 turns it off; a multiple of 64 up to 65536);
// otherwise 4096 on Intel CPUs and 0 elsewhere. Read once; an invalid value
// is reported once on stderr and the default is used.
size_t StreamPrefetchBytes();

// The value TOKENLORA_PREFETCH=text asks for, or nullopt when text is not a
// decimal multiple of 64 in [0, 65536].
std::optional<size_t> ParsePrefetchBytes(const char* text);

// The default for this CPU (4096 on Intel, else 0).
size_t DefaultPrefetchBytes();

// Prefetches the cache lines of [p, p + bytes) as prefetcht2 (locality 1:
// into the outer caches, not L1). On the 2-core Xeon with a 480 MiB L3 (this
// session's), F16 decode, which streams from DRAM, went 101 -> 127 t/s (80 ->
// 94% of the DRAM bound) against prefetcht0, prefetcht1 gave 116-120; the
// quantized files' decode did not move (Q4_1 433/458 vs 434/436 t/s,
// alternated). p may lie past the end of the data: a prefetch never faults.
// The one loop every kernel's prefetch goes through (a builtin, so it
// compiles for any SIMD target).
// always_inline is needed: called from a SIMD-target function, GCC 12 left
// it out of line, judged it free of side effects and deleted the calls (no
// prefetch at all in the f32-path decode kernels, measured 24 -> 16 GB/s).
__attribute__((always_inline)) inline void PrefetchLines(const void* p, size_t bytes) {
  const auto* c = static_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 1);
}

}  // namespace tokenlora::kernels
