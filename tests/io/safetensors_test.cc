// Safetensors writer -> reader round trips, broken files, and model
// directories (single file, sharded index).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "io_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;
using testing::RawSafetensors;
using testing::SafetensorsParseError;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void ExpectError(const std::string& bytes, const std::vector<std::string>& parts) {
  const std::string msg = SafetensorsParseError(bytes, "bad.safetensors");
  ASSERT_FALSE(msg.empty()) << "parsed without error";
  EXPECT_EQ(msg.rfind("'bad.safetensors': ", 0), 0u) << msg;
  for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

template <typename F>
std::string ErrorOf(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

struct Sample {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

std::vector<Sample> Samples() {
  return {{"model.embed_tokens.weight", DType::kBF16, {5, 3}, RandomBytes(5 * 3 * 2, 1)},
          {"lm_head.weight", DType::kF16, {3, 5}, RandomBytes(3 * 5 * 2, 2)},
          {"norm.weight", DType::kF32, {7}, RandomBytes(7 * 4, 3)},
          {"positions", DType::kI32, {2, 2}, RandomBytes(2 * 2 * 4, 4)},
          {"scalar", DType::kF32, {}, RandomBytes(4, 5)},
          {"empty", DType::kF16, {0, 4}, {}}};
}

std::string SampleFile(const std::vector<Sample>& samples) {
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  w.SetMetadata("note", "unicode ✓");
  for (const Sample& s : samples) w.AddTensor(s.name, s.dtype, s.shape, s.data.data(), s.data.size());
  return w.Serialize();
}

TEST(SafetensorsRoundTrip, EveryDType) {
  const auto samples = Samples();
  const std::string bytes = SampleFile(samples);
  uint64_t header_bytes;
  std::memcpy(&header_bytes, bytes.data(), 8);
  EXPECT_EQ(header_bytes % 8, 0u);  // data stays 8-byte aligned
  EXPECT_EQ(bytes[8], '{');
  const std::vector<uint8_t> storage(bytes.begin(), bytes.end());
  const SafetensorsFile f = SafetensorsFile::Parse(storage.data(), storage.size(), "rt.safetensors");
  EXPECT_EQ(f.path(), "rt.safetensors");
  EXPECT_EQ(f.header_bytes(), header_bytes);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "unicode ✓");
  ASSERT_EQ(f.tensors().size(), samples.size());
  uint64_t expected_offset = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    SCOPED_TRACE(samples[i].name);
    const TensorView& v = f.tensors()[i];  // file order == writing order
    EXPECT_EQ(v.name, samples[i].name);
    EXPECT_EQ(v.dtype, samples[i].dtype);
    EXPECT_EQ(v.shape, samples[i].shape);
    EXPECT_EQ(v.NumBytes(), samples[i].data.size());
    EXPECT_EQ(f.DataOffset(v), expected_offset);
    expected_offset += samples[i].data.size();
    if (!samples[i].data.empty()) {
      EXPECT_EQ(std::memcmp(v.data, samples[i].data.data(), samples[i].data.size()), 0);
    }
    EXPECT_EQ(f.Find(samples[i].name), &v);
  }
  EXPECT_EQ(f.Find("nope"), nullptr);
}

TEST(SafetensorsRoundTrip, FileOrderFollowsDataOffsets) {
  // Header order differs from data order: tensors() follows the data.
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string bytes = RawSafetensors(header, std::string(8, '\0'));
  const std::vector<uint8_t> storage(bytes.begin(), bytes.end());
  const SafetensorsFile f = SafetensorsFile::Parse(storage.data(), storage.size(), "o");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.tensors()[1].name, "b");
  EXPECT_TRUE(f.metadata().empty());
}

TEST(SafetensorsWriter, Refusals) {
  SafetensorsWriter w;
  const auto d = RandomBytes(64, 1);
  w.AddTensor("a", DType::kF32, {2}, d.data(), 8);
  EXPECT_THROW(w.AddTensor("a", DType::kF32, {2}, d.data(), 8), InputError);
  EXPECT_THROW(w.AddTensor("__metadata__", DType::kF32, {2}, d.data(), 8), InputError);
  EXPECT_THROW(w.AddTensor("b", DType::kF32, {2}, d.data(), 9), InputError);
  const std::string msg = ErrorOf([&] { w.AddTensor("q", DType::kQ4_0, {32}, d.data(), 18); });
  EXPECT_NE(msg.find("q4_0 cannot be stored in safetensors"), std::string::npos) << msg;
  SafetensorsWriter bad_utf8;
  bad_utf8.AddTensor("\xff", DType::kF32, {1}, d.data(), 4);
  EXPECT_THROW(bad_utf8.Serialize(), InputError);
}

