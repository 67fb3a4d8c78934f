// The GGUF reader against broken files: every truncation, byte flips, and
// one hand-built file per validation rule, each checked for a clear message.
#include <gtest/gtest.h>

#include "io/gguf.h"
#include "io/inspect.h"
#include "io_test_util.h"

namespace tokenlora {
namespace {

using testing::GgufParseError;
using testing::RandomBytes;
using testing::RawGguf;

// A small valid file touching every part of the format (~700 bytes).
std::string SmallValidFile() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 2);
  w.SetF32("llama.rope.freq_base", 10000.0f);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"<s>", "a", "bc"});
  w.SetI32Array("tokenizer.ggml.token_type", {3, 1, 1});
  w.SetValue("nested", GgufValue::Array(GgufType::kArray,
                                        {GgufValue::Array(GgufType::kU16, {GgufValue::Uint(GgufType::kU16, 9)}),
                                         GgufValue::StringArray({"z"})}));
  const auto a = RandomBytes(4 * 3, 1);
  const auto b = RandomBytes(2 * 34, 2);
  const auto c = RandomBytes(2 * 2, 3);
  w.AddTensor("norm.weight", DType::kF32, {3}, a.data(), a.size());
  w.AddTensor("blk.0.attn_q.weight", DType::kQ8_0, {2, 32}, b.data(), b.size());
  w.AddTensor("last", DType::kF16, {2}, c.data(), c.size());
  return w.Serialize();
}

void ExpectError(const std::string& bytes, const std::vector<std::string>& parts) {
  const std::string msg = GgufParseError(bytes, "bad.gguf");
  ASSERT_FALSE(msg.empty()) << "parsed without error";
  EXPECT_EQ(msg.rfind("'bad.gguf': ", 0), 0u) << msg;  // every message names the file first
  for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(GgufBadInput, TruncatedAtEveryByte) {
  const std::string full = SmallValidFile();
  std::vector<uint8_t> storage(full.begin(), full.end());
  const GgufFile f = GgufFile::Parse(storage.data(), storage.size(), "bad.gguf");
  // The padding after the last tensor is not data: cutting it leaves a readable file.
  uint64_t data_end = 0;
  for (const GgufTensorInfo& t : f.tensors()) data_end = std::max(data_end, t.offset + t.NumBytes());
  const size_t needed = f.data_offset() + data_end;
  ASSERT_LT(needed, full.size());
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string msg = GgufParseError(full.substr(0, n), "bad.gguf");
    if (n < needed) {
      ASSERT_FALSE(msg.empty());
      EXPECT_EQ(msg.rfind("'bad.gguf': ", 0), 0u) << msg;
      EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                  msg.find("corrupt or truncated") != std::string::npos)
          << msg;
    } else {
      EXPECT_EQ(msg, "");
    }
  }
}

TEST(GgufBadInput, FlippedBytesNeverCrash) {
  const std::string full = SmallValidFile();
  size_t parsed = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bytes = full;
      bytes[i] = static_cast<char>(bytes[i] ^ mask);
      std::vector<uint8_t> copy(bytes.begin(), bytes.end());
      try {
        const GgufFile f = GgufFile::Parse(copy.data(), copy.size(), "flip.gguf");
        // Whatever parses must be safe to use: views in bounds, summary printable.
        for (const GgufTensorInfo& t : f.tensors()) {
          const TensorView v = f.View(t);
          const uint8_t* p = static_cast<const uint8_t*>(v.data);
          ASSERT_GE(p, copy.data());
          ASSERT_LE(p + v.NumBytes(), copy.data() + copy.size());
        }
        EXPECT_FALSE(FormatGgufSummary(f).empty());
        ++parsed;
      } catch (const InputError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("'flip.gguf': ", 0), 0u) << e.what();
      }
    }
  }
  EXPECT_GT(parsed, 0u);  // flips inside tensor data or string contents are harmless
}

TEST(GgufBadInput, Magic) {
  ExpectError("", {"need 4 bytes for the magic number", "file truncated"});
  ExpectError(RawGguf().Raw("GGUX").U32(3).U64(0).U64(0).bytes(), {"not a GGUF file", "'GGUX'"});
  ExpectError(RawGguf().Raw("tjgg").U32(3).bytes(), {"pre-GGUF", "convert"});
  ExpectError(RawGguf().Raw("\x89PNG").bytes(), {"not a GGUF file", "'\\x89PNG'"});
}

TEST(GgufBadInput, Versions) {
  ExpectError(RawGguf().Header(1, 0, 0).bytes(), {"version 1 is not supported", "re-convert"});
  ExpectError(RawGguf().Header(4, 0, 0).bytes(), {"unsupported GGUF version 4", "versions 2 and 3"});
  ExpectError(RawGguf().Header(0x03000000, 0, 0).bytes(), {"big-endian"});
  ExpectError(RawGguf().Raw("GGUF").U32(3).U32(0).bytes(), {"tensor count", "truncated"});
  EXPECT_EQ(GgufParseError(RawGguf().Header(2, 0, 0).bytes()), "");
  EXPECT_EQ(GgufParseError(RawGguf().Header(3, 0, 0).bytes()), "");
}

TEST(GgufBadInput, HugeCounts) {
  ExpectError(RawGguf().Header(3, 1ull << 62, 0).bytes(), {"claims 4611686018427387904 tensors"});
  ExpectError(RawGguf().Header(3, 0, ~0ull).bytes(), {"metadata keys", "corrupt or truncated"});
  ExpectError(RawGguf().Header(3, 0, 1).U64(~0ull).Zeros(16).bytes(), {"key name", "claims 18446744073709551615 bytes"});
  // An array claiming far more elements than bytes left, for each element size.
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(9).U32(0).U64(1ull << 40).bytes(),
              {"metadata key #0 'k'", "array elements"});
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(9).U32(8).U64(3).U64(1).bytes(),
              {"array elements"});
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(9).U32(8).U64(2).Str("a").U64(100).bytes(),
              {"(array element 1 of 2)", "string element", "claims 100 bytes"});
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(8).U64(1ull << 63).bytes(),
              {"string value", "truncated"});
}

TEST(GgufBadInput, UnknownTypes) {
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(13).U32(0).bytes(),
              {"metadata key #0 'k'", "unknown value type 13"});
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(9).U32(99).U64(0).bytes(),
              {"unknown array element type 99"});
  ExpectError(RawGguf().Header(3, 0, 1).Str("k").U32(7).U8(2).bytes(), {"bool value", "is 2"});
}

TEST(GgufBadInput, NestingDepth) {
  const auto nested = [](int depth) {
    RawGguf g;
    g.Header(3, 0, 1).Str("k").U32(9);
    for (int i = 1; i < depth; ++i) g.U32(9).U64(1);
    return g.U32(0).U64(1).U8(7).bytes();
  };
  EXPECT_EQ(GgufParseError(nested(8)), "");
  ExpectError(nested(9), {"nested more than 8 deep"});
}

TEST(GgufBadInput, DuplicateNames) {
  ExpectError(RawGguf().Header(3, 0, 2).KvU32("a", 1).KvU32("a", 2).bytes(),
              {"metadata key #1 'a'", "duplicate key"});
  ExpectError(RawGguf()
                  .Header(3, 2, 0)
                  .TensorInfo("w", {4}, 0, 0)
                  .TensorInfo("w", {4}, 0, 32)
                  .Pad(32)
                  .Zeros(64)
                  .bytes(),
              {"tensor #1 'w'", "duplicate tensor name"});
}

