// Interop with the reference Python implementations (see
// scripts/make_golden_io.py): files written by gguf-py and the safetensors
// package are read with our readers and compared with the JSON the script
// wrote beside them; IoExport writes files with our writers for the script
// to check with gguf-py's GGUFReader and safetensors.safe_open.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "io_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using testing::Fnv1a64;
using testing::RandomBytes;
using testing::SourcePath;

std::string DataPath(const std::string& name) { return SourcePath("tests/data/io/" + name); }

Json ReadJson(const std::string& path) { return Json::parse(ReadTextFile(path)); }

std::string Hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// A metadata value as JSON: numbers, bools, strings, (nested) lists.
Json ToJson(const GgufValue& v) {
  if (v.IsArray()) {
    if (v.array_type == GgufType::kString) return Json(v.strings);
    Json out = Json::array();
    for (const GgufValue& item : v.array) out.push_back(ToJson(item));
    return out;
  }
  return std::visit([](const auto& x) { return Json(x); }, v.scalar);
}

// The first values of a plain-typed tensor, decoded as the script decodes them.
Json FirstValues(DType dtype, const void* data, size_t n_bytes) {
  Json out = Json::array();
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t size = dtype == DType::kF32 || dtype == DType::kI32 ? 4 : 2;
  for (size_t i = 0; i < 4 && (i + 1) * size <= n_bytes; ++i) {
    uint32_t u32 = 0;
    uint16_t u16 = 0;
    std::memcpy(size == 4 ? static_cast<void*>(&u32) : static_cast<void*>(&u16), p + i * size, size);
    float f;
    std::memcpy(&f, &u32, 4);
    switch (dtype) {
      case DType::kF32: out.push_back(static_cast<double>(f)); break;
      case DType::kI32: out.push_back(static_cast<int32_t>(u32)); break;
      case DType::kF16: out.push_back(static_cast<double>(F16ToF32(u16))); break;
      case DType::kBF16: out.push_back(static_cast<double>(BF16ToF32(u16))); break;
      default: return Json::array();  // quantized: only the checksum is compared
    }
  }
  return out;
}

// Checks one tensor against its JSON record.
void ExpectTensor(const TensorView& v, std::string_view dtype_name, uint64_t offset, const Json& rec) {
  SCOPED_TRACE(v.name);
  EXPECT_EQ(dtype_name, rec["dtype"].get<std::string>());
  EXPECT_EQ(v.shape, rec["shape"].get<std::vector<int64_t>>());
  EXPECT_EQ(offset, rec["offset"].get<uint64_t>());
  ASSERT_EQ(v.NumBytes(), rec["nbytes"].get<uint64_t>());
  EXPECT_EQ(Hex(Fnv1a64(v.data, v.NumBytes())), rec["fnv1a64"].get<std::string>());
  EXPECT_EQ(FirstValues(v.dtype, v.data, v.NumBytes()), rec["first_values"]);
}

void ExpectGgufMatches(const std::string& file) {
  SCOPED_TRACE(file);
  const GgufFile f = GgufFile::Open(DataPath(file + ".gguf"));
  const Json want = ReadJson(DataPath(file + ".json"));
  EXPECT_EQ(f.version(), want["version"].get<uint32_t>());
  EXPECT_EQ(f.alignment(), want["alignment"].get<uint64_t>());
  EXPECT_EQ(f.data_offset(), want["data_offset"].get<uint64_t>());
  std::vector<std::string> keys;
  for (const auto& [key, m] : want["metadata"].items()) {
    SCOPED_TRACE(key);
    keys.push_back(key);
    const GgufValue* v = f.Find(key);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->TypeString(), m["type"].get<std::string>());
    EXPECT_EQ(ToJson(*v), m["value"]);
  }
  EXPECT_EQ(f.metadata_order(), keys);
  ASSERT_EQ(f.tensors().size(), want["tensors"].size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensorInfo& t = f.tensors()[i];
    EXPECT_EQ(t.name, want["tensors"][i]["name"].get<std::string>());
    ExpectTensor(f.View(t), Name(t.dtype), t.offset, want["tensors"][i]);
  }
}

TEST(Golden, GgufWrittenByGgufPy) { ExpectGgufMatches("gguf_py_small"); }

TEST(Golden, GgufWithCustomAlignmentWrittenByGgufPy) { ExpectGgufMatches("gguf_py_align64"); }

