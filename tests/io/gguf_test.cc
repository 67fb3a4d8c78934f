// GGUF writer -> reader round trips, getters, display, and writer refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "io/gguf.h"
#include "io_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

using testing::RandomBytes;

// Built by appending: GCC 12 misreports `"t" + std::string&&` (-Wrestrict, PR 105329).
std::string TensorName(size_t i) {
  std::string out = "t";
  out += std::to_string(i);
  return out;
}

GgufFile ParseBuffer(const std::string& bytes, std::vector<uint8_t>& storage,
                     const std::string& name = "mem.gguf") {
  storage.assign(bytes.begin(), bytes.end());
  return GgufFile::Parse(storage.data(), storage.size(), name);
}

// One value of every type, at the edges of each range, plus arrays of each,
// string arrays, nested arrays and empty arrays.
std::vector<std::pair<std::string, GgufValue>> EveryKindOfValue() {
  using T = GgufType;
  std::vector<std::pair<std::string, GgufValue>> kv = {
      {"t.u8", GgufValue::Uint(T::kU8, 255)},
      {"t.i8", GgufValue::Int(T::kI8, -128)},
      {"t.u16", GgufValue::Uint(T::kU16, 65535)},
      {"t.i16", GgufValue::Int(T::kI16, -32768)},
      {"t.u32", GgufValue::Uint(T::kU32, 4294967295u)},
      {"t.i32", GgufValue::Int(T::kI32, std::numeric_limits<int32_t>::min())},
      {"t.u64", GgufValue::Uint(T::kU64, std::numeric_limits<uint64_t>::max())},
      {"t.i64", GgufValue::Int(T::kI64, std::numeric_limits<int64_t>::min())},
      {"t.f32", GgufValue::Float(T::kF32, 1e-5f)},  // exactly representable as the float it is
      {"t.f64", GgufValue::Float(T::kF64, 3.141592653589793)},
      {"t.bool_true", GgufValue::Bool(true)},
      {"t.bool_false", GgufValue::Bool(false)},
      {"t.string", GgufValue::String("héllo\nwörld \xe2\x96\x81 <|im_start|>")},
      {"t.empty_string", GgufValue::String("")},
      {"t.strings", GgufValue::StringArray({"a", "", "\xc4\xa0the", std::string(300, 'x')})},
      {"t.empty_strings", GgufValue::StringArray({})},
      {"t.empty_u8s", GgufValue::Array(T::kU8, {})},
  };
  const std::vector<std::pair<T, std::vector<GgufValue>>> arrays = {
      {T::kU8, {GgufValue::Uint(T::kU8, 0), GgufValue::Uint(T::kU8, 255)}},
      {T::kI8, {GgufValue::Int(T::kI8, -1), GgufValue::Int(T::kI8, 127)}},
      {T::kU16, {GgufValue::Uint(T::kU16, 1)}},
      {T::kI16, {GgufValue::Int(T::kI16, -2)}},
      {T::kU32, {GgufValue::Uint(T::kU32, 3), GgufValue::Uint(T::kU32, 4)}},
      {T::kI32, {GgufValue::Int(T::kI32, -5), GgufValue::Int(T::kI32, 6)}},
      {T::kU64, {GgufValue::Uint(T::kU64, 1ull << 63)}},
      {T::kI64, {GgufValue::Int(T::kI64, -(1ll << 62))}},
      {T::kF32, {GgufValue::Float(T::kF32, 0.5), GgufValue::Float(T::kF32, -2.25)}},
      {T::kF64, {GgufValue::Float(T::kF64, 1e300)}},
      {T::kBool, {GgufValue::Bool(true), GgufValue::Bool(false), GgufValue::Bool(true)}},
  };
  for (const auto& [type, items] : arrays) {
    kv.emplace_back("t.array_" + std::string(GgufTypeName(type)), GgufValue::Array(type, items));
  }
  // Nested: [[1, 2], [], [3]] of i32, and [["a"], ["b", "c"]] of strings.
  kv.emplace_back("t.nested_i32",
                  GgufValue::Array(T::kArray, {GgufValue::Array(T::kI32, {GgufValue::Int(T::kI32, 1),
                                                                          GgufValue::Int(T::kI32, 2)}),
                                               GgufValue::Array(T::kI32, {}),
                                               GgufValue::Array(T::kI32, {GgufValue::Int(T::kI32, 3)})}));
  kv.emplace_back("t.nested_strings",
                  GgufValue::Array(T::kArray, {GgufValue::StringArray({"a"}),
                                               GgufValue::StringArray({"b", "c"})}));
  kv.emplace_back("t.nested_3_deep",
                  GgufValue::Array(T::kArray, {GgufValue::Array(T::kArray, {GgufValue::Array(
                                                   T::kU8, {GgufValue::Uint(T::kU8, 7)})})}));
  return kv;
}

