// GGUF v2/v3 parser. Every count, length, dimension and offset in the file is
// untrusted: each read is bounds-checked, every size is computed with
// overflow checks, and counts are compared with the bytes left before
// anything is allocated, so a crafted file can neither crash us nor make us
// allocate far more than its own size. Layout (little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x (string key, u32 type, value)
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   zero padding to `general.alignment` (default 32) | tensor data
// where a string is u64 length + bytes, and an array value is u32 element
// type + u64 count + elements (arrays may nest).
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "io/gguf.h"
#include "io/io_util.h"

namespace tokenlora {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader decodes little-endian fields with memcpy");

using io_internal::CheckedAdd;
using io_internal::CheckedMul;
using io_internal::kTruncatedHint;
using io_internal::Quote;

constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nesting beyond this is corruption, not data
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kLastGgufType = static_cast<uint32_t>(GgufType::kF64);

// Smallest encoding of one value of type `t` (a string is at least its length
// field, an array at least its type and count). Bounds counts against the
// bytes left before we reserve memory for them.
uint64_t MinEncodedBytes(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: case GgufType::kString: return 8;
    case GgufType::kArray: return 12;
  }
  return 1;
}

// ggml type names, also for the types tokenlora does not load, so an error
// can say "q2_K" rather than a bare number. Gaps are ids ggml has retired.
std::string GgmlTypeName(uint32_t id) {
  static constexpr const char* kNames[] = {
      "f32",     "f16",    "q4_0",    "q4_1",  "",       "",      "q5_0",  "q5_1",
      "q8_0",    "q8_1",   "q2_K",    "q3_K",  "q4_K",   "q5_K",  "q6_K",  "q8_K",
      "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs",
      "i8",      "i16",    "i32",     "i64",   "f64",    "iq1_m", "bf16",  "",
      "",        "",       "tq1_0",   "tq2_0", "",       "",      "",      "mxfp4"};
  if (id < std::size(kNames) && kNames[id][0] != '\0') return kNames[id];
  return "unknown";
}

std::string SupportedGgmlTypes() {
  std::string out;
  for (int i = 0; i <= static_cast<int>(DType::kI32); ++i) {
    const DTypeInfo& info = Info(static_cast<DType>(i));
    if (!out.empty()) out += ", ";
    out += std::string(info.name) + " (" + std::to_string(info.ggml_type) + ")";
  }
  return out;
}

// What `GgufFile` holds, built by the parser and moved in by GgufFile::Parse.
struct ParsedGguf {
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::map<std::string, GgufValue> metadata;
  std::vector<std::string> metadata_order;
  std::vector<GgufTensorInfo> tensors;
  std::map<std::string, size_t> tensor_index;
};

