// GGUF v3 writer. The output follows what llama.cpp's gguf.cpp demands, which
// is stricter than the format document: tensor data offsets are contiguous in
// tensor-info order, each tensor padded to the alignment (the last one too),
// tensor names shorter than 64 bytes, no duplicate keys or names, and
// `general.alignment` (written only when not 32) a u32 power of two.
#include <cstring>
#include <limits>

#include "core/error.h"
#include "io/gguf.h"
#include "io/io_util.h"

namespace tokenlora {
namespace {

using io_internal::Quote;

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr size_t kMaxNameBytes = 63;  // llama.cpp: GGML_MAX_NAME (64) including the NUL
constexpr size_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;     // the reader refuses deeper nesting

template <typename T>
void Append(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // the host is little-endian (checked in gguf_reader.cc)
  out.append(buf, sizeof(T));
}

void AppendString(std::string& out, std::string_view s) {
  Append<uint64_t>(out, s.size());
  out.append(s);
}

void PadTo(std::string& out, uint64_t alignment) {
  out.append(static_cast<size_t>(*io_internal::AlignUp(out.size(), alignment) - out.size()), '\0');
}

[[noreturn]] void BadValue(const std::string& key, const std::string& detail) {
  throw InputError("GGUF metadata key " + Quote(key) + ": " + detail);
}

// The integer a scalar holds, as a signed 128-bit value so both range checks
// are exact; nullopt if it holds no integer.
std::optional<__int128> IntegerOf(const GgufValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return static_cast<__int128>(*u);
  if (const auto* i = std::get_if<int64_t>(&v.scalar)) return static_cast<__int128>(*i);
  return std::nullopt;
}

template <typename T>
void AppendInteger(std::string& out, const GgufValue& v, const std::string& key) {
  const std::optional<__int128> x = IntegerOf(v);
  if (!x) BadValue(key, "type " + v.TypeString() + " but the value holds no integer");
  if (*x < static_cast<__int128>(std::numeric_limits<T>::min()) ||
      *x > static_cast<__int128>(std::numeric_limits<T>::max())) {
    BadValue(key, "value does not fit in " + v.TypeString());
  }
  Append<T>(out, static_cast<T>(*x));
}

// Appends the encoding of `v` (without its leading type tag) and validates
// that the value is consistent: the variant matches the type, integers fit,
// array elements all have the array's element type.
void EncodeValue(std::string& out, const GgufValue& v, const std::string& key, int depth) {
  switch (v.type) {
    case GgufType::kU8: AppendInteger<uint8_t>(out, v, key); return;
    case GgufType::kI8: AppendInteger<int8_t>(out, v, key); return;
    case GgufType::kU16: AppendInteger<uint16_t>(out, v, key); return;
    case GgufType::kI16: AppendInteger<int16_t>(out, v, key); return;
    case GgufType::kU32: AppendInteger<uint32_t>(out, v, key); return;
    case GgufType::kI32: AppendInteger<int32_t>(out, v, key); return;
    case GgufType::kU64: AppendInteger<uint64_t>(out, v, key); return;
    case GgufType::kI64: AppendInteger<int64_t>(out, v, key); return;
    case GgufType::kF32:
    case GgufType::kF64: {
      const auto* d = std::get_if<double>(&v.scalar);
      if (d == nullptr) BadValue(key, "type " + v.TypeString() + " but the value holds no number");
      if (v.type == GgufType::kF32) {
        Append<float>(out, static_cast<float>(*d));
      } else {
        Append<double>(out, *d);
      }
      return;
    }
    case GgufType::kBool: {
      const auto* b = std::get_if<bool>(&v.scalar);
      if (b == nullptr) BadValue(key, "type bool but the value holds no bool");
      Append<uint8_t>(out, *b ? 1 : 0);
      return;
    }
    case GgufType::kString: {
      const auto* s = std::get_if<std::string>(&v.scalar);
      if (s == nullptr) BadValue(key, "type string but the value holds no string");
      AppendString(out, *s);
      return;
    }
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) {
        BadValue(key, "arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
      }
      Append<uint32_t>(out, static_cast<uint32_t>(v.array_type));
      if (v.array_type == GgufType::kString) {
        if (!v.array.empty()) BadValue(key, "a string array must keep its items in `strings`");
        Append<uint64_t>(out, v.strings.size());
        for (const std::string& s : v.strings) AppendString(out, s);
        return;
      }
      if (!v.strings.empty()) BadValue(key, "`strings` is set but the array holds " +
                                                std::string(GgufTypeName(v.array_type)));
      Append<uint64_t>(out, v.array.size());
      for (const GgufValue& item : v.array) {
        if (item.type != v.array_type) {
          BadValue(key, "array of " + std::string(GgufTypeName(v.array_type)) +
                            " holds an item of type " + item.TypeString());
        }
        EncodeValue(out, item, key, depth + 1);
      }
      return;
    }
  }
  BadValue(key, "unknown value type " + std::to_string(static_cast<uint32_t>(v.type)));
}

void CheckAlignment(uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
      alignment > std::numeric_limits<uint32_t>::max()) {
    throw InputError("GGUF alignment " + std::to_string(alignment) +
                     " is not a power of two that fits in u32 (the default is 32)");
  }
}

uint64_t TensorBytes(DType dtype, const std::vector<int64_t>& shape) {
  // [rows, cols], with each row stored as whole blocks of the dtype.
  const std::span<const int64_t> dims(shape);
  const std::optional<uint64_t> rows = io_internal::CheckedProduct(dims)
                                           ? io_internal::CheckedProduct(dims.first(dims.size() - 1))
                                           : std::nullopt;
  const std::optional<uint64_t> bytes =
      rows ? io_internal::CheckedMul(*rows, RowBytes(dtype, shape.back())) : std::nullopt;
  if (!bytes) throw InputError("GGUF tensor shape " + ShapeString(shape) + " is too large");
  return *bytes;
}

}  // namespace