TEST(GgufRoundTrip, EveryMetadataType) {
  GgufWriter w;
  const auto kv = EveryKindOfValue();
  for (const auto& [k, v] : kv) w.SetValue(k, v);
  std::vector<uint8_t> storage;
  const GgufFile f = ParseBuffer(w.Serialize(), storage);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_TRUE(f.tensors().empty());
  ASSERT_EQ(f.metadata().size(), kv.size());
  ASSERT_EQ(f.metadata_order().size(), kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    SCOPED_TRACE(kv[i].first);
    EXPECT_EQ(f.metadata_order()[i], kv[i].first);  // file order is kept
    const GgufValue* v = f.Find(kv[i].first);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(*v, kv[i].second);
  }
}

TEST(GgufRoundTrip, TypedSetters) {
  GgufWriter w;
  w.SetU32("a.u32", 7);
  w.SetI32("a.i32", -7);
  w.SetU64("a.u64", 1ull << 40);
  w.SetF32("a.f32", 0.25f);
  w.SetBool("a.bool", true);
  w.SetString("a.string", "llama");
  w.SetStringArray("a.strings", {"x", "y"});
  w.SetF32Array("a.f32s", {1.5f, -0.5f});
  w.SetI32Array("a.i32s", {1, -2, 3});
  w.SetU32("a.u32", 8);  // replaces in place
  std::vector<uint8_t> storage;
  const GgufFile f = ParseBuffer(w.Serialize(), storage);
  EXPECT_EQ(f.metadata_order().front(), "a.u32");
  EXPECT_EQ(f.GetInt("a.u32"), 8);
  EXPECT_EQ(f.Get("a.u32").type, GgufType::kU32);
  EXPECT_EQ(f.GetInt("a.i32"), -7);
  EXPECT_EQ(f.GetInt("a.u64"), 1ll << 40);
  EXPECT_EQ(f.GetFloat("a.f32"), 0.25);
  EXPECT_TRUE(f.Get("a.bool").AsBool("a.bool"));
  EXPECT_EQ(f.GetString("a.string"), "llama");
  EXPECT_EQ(f.Get("a.strings").strings, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(f.Get("a.f32s").ArraySize(), 2u);
  EXPECT_EQ(f.Get("a.f32s").array[1].AsFloat("a.f32s"), -0.5);
  EXPECT_EQ(f.Get("a.i32s").array[1].AsInt("a.i32s"), -2);
  EXPECT_EQ(f.Get("a.i32s").array_type, GgufType::kI32);
}

TEST(GgufValue, Getters) {
  using T = GgufType;
  EXPECT_EQ(GgufValue::Uint(T::kU8, 200).AsInt("k"), 200);
  EXPECT_EQ(GgufValue::Int(T::kI16, -3).AsInt("k"), -3);
  EXPECT_EQ(GgufValue::Uint(T::kU64, 1ull << 62).AsInt("k"), 1ll << 62);
  EXPECT_THROW(GgufValue::Uint(T::kU64, 1ull << 63).AsInt("k"), InputError);  // does not fit
  EXPECT_EQ(GgufValue::Int(T::kI32, -4).AsFloat("k"), -4.0);
  EXPECT_EQ(GgufValue::Uint(T::kU32, 9).AsFloat("k"), 9.0);
  EXPECT_EQ(GgufValue::Float(T::kF64, 0.1).AsFloat("k"), 0.1);
  EXPECT_FALSE(GgufValue::Bool(false).AsBool("k"));
  EXPECT_EQ(GgufValue::String("s").AsString("k"), "s");

  try {
    GgufValue::Float(T::kF32, 1).AsInt("llama.block_count");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'llama.block_count' is f32, expected an integer"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(GgufValue::Bool(true).AsInt("k"), InputError);
  EXPECT_THROW(GgufValue::String("1").AsFloat("k"), InputError);
  EXPECT_THROW(GgufValue::Uint(T::kU8, 1).AsBool("k"), InputError);
  EXPECT_THROW(GgufValue::StringArray({"a"}).AsString("k"), InputError);
  EXPECT_THROW(GgufValue::Array(T::kI32, {}).AsInt("k"), InputError);
}

TEST(GgufFile, LookupsNameTheFile) {
  GgufWriter w;
  w.SetString("general.name", "tiny");
  w.SetU32("n", 3);
  std::vector<uint8_t> storage;
  const GgufFile f = ParseBuffer(w.Serialize(), storage, "tiny.gguf");
  EXPECT_EQ(f.FindInt("n"), 3);
  EXPECT_EQ(f.FindFloat("n"), 3.0);
  EXPECT_EQ(f.FindString("general.name"), "tiny");
  EXPECT_EQ(f.FindInt("missing"), std::nullopt);
  EXPECT_EQ(f.FindString("missing"), std::nullopt);
  EXPECT_EQ(f.Find("missing"), nullptr);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
  const auto message = [&](auto&& fn) {
    try {
      fn();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string missing = message([&] { f.GetInt("llama.block_count"); });
  EXPECT_NE(missing.find("'tiny.gguf'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("'llama.block_count' is missing"), std::string::npos) << missing;
  const std::string mismatch = message([&] { f.FindInt("general.name"); });
  EXPECT_NE(mismatch.find("'tiny.gguf': metadata key 'general.name' is string, expected an integer"),
            std::string::npos)
      << mismatch;
  EXPECT_NE(message([&] { f.GetString("n"); }).find("'tiny.gguf'"), std::string::npos);
  EXPECT_NE(message([&] { f.GetFloat("general.name"); }).find("'tiny.gguf'"), std::string::npos);
}

TEST(GgufRoundTrip, EveryDType) {
  for (int i = 0; i <= static_cast<int>(DType::kI32); ++i) {
    const DType dtype = static_cast<DType>(i);
    SCOPED_TRACE(std::string(Name(dtype)));
    const int64_t cols = 2 * Info(dtype).block_size;
    // 1-D, 2-D, 3-D and 4-D shapes of the same dtype.
    const std::vector<std::vector<int64_t>> shapes = {{cols}, {3, cols}, {2, 1, cols}, {2, 2, 1, cols}};
    GgufWriter w;
    std::vector<std::vector<uint8_t>> datas;
    for (size_t s = 0; s < shapes.size(); ++s) {
      int64_t rows = 1;
      for (size_t d = 0; d + 1 < shapes[s].size(); ++d) rows *= shapes[s][d];
      datas.push_back(RandomBytes(rows * RowBytes(dtype, cols), 100 * i + s));
      w.AddTensor(TensorName(s), dtype, shapes[s], datas[s].data(), datas[s].size());
    }
    std::vector<uint8_t> storage;
    const GgufFile f = ParseBuffer(w.Serialize(), storage);
    ASSERT_EQ(f.tensors().size(), shapes.size());
    for (size_t s = 0; s < shapes.size(); ++s) {
      const GgufTensorInfo& info = f.tensors()[s];
      EXPECT_EQ(info.name, TensorName(s));
      EXPECT_EQ(info.dtype, dtype);
      EXPECT_EQ(info.shape, shapes[s]);
      EXPECT_EQ(info.NumBytes(), datas[s].size());
      EXPECT_EQ(info.offset % 32, 0u);
      const TensorView v = f.View(info);
      EXPECT_EQ(v.shape, shapes[s]);
      EXPECT_EQ(v.NumBytes(), datas[s].size());
      EXPECT_EQ(std::memcmp(v.data, datas[s].data(), datas[s].size()), 0);
      EXPECT_EQ(f.FindTensor(info.name), &info);
    }
  }
}

// llama.cpp's gguf.cpp accepts a file only if tensor offsets are contiguous
// in info order with each tensor padded to the alignment, and it reads the
// padding after the last tensor too: check our files have that layout.
void ExpectLlamaCppLayout(const GgufFile& f) {
  uint64_t expected = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    EXPECT_EQ(t.offset, expected) << t.name;
    expected += (t.NumBytes() + f.alignment() - 1) / f.alignment() * f.alignment();
  }
  EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
  EXPECT_EQ(f.file_size(), f.data_offset() + expected);
}

TEST(GgufRoundTrip, AlignmentVariants) {
  for (uint32_t alignment : {1u, 8u, 16u, 32u, 64u, 256u, 4096u}) {
    SCOPED_TRACE(alignment);
    GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetAlignment(alignment);
    const auto a = RandomBytes(5 * 4, 1);  // odd sizes force padding
    const auto b = RandomBytes(3 * 34, 2);
    const auto c = RandomBytes(7 * 2, 3);
    w.AddTensor("a", DType::kF32, {5}, a.data(), a.size());
    w.AddTensor("b", DType::kQ8_0, {3, 32}, b.data(), b.size());
    w.AddTensor("c", DType::kF16, {7}, c.data(), c.size());
    std::vector<uint8_t> storage;
    const GgufFile f = ParseBuffer(w.Serialize(), storage);
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.Find("general.alignment") != nullptr, alignment != 32);
    if (alignment != 32) {
      EXPECT_EQ(f.GetInt("general.alignment"), alignment);
    }
    ExpectLlamaCppLayout(f);
    EXPECT_EQ(std::memcmp(f.View(*f.FindTensor("b")).data, b.data(), b.size()), 0);
    EXPECT_EQ(std::memcmp(f.View(*f.FindTensor("c")).data, c.data(), c.size()), 0);
  }
}

TEST(GgufRoundTrip, AlignmentThroughSetValue) {
  GgufWriter w;
  w.SetU32("general.alignment", 64);  // as when copying another file's metadata
  const auto a = RandomBytes(4, 1);
  w.AddTensor("a", DType::kF32, {1}, a.data(), a.size());
  std::vector<uint8_t> storage;
  const GgufFile f = ParseBuffer(w.Serialize(), storage);
  EXPECT_EQ(f.alignment(), 64u);
  ExpectLlamaCppLayout(f);
  w.SetAlignment(32);  // the key exists, so it is updated rather than left stale
  const GgufFile g = ParseBuffer(w.Serialize(), storage);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.GetInt("general.alignment"), 32);
}

TEST(GgufRoundTrip, Version2File) {
  // v2 and v3 share the little-endian layout; v3 only added big-endian files.
  GgufWriter w;
  w.SetString("general.name", "v2");
  w.SetStringArray("tokens", {"a", "b"});
  const auto a = RandomBytes(8 * 4, 9);
  w.AddTensor("w", DType::kF32, {2, 4}, a.data(), a.size());
  std::string bytes = w.Serialize();
  bytes[4] = 2;
  std::vector<uint8_t> storage;
  const GgufFile f = ParseBuffer(bytes, storage);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.GetString("general.name"), "v2");
  EXPECT_EQ(f.Get("tokens").strings.size(), 2u);
  EXPECT_EQ(std::memcmp(f.View(f.tensors()[0]).data, a.data(), a.size()), 0);
}

TEST(GgufRoundTrip, WriteAndOpenFromDisk) {
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/m.gguf";
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  const auto a = RandomBytes(2 * 18, 5);
  w.AddTensor("q", DType::kQ4_0, {2, 32}, a.data(), a.size());
  w.Write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  GgufFile f = GgufFile::Open(path);
  EXPECT_EQ(f.path(), path);
  const GgufFile moved = std::move(f);  // the mapping travels with the object
  EXPECT_EQ(std::memcmp(moved.View(moved.tensors()[0]).data, a.data(), a.size()), 0);
  EXPECT_THROW(GgufFile::Open(dir + "/missing.gguf"), InputError);
  std::filesystem::remove_all(dir);
}

TEST(GgufValue, Display) {
  using T = GgufType;
  EXPECT_EQ(GgufValue::Float(T::kF32, 1e-5f).ToDisplayString(), "1e-05");
  EXPECT_EQ(GgufValue::Float(T::kF64, 0.1).ToDisplayString(), "0.1");
  EXPECT_EQ(GgufValue::Float(T::kF32, 100000).ToDisplayString(), "100000");
  EXPECT_EQ(GgufValue::Float(T::kF32, -2).ToDisplayString(), "-2");
  EXPECT_EQ(GgufValue::Float(T::kF64, 1e300).ToDisplayString(), "1e+300");
  EXPECT_EQ(GgufValue::Uint(T::kU32, 30).ToDisplayString(), "30");
  EXPECT_EQ(GgufValue::Int(T::kI8, -3).ToDisplayString(), "-3");
  EXPECT_EQ(GgufValue::Bool(true).ToDisplayString(), "true");
  EXPECT_EQ(GgufValue::String("a\"b\n\x01").ToDisplayString(), "\"a\\\"b\\n\\x01\"");
  EXPECT_EQ(GgufValue::StringArray({"a", "b", "c"}).ToDisplayString(2), "[\"a\", \"b\", ...] (3 items)");
  EXPECT_EQ(GgufValue::StringArray({"a", "b"}).ToDisplayString(2), "[\"a\", \"b\"]");
  EXPECT_EQ(GgufValue::Array(T::kArray, {GgufValue::Array(T::kI32, {GgufValue::Int(T::kI32, 1)})})
                .ToDisplayString(),
            "[[1]]");
  const std::string long_string(1000, 'x');
  EXPECT_LT(GgufValue::String(long_string).ToDisplayString().size(), 200u);
  EXPECT_NE(GgufValue::String(long_string).ToDisplayString().find("(1000 bytes)"), std::string::npos);
  EXPECT_EQ(GgufValue::String(long_string).ToDisplayString(SIZE_MAX).size(), 1002u);
  EXPECT_EQ(GgufValue::StringArray({"a"}).TypeString(), "array[string]");
  EXPECT_EQ(GgufValue::Array(T::kArray, {GgufValue::Array(T::kF32, {})}).TypeString(),
            "array[array[f32]]");
}

TEST(GgufWriter, RefusesWhatReadersWouldReject) {
  GgufWriter w;
  const auto d = RandomBytes(64, 1);
  w.AddTensor("ok", DType::kF32, {4}, d.data(), 16);
  EXPECT_THROW(w.AddTensor("ok", DType::kF32, {4}, d.data(), 16), InputError);           // duplicate
  EXPECT_THROW(w.AddTensor(std::string(64, 'n'), DType::kF32, {4}, d.data(), 16), InputError);
  EXPECT_NO_THROW(w.AddTensor(std::string(63, 'n'), DType::kF32, {4}, d.data(), 16));
  EXPECT_THROW(w.AddTensor("", DType::kF32, {4}, d.data(), 16), InputError);
  EXPECT_THROW(w.AddTensor("size", DType::kF32, {4}, d.data(), 15), InputError);       // bytes
  EXPECT_THROW(w.AddTensor("block", DType::kQ4_0, {1, 16}, d.data(), 9), InputError);  // block
  EXPECT_THROW(w.AddTensor("dims", DType::kF32, {1, 1, 1, 1, 4}, d.data(), 16), InputError);
  EXPECT_THROW(w.AddTensor("scalar", DType::kF32, {}, d.data(), 4), InputError);
  EXPECT_THROW(w.AddTensor("neg", DType::kF32, {-1, 4}, d.data(), 16), InputError);
  EXPECT_THROW(w.AddTensor("huge", DType::kF32, {1ll << 40, 1ll << 40, 0}, d.data(), 0), InputError);
  EXPECT_NO_THROW(w.AddTensor("empty", DType::kF32, {1 << 20, 0}, d.data(), 0));
  EXPECT_THROW(w.SetAlignment(0), InputError);
  EXPECT_THROW(w.SetAlignment(48), InputError);
  EXPECT_THROW(w.SetValue("general.alignment", GgufValue::Uint(GgufType::kU64, 32)), InputError);
  EXPECT_THROW(w.SetValue("general.alignment", GgufValue::Uint(GgufType::kU32, 3)), InputError);
  GgufValue signed_alignment = GgufValue::Uint(GgufType::kU32, 0);
  signed_alignment.scalar = int64_t{64};  // hand-built: the other integer alternative
  EXPECT_NO_THROW(w.SetValue("general.alignment", signed_alignment));
  signed_alignment.scalar = int64_t{-64};
  EXPECT_THROW(w.SetValue("general.alignment", signed_alignment), InputError);
  EXPECT_THROW(w.SetValue("k", GgufValue::Uint(GgufType::kU8, 256)), InputError);
  EXPECT_THROW(w.SetValue("k", GgufValue::Int(GgufType::kI8, -129)), InputError);
  GgufValue mixed = GgufValue::Array(GgufType::kI32, {GgufValue::Uint(GgufType::kU8, 1)});
  EXPECT_THROW(w.SetValue("k", mixed), InputError);
  GgufValue wrong_variant;
  wrong_variant.type = GgufType::kString;  // but the scalar holds a number
  EXPECT_THROW(w.SetValue("k", wrong_variant), InputError);
  GgufValue deep = GgufValue::Array(GgufType::kU8, {});
  for (int i = 0; i < 8; ++i) deep = GgufValue::Array(GgufType::kArray, {deep});
  EXPECT_THROW(w.SetValue("k", deep), InputError);
  EXPECT_EQ(w.Serialize().substr(0, 4), "GGUF");  // refusals left the writer usable
}

}  // namespace
}  // namespace tokenlora