TEST(SafetensorsBadInput, TruncatedAtEveryByte) {
  const std::string full = SampleFile(Samples());
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string msg = SafetensorsParseError(full.substr(0, n), "cut.safetensors");
    ASSERT_FALSE(msg.empty());
    EXPECT_EQ(msg.rfind("'cut.safetensors': ", 0), 0u) << msg;
  }
  EXPECT_EQ(SafetensorsParseError(full), "");
}

TEST(SafetensorsBadInput, FlippedBytesNeverCrash) {
  const std::string full = SampleFile(Samples());
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bytes = full;
      bytes[i] = static_cast<char>(bytes[i] ^ mask);
      const std::vector<uint8_t> copy(bytes.begin(), bytes.end());
      try {
        const SafetensorsFile f = SafetensorsFile::Parse(copy.data(), copy.size(), "flip");
        for (const TensorView& v : f.tensors()) {
          const auto* p = static_cast<const uint8_t*>(v.data);
          ASSERT_GE(p, copy.data());
          ASSERT_LE(p + v.NumBytes(), copy.data() + copy.size());
        }
      } catch (const InputError&) {
      }
    }
  }
}

TEST(SafetensorsBadInput, HeaderLength) {
  ExpectError("", {"file is 0 bytes", "truncated"});
  ExpectError(std::string("\x10\0\0\0\0\0\0\0{}", 10), {"header length 16 runs past the end of the file (10 bytes)"});
  ExpectError(std::string("\xff\xff\xff\xff\xff\xff\xff\xff{}", 10), {"exceeds the safetensors limit"});
}

TEST(SafetensorsBadInput, Json) {
  ExpectError(RawSafetensors("{\"a\": ", ""), {"header is not valid JSON", "parse error"});
  ExpectError(RawSafetensors("[1, 2]", ""), {"header must be a JSON object, got [1,2]"});
  ExpectError(RawSafetensors("{\"a\": 1}", ""), {"tensor 'a': entry must be a JSON object"});
  ExpectError(RawSafetensors("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", std::string(4, '\0')),
              {"tensor 'a': 'dtype' is missing"});
  ExpectError(RawSafetensors("{\"__metadata__\": {\"k\": 1}}", ""), {"__metadata__ value for 'k' must be a string"});
  ExpectError(RawSafetensors("{\"__metadata__\": [1]}", ""), {"__metadata__ must be an object"});
  ExpectError(RawSafetensors("{\"\xff\": 1}", ""), {"not valid JSON"});  // invalid UTF-8
  const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  ExpectError(RawSafetensors("{\"w\":" + entry + ",\"w\":" + entry + "}", std::string(4, '\0')),
              {"'w' appears twice in the header"});
  // Same key names deeper down are not duplicates.
  EXPECT_EQ(SafetensorsParseError(RawSafetensors("{\"w\":" + entry + ",\"v\":" +
                                                     R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                 std::string(8, '\0'))),
            "");
  // Padding spaces after the JSON are part of the format.
  EXPECT_EQ(SafetensorsParseError(RawSafetensors("{\"w\":" + entry + "}     ", std::string(4, '\0'))), "");
}