class GgufParser {
 public:
  GgufParser(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  ParsedGguf Parse() {
    ParsedGguf out;
    ParseHeader(out);
    for (uint64_t i = 0; i < n_kv_; ++i) ParseKeyValue(i, out);
    where_.clear();
    out.alignment = ReadAlignment(out);
    for (uint64_t i = 0; i < n_tensors_; ++i) ParseTensorInfo(i, out);
    where_.clear();
    CheckTensorData(out);
    return out;
  }

 private:
  // ---- errors ----

  // "'x.gguf': metadata key #3 'general.name' (array element 5 of 9): <detail> — <hint>"
  [[noreturn]] void Fail(const std::string& detail, std::string_view hint) const {
    std::string msg = Quote(name_, 512) + ": ";
    if (!where_.empty()) {
      msg += where_;
      for (const auto& [index, count] : array_stack_) {
        msg += " (array element " + std::to_string(index) + " of " + std::to_string(count) + ")";
      }
      msg += ": ";
    }
    msg += detail;
    if (!hint.empty()) msg += " — " + std::string(hint);
    throw InputError(msg);
  }

  // ---- primitive reads ----

  void Need(uint64_t n, const char* what) const {
    if (n > size_ - pos_) {
      Fail("need " + std::to_string(n) + " bytes for " + what + " at offset " +
               std::to_string(pos_) + ", but the file ends at " + std::to_string(size_) + " bytes",
           kTruncatedHint);
    }
  }

  template <typename T>
  T Read(const char* what) {
    Need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string ReadString(const char* what) {
    const size_t start = pos_;
    const uint64_t len = Read<uint64_t>("a string length");
    if (len > size_ - pos_) {
      Fail(std::string(what) + " at offset " + std::to_string(start) + " claims " +
               std::to_string(len) + " bytes, but only " + std::to_string(size_ - pos_) +
               " bytes are left in the file (" + std::to_string(size_) + " bytes)",
           kTruncatedHint);
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  GgufType ReadType(const char* what) {
    const uint32_t t = Read<uint32_t>(what);
    if (t > kLastGgufType) {
      Fail("unknown " + std::string(what) + " " + std::to_string(t) + " (GGUF defines 0.." +
               std::to_string(kLastGgufType) + ": u8, i8, u16, i16, u32, i32, f32, bool, string, "
               "array, u64, i64, f64)",
           "corrupt file, or written by a newer GGUF version");
    }
    return static_cast<GgufType>(t);
  }

  // Fails unless `count` items of at least `min_bytes` each can fit in the
  // rest of the file.
  void CheckCount(uint64_t count, uint64_t min_bytes, const char* what) const {
    const uint64_t room = (size_ - pos_) / min_bytes;
    if (count > room) {
      Fail("claims " + std::to_string(count) + " " + what + ", but the " +
               std::to_string(size_ - pos_) + " bytes left in the file can hold at most " +
               std::to_string(room),
           "corrupt or truncated file");
    }
  }

  // ---- header and metadata ----

  void ParseHeader(ParsedGguf& out) {
    Need(4, "the magic number");
    const std::string_view magic(reinterpret_cast<const char*>(data_), 4);
    if (magic != "GGUF") {
      std::string detail = "not a GGUF file: it starts with " + Quote(magic) + ", expected 'GGUF'";
      // Older ggml formats stored their magic as a little-endian u32.
      if (magic == "lmgg" || magic == "fmgg" || magic == "tjgg" || magic == "algg") {
        Fail(detail + " (this is a pre-GGUF ggml/ggjt file)",
             "convert it to GGUF with a current llama.cpp");
      }
      Fail(detail, "tokenlora loads .gguf files; is this a safetensors or PyTorch checkpoint? "
                   "convert it with llama.cpp's convert_hf_to_gguf.py");
    }
    pos_ = 4;
    out.version = Read<uint32_t>("the version");
    if (out.version == 1) {
      Fail("GGUF version 1 is not supported (versions 2 and 3 are)",
           "version 1 predates August 2023; re-convert the model with a current llama.cpp");
    }
    if (out.version != 2 && out.version != 3) {
      if ((out.version & 0x00ffffff) == 0 && (out.version >> 24) <= 3) {  // 2 or 3, byte-swapped
        Fail("GGUF version field reads " + std::to_string(out.version) +
                 ": this is a big-endian GGUF file",
             "tokenlora reads little-endian files; re-convert without --bigendian");
      }
      Fail("unsupported GGUF version " + std::to_string(out.version) +
               " (tokenlora reads versions 2 and 3)",
           "written by a newer tool, or a corrupt file");
    }
    n_tensors_ = Read<uint64_t>("the tensor count");
    n_kv_ = Read<uint64_t>("the metadata count");
    // Smallest tensor info: name length + n_dims + type + offset; smallest key/value:
    // key length + type + a 1-byte value.
    where_ = "header tensor count";
    CheckCount(n_tensors_, 8 + 4 + 4 + 8, "tensors");
    where_ = "header metadata count";
    CheckCount(n_kv_, 8 + 4 + 1, "metadata keys");
  }

  void ParseKeyValue(uint64_t i, ParsedGguf& out) {
    where_ = "metadata key #" + std::to_string(i);
    std::string key = ReadString("key name");
    where_ = "metadata key #" + std::to_string(i) + " " + Quote(key);
    if (out.metadata.count(key) != 0) {
      Fail("duplicate key (it appears earlier in the file)", "corrupt file or a buggy converter");
    }
    const GgufType type = ReadType("value type");
    GgufValue value = ParseValue(type, 0);
    out.metadata_order.push_back(key);
    out.metadata.emplace(std::move(key), std::move(value));
  }

  GgufValue ParseValue(GgufType type, int depth) {
    GgufValue v;
    v.type = type;
    switch (type) {
      case GgufType::kU8: v.scalar = uint64_t{Read<uint8_t>("a u8 value")}; break;
      case GgufType::kI8: v.scalar = int64_t{Read<int8_t>("an i8 value")}; break;
      case GgufType::kU16: v.scalar = uint64_t{Read<uint16_t>("a u16 value")}; break;
      case GgufType::kI16: v.scalar = int64_t{Read<int16_t>("an i16 value")}; break;
      case GgufType::kU32: v.scalar = uint64_t{Read<uint32_t>("a u32 value")}; break;
      case GgufType::kI32: v.scalar = int64_t{Read<int32_t>("an i32 value")}; break;
      case GgufType::kU64: v.scalar = Read<uint64_t>("a u64 value"); break;
      case GgufType::kI64: v.scalar = Read<int64_t>("an i64 value"); break;
      case GgufType::kF32: v.scalar = double{Read<float>("an f32 value")}; break;
      case GgufType::kF64: v.scalar = Read<double>("an f64 value"); break;
      case GgufType::kBool: {
        const uint8_t b = Read<uint8_t>("a bool value");
        if (b > 1) {
          Fail("bool value at offset " + std::to_string(pos_ - 1) + " is " + std::to_string(b) +
                   ", expected 0 or 1",
               "corrupt file");
        }
        v.scalar = b == 1;
        break;
      }
      case GgufType::kString: v.scalar = ReadString("string value"); break;
      case GgufType::kArray: ParseArray(v, depth); break;
    }
    return v;
  }

  void ParseArray(GgufValue& v, int depth) {
    if (depth >= kMaxArrayDepth) {
      Fail("arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep",
           "corrupt file");
    }
    v.array_type = ReadType("array element type");
    const uint64_t count = Read<uint64_t>("an array length");
    CheckCount(count, MinEncodedBytes(v.array_type), "array elements");
    // Reserve no more than a modest amount up front: the check above bounds
    // the count by bytes, but an in-memory element is far larger than one byte.
    const size_t reserve = static_cast<size_t>(std::min<uint64_t>(count, 4096));
    array_stack_.emplace_back(0, count);
    if (v.array_type == GgufType::kString) {
      v.strings.reserve(reserve);
      for (uint64_t i = 0; i < count; ++i) {
        array_stack_.back().first = i;
        v.strings.push_back(ReadString("string element"));
      }
    } else {
      v.array.reserve(reserve);
      for (uint64_t i = 0; i < count; ++i) {
        array_stack_.back().first = i;
        v.array.push_back(ParseValue(v.array_type, depth + 1));
      }
    }
    array_stack_.pop_back();
  }

  uint64_t ReadAlignment(const ParsedGguf& out) {
    const auto it = out.metadata.find("general.alignment");
    if (it == out.metadata.end()) return kDefaultAlignment;
    where_ = "metadata key 'general.alignment'";
    const GgufValue& v = it->second;
    // gguf-py and llama.cpp insist on u32; so do we, to accept the same files.
    if (v.type != GgufType::kU32) {
      Fail("has type " + v.TypeString() + ", expected u32", "corrupt file or a buggy converter");
    }
    const uint64_t a = std::get<uint64_t>(v.scalar);
    if (a == 0 || (a & (a - 1)) != 0) {
      Fail("is " + std::to_string(a) + ", expected a power of two such as 32",
           "corrupt file or a buggy converter");
    }
    return a;
  }

  // ---- tensors ----

  void ParseTensorInfo(uint64_t i, ParsedGguf& out) {
    where_ = "tensor #" + std::to_string(i);
    GgufTensorInfo info;
    info.name = ReadString("tensor name");
    where_ = "tensor #" + std::to_string(i) + " " + Quote(info.name);
    if (out.tensor_index.count(info.name) != 0) {
      Fail("duplicate tensor name (it appears earlier in the file)",
           "corrupt file or a buggy converter");
    }
    const uint32_t n_dims = Read<uint32_t>("the dimension count");
    if (n_dims > kMaxDims) {
      Fail("has " + std::to_string(n_dims) + " dimensions; GGUF allows at most " +
               std::to_string(kMaxDims),
           "corrupt file");
    }
    uint64_t ne[kMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the row length
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = Read<uint64_t>("a dimension");
      if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        Fail("dimension ne[" + std::to_string(d) + "] is " + std::to_string(ne[d]) +
                 ", not a valid size",
             "corrupt file");
      }
    }
    const uint32_t ggml_type = Read<uint32_t>("the tensor type");
    const std::optional<DType> dtype =
        ggml_type > static_cast<uint32_t>(std::numeric_limits<int>::max())
            ? std::nullopt
            : DTypeFromGgml(static_cast<int>(ggml_type));
    if (!dtype) {
      Fail("has ggml type " + std::to_string(ggml_type) + " (" + GgmlTypeName(ggml_type) +
               "), which tokenlora does not load; supported: " + SupportedGgmlTypes(),
           "re-quantize the model to one of these, e.g. llama-quantize model-f16.gguf out.gguf "
           "Q4_K_M");
    }
    info.dtype = *dtype;
    info.offset = Read<uint64_t>("the data offset");

    const DTypeInfo& dt = Info(info.dtype);
    if (ne[0] % static_cast<uint64_t>(dt.block_size) != 0) {
      Fail("has rows of " + std::to_string(ne[0]) + " elements (ne[0]), not a multiple of the " +
               std::string(dt.name) + " block size " + std::to_string(dt.block_size),
           "corrupt file");
    }
    const std::vector<int64_t> dims(ne, ne + kMaxDims);  // each <= INT64_MAX, checked above
    if (!io_internal::CheckedProduct(dims)) {
      Fail("element count of ne " + NeString(ne, n_dims) + " overflows 64 bits", "corrupt file");
    }
    const uint64_t row_blocks = ne[0] / static_cast<uint64_t>(dt.block_size);
    std::optional<uint64_t> bytes = CheckedMul(row_blocks, dt.block_bytes);
    for (uint32_t d = 1; d < kMaxDims && bytes; ++d) bytes = CheckedMul(*bytes, ne[d]);
    if (!bytes) Fail("byte size of ne " + NeString(ne, n_dims) + " overflows 64 bits", "corrupt file");
    if (info.offset % out.alignment != 0) {
      Fail("data offset " + std::to_string(info.offset) + " is not a multiple of the file's "
               "alignment " + std::to_string(out.alignment),
           "corrupt file or a buggy converter");
    }
    for (uint32_t d = 0; d < n_dims; ++d) {
      info.shape.push_back(static_cast<int64_t>(ne[n_dims - 1 - d]));  // outermost first
    }
    byte_sizes_.push_back(*bytes);
    out.tensor_index.emplace(info.name, out.tensors.size());
    out.tensors.push_back(std::move(info));
  }

  static std::string NeString(const uint64_t* ne, uint32_t n_dims) {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
  }

  void CheckTensorData(ParsedGguf& out) {
    const std::optional<uint64_t> data_offset = io_internal::AlignUp(pos_, out.alignment);
    if (!data_offset) Fail("data section offset overflows", "corrupt file");
    out.data_offset = *data_offset;
    if (out.tensors.empty()) return;  // a metadata-only file needs no data section
    if (out.data_offset > size_) {
      Fail("the tensor data section starts at byte " + std::to_string(out.data_offset) +
               " (after the tensor infos, padded to the alignment " +
               std::to_string(out.alignment) + "), past the end of the file (" +
               std::to_string(size_) + " bytes)",
           kTruncatedHint);
    }
    const uint64_t room = size_ - out.data_offset;
    for (size_t i = 0; i < out.tensors.size(); ++i) {
      const GgufTensorInfo& t = out.tensors[i];
      const uint64_t bytes = byte_sizes_[i];
      if (t.offset > room || bytes > room - t.offset) {
        const std::optional<uint64_t> start = CheckedAdd(out.data_offset, t.offset);
        Fail("tensor " + Quote(t.name) + " data [file offset " +
                 (start ? std::to_string(*start) : "past 2^64") + ", " + std::to_string(bytes) +
                 " bytes] ends past the end of the file (" + std::to_string(size_) + " bytes)",
             kTruncatedHint);
      }
    }
  }

  const uint8_t* data_;
  const size_t size_;
  const std::string& name_;
  size_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  std::vector<uint64_t> byte_sizes_;  // per tensor, as computed from the checked shape
  // What is being read, for error messages: "metadata key #3 'x'", "tensor #0 'y'".
  std::string where_;
  std::vector<std::pair<uint64_t, uint64_t>> array_stack_;  // (index, count) per open array
};

}  // namespace

GgufFile GgufFile::Parse(const uint8_t* data, size_t size, const std::string& name) {
  ParsedGguf parsed = GgufParser(data, size, name).Parse();
  GgufFile f;
  f.data_ = data;
  f.size_ = size;
  f.path_ = name;
  f.version_ = parsed.version;
  f.alignment_ = parsed.alignment;
  f.data_offset_ = parsed.data_offset;
  f.metadata_ = std::move(parsed.metadata);
  f.metadata_order_ = std::move(parsed.metadata_order);
  f.tensors_ = std::move(parsed.tensors);
  f.tensor_index_ = std::move(parsed.tensor_index);
  return f;
}

}  // namespace tokenlora