TEST(GgufBadInput, TensorInfos) {
  const auto one = [](const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset, size_t data) {
    return RawGguf().Header(3, 1, 0).TensorInfo("blk.0.attn_q.weight", ne, type, offset).Pad(32).Zeros(data).bytes();
  };
  EXPECT_EQ(GgufParseError(one({4, 2}, 0, 0, 32)), "");
  ExpectError(one({1, 1, 1, 1, 1}, 0, 0, 32), {"tensor #0 'blk.0.attn_q.weight'", "5 dimensions", "at most 4"});
  ExpectError(one({32}, 10, 0, 32), {"ggml type 10 (q2_K)", "does not load", "supported: f32 (0), f16 (1)",
                                     "q6_K (14)", "llama-quantize"});
  ExpectError(one({32}, 4, 0, 32), {"ggml type 4 (unknown)"});
  ExpectError(one({32}, 0xffffffffu, 0, 32), {"ggml type 4294967295"});
  ExpectError(one({48, 1}, 2, 0, 32), {"rows of 48 elements", "q4_0 block size 32"});
  ExpectError(one({1ull << 32, 1ull << 32}, 0, 0, 32), {"element count", "overflows"});
  // No elements, but [2^40, 2^40] rows would overflow int64 row counts (found by fuzz_gguf).
  ExpectError(one({0, 1ull << 40, 1ull << 40}, 0, 0, 32), {"element count", "overflows"});
  EXPECT_EQ(GgufParseError(one({0, 1ull << 20, 1ull << 20}, 0, 0, 32)), "");  // empty and fine
  ExpectError(one({1ull << 63}, 0, 0, 32), {"dimension ne[0]", "not a valid size"});
  ExpectError(one({1ull << 62}, 0, 0, 32), {"byte size", "overflows"});
  ExpectError(one({4}, 0, 16, 64), {"data offset 16 is not a multiple of the file's alignment 32"});
  ExpectError(one({1152, 1}, 8, 0, 1000),
              {"tensor 'blk.0.attn_q.weight' data [file offset 96, 1224 bytes] ends past the end of the file (1096 bytes)",
               "file truncated? re-download it"});
  ExpectError(one({4}, 0, 1ull << 63, 32), {"past the end of the file"});
  ExpectError(one({4}, 0, ~0ull & ~31ull, 32), {"past 2^64"});
  // Tensor infos end exactly at the file's end: the data section is missing.
  ExpectError(RawGguf().Header(3, 1, 0).TensorInfo("w", {4}, 0, 0).bytes(),
              {"tensor data section starts at byte 64", "past the end of the file (57 bytes)"});
}

TEST(GgufBadInput, Alignment) {
  const auto with_alignment = [](RawGguf kv) {
    return kv.TensorInfo("w", {4}, 0, 0).Pad(64).Zeros(64).bytes();
  };
  EXPECT_EQ(GgufParseError(with_alignment(RawGguf().Header(3, 1, 1).KvU32("general.alignment", 64))), "");
  ExpectError(with_alignment(RawGguf().Header(3, 1, 1).KvU32("general.alignment", 0)),
              {"'general.alignment'", "is 0, expected a power of two"});
  ExpectError(with_alignment(RawGguf().Header(3, 1, 1).KvU32("general.alignment", 48)),
              {"is 48, expected a power of two"});
  ExpectError(with_alignment(RawGguf().Header(3, 1, 1).Str("general.alignment").U32(10).U64(64)),
              {"has type u64, expected u32"});
  // Offsets must respect a custom alignment as well.
  ExpectError(RawGguf()
                  .Header(3, 1, 1)
                  .KvU32("general.alignment", 64)
                  .TensorInfo("w", {4}, 0, 32)
                  .Pad(64)
                  .Zeros(128)
                  .bytes(),
              {"data offset 32 is not a multiple of the file's alignment 64"});
}

TEST(GgufBadInput, NamesAreEscapedInMessages) {
  const std::string msg =
      GgufParseError(RawGguf().Header(3, 0, 2).KvU32("a\n\xff", 1).KvU32("a\n\xff", 1).bytes(), "x.gguf");
  EXPECT_NE(msg.find("'a\\n\\xff'"), std::string::npos) << msg;
  const std::string long_name(10000, 'k');
  const std::string msg2 =
      GgufParseError(RawGguf().Header(3, 0, 2).KvU32(long_name, 1).KvU32(long_name, 1).bytes(), "x.gguf");
  EXPECT_LT(msg2.size(), 400u);
  EXPECT_NE(msg2.find("(10000 bytes)"), std::string::npos) << msg2;
}

}  // namespace
}  // namespace tokenlora