TEST(SafetensorsBadInput, DTypes) {
  const auto with_dtype = [](const std::string& dtype) {
    return RawSafetensors(R"({"model.w":{"dtype":")" + dtype + R"(","shape":[2],"data_offsets":[0,16]}})",
                          std::string(16, '\0'));
  };
  ExpectError(with_dtype("F64"), {"tensor 'model.w' has dtype 'F64'", "supported: F32, F16, BF16, I32",
                                  "torch.float16"});
  ExpectError(with_dtype("I64"), {"dtype 'I64'"});
  ExpectError(with_dtype("U8"), {"dtype 'U8'"});
  ExpectError(with_dtype("F8_E4M3"), {"dtype 'F8_E4M3'"});
  ExpectError(with_dtype("Q9"), {"unknown dtype 'Q9'"});
  ExpectError(RawSafetensors(R"({"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
              {"'dtype' is missing or not a string"});
}

TEST(SafetensorsBadInput, ShapesAndOffsets) {
  const auto entry = [](const std::string& shape, const std::string& offsets, size_t data) {
    return RawSafetensors(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}",
                          std::string(data, '\0'));
  };
  EXPECT_EQ(SafetensorsParseError(entry("[2,2]", "[0,16]", 16)), "");
  ExpectError(entry("[2,2]", "[0,12]", 16), {"data_offsets [0, 12] hold 12 bytes, but F32 [2, 2] needs 16"});
  ExpectError(entry("[2,2]", "[0,16]", 15), {"end past the data section (15 bytes)", "truncated"});
  ExpectError(entry("[2,2]", "[16,0]", 16), {"end before they begin"});
  ExpectError(entry("[-2,2]", "[0,16]", 16), {"must hold non-negative integers"});
  ExpectError(entry("[2.0,2]", "[0,16]", 16), {"must hold non-negative integers"});
  ExpectError(entry("\"2\"", "[0,16]", 16), {"'shape' is missing or not an array"});
  ExpectError(entry("[9223372036854775808]", "[0,16]", 16), {"must hold non-negative integers"});
  ExpectError(entry("[4294967296,4294967296]", "[0,16]", 16), {"is too large for 64-bit sizes"});
  ExpectError(entry("[4611686018427387904]", "[0,16]", 16), {"needs more than 2^64"});  // 2^62 x 4 bytes
  // No elements, but the row count would overflow int64 (found by fuzz_gguf in GGUF).
  ExpectError(entry("[0,4294967296,4294967296]", "[0,0]", 16), {"is too large for 64-bit sizes"});
  ExpectError(entry("[4]", "[0]", 16), {"'data_offsets' must be [begin, end]"});
  ExpectError(entry("[4]", "[0,-16]", 16), {"'data_offsets' must be [begin, end]"});
  ExpectError(entry("[4]", "[0,18446744073709551615]", 16), {"end past the data section"});
  ExpectError(RawSafetensors(R"({"w":{"dtype":"F32","shape":[1]}})", ""), {"got nothing"});
}

// As the safetensors library: in offset order the tensors tile the data
// section exactly — no overlap (one tensor reading another's bytes), no
// hole, nothing after the last. Header order is free.
TEST(SafetensorsBadInput, OffsetsMustTileTheDataSection) {
  const auto two = [](const std::string& a, const std::string& b, size_t data) {
    return RawSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + a +
                              R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}",
                          std::string(data, '\0'));
  };
  EXPECT_EQ(SafetensorsParseError(two("[0,8]", "[8,16]", 16)), "");
  EXPECT_EQ(SafetensorsParseError(two("[8,16]", "[0,8]", 16)), "");
  ExpectError(two("[0,8]", "[4,12]", 16),
              {"tensor 'b' starts at data offset 4, overlapping tensor 'a', which ends at 8", "safetensors library"});
  ExpectError(two("[0,8]", "[0,8]", 8), {"starts at data offset 0, overlapping tensor 'a'"});
  ExpectError(two("[0,8]", "[12,20]", 20), {"leaving a hole of 4 bytes after tensor 'a'"});
  ExpectError(two("[4,12]", "[12,20]", 20), {"tensor 'a' starts at data offset 4, leaving a hole of 4 bytes"});
  ExpectError(two("[0,8]", "[8,16]", 20), {"the tensors end at data offset 16 but the data section holds 20 bytes"});
  // Zero-size tensors sit anywhere in the sequence without breaking it.
  EXPECT_EQ(SafetensorsParseError(RawSafetensors(
                R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                std::string(8, '\0'))),
            "");
}

// ---- model directories ----

class SafetensorsDir : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir(); }
  void TearDown() override { fs::remove_all(dir_); }

  void WriteShard(const std::string& file, const std::vector<std::string>& names) {
    SafetensorsWriter w;
    for (const std::string& n : names) {
      const auto d = RandomBytes(8, static_cast<uint32_t>(n.size()));
      w.AddTensor(n, DType::kF32, {2}, d.data(), d.size());
    }
    w.Write(dir_ + "/" + file);
  }
  void WriteIndex(const std::string& weight_map) {
    WriteText(dir_ + "/model.safetensors.index.json",
              R"({"metadata": {"total_size": 48}, "weight_map": )" + weight_map + "}");
  }

  std::string dir_;
};