TEST(Golden, SafetensorsWrittenByPythonPackage) {
  const SafetensorsFile f = SafetensorsFile::Open(DataPath("safetensors_py_small.safetensors"));
  const Json want = ReadJson(DataPath("safetensors_py_small.json"));
  EXPECT_EQ(Json(f.metadata()), want["metadata"]);
  ASSERT_EQ(f.tensors().size(), want["tensors"].size());
  for (const Json& rec : want["tensors"]) {
    const TensorView* v = f.Find(rec["name"].get<std::string>());
    ASSERT_NE(v, nullptr) << rec["name"];
    ExpectTensor(*v, SafetensorsName(v->dtype), f.DataOffset(*v), rec);
  }
}

TEST(Golden, ShardedDirectoryWrittenByPythonPackage) {
  const SafetensorsModel m = SafetensorsModel::OpenDirectory(DataPath("sharded"));
  const Json want = ReadJson(DataPath("sharded.json"));
  ASSERT_EQ(m.All().size(), want["tensors"].size());
  for (const Json& rec : want["tensors"]) {
    const TensorView* v = m.Find(rec["name"].get<std::string>());
    ASSERT_NE(v, nullptr) << rec["name"];
    const SafetensorsFile* owner = nullptr;
    for (const SafetensorsFile& file : m.files()) {
      if (file.Find(v->name) == v) owner = &file;
    }
    ASSERT_NE(owner, nullptr);
    EXPECT_EQ(fs::path(owner->path()).filename().string(), rec["file"].get<std::string>());
    ExpectTensor(*v, SafetensorsName(v->dtype), owner->DataOffset(*v), rec);
  }
}