void GgufWriter::SetU32(const std::string& key, uint32_t v) {
  SetValue(key, GgufValue::Uint(GgufType::kU32, v));
}
void GgufWriter::SetI32(const std::string& key, int32_t v) {
  SetValue(key, GgufValue::Int(GgufType::kI32, v));
}
void GgufWriter::SetU64(const std::string& key, uint64_t v) {
  SetValue(key, GgufValue::Uint(GgufType::kU64, v));
}
void GgufWriter::SetF32(const std::string& key, float v) {
  SetValue(key, GgufValue::Float(GgufType::kF32, v));
}
void GgufWriter::SetBool(const std::string& key, bool v) { SetValue(key, GgufValue::Bool(v)); }
void GgufWriter::SetString(const std::string& key, const std::string& v) {
  SetValue(key, GgufValue::String(v));
}
void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& v) {
  SetValue(key, GgufValue::StringArray(v));
}
void GgufWriter::SetF32Array(const std::string& key, const std::vector<float>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float x : v) items.push_back(GgufValue::Float(GgufType::kF32, x));
  SetValue(key, GgufValue::Array(GgufType::kF32, std::move(items)));
}
void GgufWriter::SetI32Array(const std::string& key, const std::vector<int32_t>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (int32_t x : v) items.push_back(GgufValue::Int(GgufType::kI32, x));
  SetValue(key, GgufValue::Array(GgufType::kI32, std::move(items)));
}

void GgufWriter::SetValue(const std::string& key, const GgufValue& v) {
  std::string scratch;
  EncodeValue(scratch, v, key, 0);  // validates, so Serialize cannot fail on it
  if (key == "general.alignment") {
    if (v.type != GgufType::kU32) {
      BadValue(key, "must be u32 (llama.cpp and gguf-py refuse other types), got " +
                        v.TypeString());
    }
    const auto alignment = static_cast<uint64_t>(*IntegerOf(v));  // EncodeValue: fits in u32
    CheckAlignment(alignment);
    alignment_ = static_cast<uint32_t>(alignment);
  }
  // Setting a key again replaces its value in place, keeping the key order.
  for (auto& [k, value] : metadata_) {
    if (k == key) {
      value = v;
      return;
    }
  }
  metadata_.emplace_back(key, v);
}

void GgufWriter::SetAlignment(uint32_t alignment) {
  CheckAlignment(alignment);
  bool has_key = false;
  for (const auto& kv : metadata_) has_key = has_key || kv.first == "general.alignment";
  // The key is optional at the default; writing it then would only add noise.
  if (alignment != kDefaultAlignment || has_key) SetU32("general.alignment", alignment);
  alignment_ = alignment;
}

void GgufWriter::AddTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                           const void* data, size_t num_bytes) {
  const std::string what = "GGUF tensor " + Quote(name);
  if (name.empty() || name.size() > kMaxNameBytes) {
    throw InputError(what + ": name is " + std::to_string(name.size()) +
                     " bytes; llama.cpp accepts 1 to " + std::to_string(kMaxNameBytes));
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) throw InputError(what + " is added twice");
  }
  if (shape.empty() || shape.size() > kMaxDims) {
    throw InputError(what + ": shape " + ShapeString(shape) + " has " +
                     std::to_string(shape.size()) + " dimensions; GGUF allows 1 to 4");
  }
  for (int64_t d : shape) {
    if (d < 0) throw InputError(what + ": shape " + ShapeString(shape) + " has a negative size");
  }
  const DTypeInfo& dt = Info(dtype);
  if (shape.back() % dt.block_size != 0) {
    throw InputError(what + ": rows of " + std::to_string(shape.back()) + " " +
                     std::string(dt.name) + " elements are not a multiple of its block size " +
                     std::to_string(dt.block_size));
  }
  const uint64_t expected = TensorBytes(dtype, shape);
  if (expected != num_bytes) {
    throw InputError(what + ": " + std::string(dt.name) + " " + ShapeString(shape) + " takes " +
                     std::to_string(expected) + " bytes, got " + std::to_string(num_bytes));
  }
  TL_CHECK(data != nullptr || num_bytes == 0);
  const auto* bytes = static_cast<const uint8_t*>(data);
  tensors_.push_back(Tensor{name, dtype, shape, std::vector<uint8_t>(bytes, bytes + num_bytes)});
}

std::string GgufWriter::Serialize() const {
  std::string out;
  Append<uint32_t>(out, kMagic);
  Append<uint32_t>(out, kVersion);
  Append<uint64_t>(out, tensors_.size());
  Append<uint64_t>(out, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    AppendString(out, key);
    Append<uint32_t>(out, static_cast<uint32_t>(value.type));
    EncodeValue(out, value, key, 0);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    AppendString(out, t.name);
    Append<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) Append<uint64_t>(out, t.shape[d]);  // ggml ne[] order
    Append<uint32_t>(out, static_cast<uint32_t>(Info(t.dtype).ggml_type));
    Append<uint64_t>(out, offset);
    offset = *io_internal::AlignUp(offset + t.data.size(), alignment_);
  }
  PadTo(out, alignment_);
  out.reserve(out.size() + offset);
  for (const Tensor& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
    PadTo(out, alignment_);
  }
  return out;
}

void GgufWriter::Write(const std::string& path) const { WriteFileAtomically(path, Serialize()); }

}  // namespace tokenlora