TEST_F(SafetensorsDir, SingleFile) {
  WriteShard("model.safetensors", {"b", "a"});
  SafetensorsModel m = SafetensorsModel::OpenDirectory(dir_);
  ASSERT_EQ(m.files().size(), 1u);
  const auto all = m.All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]->name, "a");  // sorted by name
  EXPECT_EQ(all[1]->name, "b");
  EXPECT_EQ(m.Find("a"), all[0]);
  EXPECT_EQ(m.Find("c"), nullptr);
  const SafetensorsModel moved = std::move(m);  // pointers stay valid across a move
  EXPECT_EQ(moved.Find("a")->name, "a");
}

TEST_F(SafetensorsDir, Sharded) {
  WriteShard("model-00001-of-00002.safetensors", {"a", "b"});
  WriteShard("model-00002-of-00002.safetensors", {"c"});
  WriteIndex(R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                 "c": "model-00002-of-00002.safetensors"})");
  WriteShard("model.safetensors", {"ignored"});  // the index wins
  const SafetensorsModel m = SafetensorsModel::OpenDirectory(dir_);
  ASSERT_EQ(m.files().size(), 2u);
  ASSERT_EQ(m.All().size(), 3u);
  EXPECT_NE(m.Find("c"), nullptr);
  EXPECT_EQ(m.Find("ignored"), nullptr);
  EXPECT_EQ(std::memcmp(m.Find("c")->data, RandomBytes(8, 1).data(), 8), 0);
}

TEST_F(SafetensorsDir, MissingShard) {
  WriteShard("model-00001-of-00002.safetensors", {"a"});
  WriteIndex(R"({"a": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"})");
  const std::string msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("model.safetensors.index.json': shard 'model-00002-of-00002.safetensors' "
                     "(holding 'lm_head.weight') is missing"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("incomplete download"), std::string::npos) << msg;
}

TEST_F(SafetensorsDir, DuplicateAcrossShards) {
  WriteShard("s1.safetensors", {"a", "x"});
  WriteShard("s2.safetensors", {"x"});
  WriteIndex(R"({"a": "s1.safetensors", "x": "s2.safetensors"})");
  const std::string msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("tensor 'x' is in both"), std::string::npos) << msg;
  EXPECT_NE(msg.find("s1.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("s2.safetensors"), std::string::npos) << msg;
}

TEST_F(SafetensorsDir, IndexProblems) {
  WriteShard("s1.safetensors", {"a"});
  WriteIndex(R"({"a": "s1.safetensors", "b": "s1.safetensors"})");
  std::string msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("maps tensor 'b' to 's1.safetensors', but that shard does not hold it"), std::string::npos)
      << msg;
  WriteIndex(R"({"a": "../s1.safetensors"})");
  msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("not a file inside the model directory"), std::string::npos) << msg;
  WriteIndex(R"({"a": 3})");
  EXPECT_NE(ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); }).find("must be a file name"), std::string::npos);
  WriteText(dir_ + "/model.safetensors.index.json", "{\"weight_map\": ");
  msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("model.safetensors.index.json': not valid JSON"), std::string::npos) << msg;
  WriteText(dir_ + "/model.safetensors.index.json", "{}");
  EXPECT_NE(ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); }).find("no \"weight_map\""), std::string::npos);
}

TEST_F(SafetensorsDir, NothingToOpen) {
  std::string msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("no model.safetensors or model.safetensors.index.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no .safetensors file at all"), std::string::npos) << msg;
  WriteShard("adapter_model.safetensors", {"a"});
  msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("found 'adapter_model.safetensors'"), std::string::npos) << msg;
  WriteText(dir_ + "/model.gguf", "GGUF");
  msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("for a GGUF model pass the file itself: 'model.gguf'"), std::string::npos) << msg;
  msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_ + "/adapter_model.safetensors"); });
  EXPECT_NE(msg.find("is not a directory"), std::string::npos) << msg;
  // A broken shard names its own file.
  WriteText(dir_ + "/model.safetensors", "garbage!");
  msg = ErrorOf([&] { SafetensorsModel::OpenDirectory(dir_); });
  EXPECT_NE(msg.find("model.safetensors'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tokenlora