TEST(Golden, UnsupportedDtypeWrittenByPythonPackage) {
  try {
    SafetensorsFile::Open(DataPath("safetensors_py_f64.safetensors"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'model.w' has dtype 'F64'"), std::string::npos) << e.what();
  }
}

// ---- files for the Python readers to check ----

struct ExportedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

Json TensorRecords(const std::vector<ExportedTensor>& tensors, bool safetensors, uint64_t alignment) {
  Json out = Json::array();
  uint64_t offset = 0;
  for (const ExportedTensor& t : tensors) {
    out.push_back({{"name", t.name},
                   {"dtype", safetensors ? SafetensorsName(t.dtype) : Name(t.dtype)},
                   {"shape", t.shape},
                   {"offset", offset},
                   {"nbytes", t.data.size()},
                   {"fnv1a64", Hex(Fnv1a64(t.data.data(), t.data.size()))}});
    offset += safetensors ? t.data.size() : (t.data.size() + alignment - 1) / alignment * alignment;
  }
  return out;
}

Json ExportGguf(const std::string& dir, const std::string& file, uint32_t alignment) {
  using T = GgufType;
  GgufWriter w;
  Json meta = Json::array();
  const auto set = [&](const std::string& key, const GgufValue& v) {
    w.SetValue(key, v);
    meta.push_back({{"key", key}, {"type", v.TypeString()}, {"value", ToJson(v)}});
  };
  set("general.architecture", GgufValue::String("llama"));
  if (alignment != 32) set("general.alignment", GgufValue::Uint(T::kU32, alignment));
  set("t.u8", GgufValue::Uint(T::kU8, 255));
  set("t.i8", GgufValue::Int(T::kI8, -128));
  set("t.u16", GgufValue::Uint(T::kU16, 65535));
  set("t.i16", GgufValue::Int(T::kI16, -32768));
  set("t.u32", GgufValue::Uint(T::kU32, 4294967295u));
  set("t.i32", GgufValue::Int(T::kI32, -2147483647 - 1));
  set("t.u64", GgufValue::Uint(T::kU64, ~0ull));
  set("t.i64", GgufValue::Int(T::kI64, -9223372036854775807ll - 1));
  set("t.f32", GgufValue::Float(T::kF32, static_cast<double>(1e-5f)));
  set("t.f64", GgufValue::Float(T::kF64, 2.718281828459045));
  set("t.bool", GgufValue::Bool(true));
  set("t.string", GgufValue::String("héllo\nwörld ▁ <|im_end|>"));
  set("t.strings", GgufValue::StringArray({"a", "", "Ġthe"}));
  set("t.f32s", GgufValue::Array(T::kF32, {GgufValue::Float(T::kF32, 0.5), GgufValue::Float(T::kF32, -1.25)}));
  set("t.i64s", GgufValue::Array(T::kI64, {GgufValue::Int(T::kI64, -1), GgufValue::Int(T::kI64, 1ll << 40)}));
  set("t.u8s", GgufValue::Array(T::kU8, {GgufValue::Uint(T::kU8, 1), GgufValue::Uint(T::kU8, 2)}));
  set("t.bools", GgufValue::Array(T::kBool, {GgufValue::Bool(false), GgufValue::Bool(true)}));
  set("t.empty", GgufValue::Array(T::kI32, {}));
  set("t.nested", GgufValue::Array(T::kArray, {GgufValue::Array(T::kI32, {GgufValue::Int(T::kI32, 1),
                                                                          GgufValue::Int(T::kI32, 2)}),
                                               GgufValue::Array(T::kI32, {GgufValue::Int(T::kI32, 3)})}));
  std::vector<ExportedTensor> tensors;
  for (int i = 0; i <= static_cast<int>(DType::kI32); ++i) {
    const DType dtype = static_cast<DType>(i);
    const int64_t cols = Info(dtype).block_size * 2;
    const std::vector<int64_t> shape = {3, cols};
    tensors.push_back({"blk.0." + std::string(Name(dtype)), dtype, shape,
                       RandomBytes(3 * RowBytes(dtype, cols), 7 + i)});
  }
  for (const ExportedTensor& t : tensors) w.AddTensor(t.name, t.dtype, t.shape, t.data.data(), t.data.size());
  w.Write(dir + "/" + file);
  return {{"file", file}, {"alignment", alignment}, {"metadata", meta},
          {"tensors", TensorRecords(tensors, false, alignment)}};
}

Json ExportSafetensors(const std::string& dir, const std::string& file) {
  const std::vector<ExportedTensor> tensors = {
      {"model.embed_tokens.weight", DType::kBF16, {4, 3}, RandomBytes(4 * 3 * 2, 1)},
      {"lm_head.weight", DType::kF16, {3, 4}, RandomBytes(3 * 4 * 2, 2)},
      {"model.norm.weight", DType::kF32, {5}, RandomBytes(5 * 4, 3)},
      {"ids", DType::kI32, {2, 1}, RandomBytes(2 * 4, 4)},
      {"scalar", DType::kF32, {}, RandomBytes(4, 5)}};
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  w.SetMetadata("note", "written by tokenlora ✓");
  for (const ExportedTensor& t : tensors) w.AddTensor(t.name, t.dtype, t.shape, t.data.data(), t.data.size());
  w.Write(dir + "/" + file);
  return {{"file", file},
          {"metadata", {{"format", "pt"}, {"note", "written by tokenlora ✓"}}},
          {"tensors", TensorRecords(tensors, true, 1)}};
}

// Writes the files scripts/make_golden_io.py checks with the Python readers
// (into $TOKENLORA_IO_EXPORT_DIR when set), and checks them with ours too.
TEST(IoExport, ForPython) {
  const char* env = std::getenv("TOKENLORA_IO_EXPORT_DIR");
  const std::string dir = env != nullptr ? env : testing::TempDir();
  const Json expected = {{"gguf", {ExportGguf(dir, "written_by_tokenlora.gguf", 32),
                                   ExportGguf(dir, "written_by_tokenlora_align64.gguf", 64)}},
                         {"safetensors", ExportSafetensors(dir, "written_by_tokenlora.safetensors")}};
  WriteFileAtomically(dir + "/written_by_tokenlora.json", expected.dump(1));

  for (const Json& g : expected["gguf"]) {
    const GgufFile f = GgufFile::Open(dir + "/" + g["file"].get<std::string>());
    ASSERT_EQ(f.metadata().size(), g["metadata"].size());
    for (const Json& m : g["metadata"]) {
      const GgufValue& v = f.Get(m["key"].get<std::string>());
      EXPECT_EQ(v.TypeString(), m["type"].get<std::string>());
      EXPECT_EQ(ToJson(v), m["value"]);
    }
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const Json& rec = g["tensors"][i];
      EXPECT_EQ(Hex(Fnv1a64(f.View(f.tensors()[i]).data, f.tensors()[i].NumBytes())),
                rec["fnv1a64"].get<std::string>());
      EXPECT_EQ(f.tensors()[i].offset, rec["offset"].get<uint64_t>());
    }
  }
  const SafetensorsFile st = SafetensorsFile::Open(dir + "/written_by_tokenlora.safetensors");
  EXPECT_EQ(st.tensors().size(), expected["safetensors"]["tensors"].size());
  if (env == nullptr) fs::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora
