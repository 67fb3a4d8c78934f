// GgufValue conversions and display, GgufFile lookups. The parser is in
// gguf_reader.cc, the writer in gguf_writer.cc.
#include "io/gguf.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora {
namespace {

using io_internal::DoubleQuote;
using io_internal::Escape;
using io_internal::Quote;

// Long strings (chat templates run to kilobytes) are cut in `inspect` output.
constexpr size_t kDisplayStringBytes = 160;

bool IsUnsignedType(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
}
bool IsSignedType(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}

[[noreturn]] void ThrowMismatch(const GgufValue& v, const std::string& key, const char* expected) {
  throw InputError("metadata key " + Quote(key) + " is " + v.TypeString() + ", expected " +
                   expected + " (the file may come from a different converter; `tokenlora inspect` "
                   "lists every key with its type)");
}

// Scalars are stored widened; a hand-built value may hold either integer
// alternative, so read whichever is there.
std::optional<int64_t> IntegerOf(const GgufValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.scalar)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&v.scalar)) return *i;
  return std::nullopt;
}

// Shortest text that reads back as the same value; whole numbers stay in
// plain notation (rope.freq_base 100000 reads better than 1e+05).
std::string ShortestFloat(double v, bool single) {
  char buf[64];
  const bool whole = std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 1e15;
  std::to_chars_result r;
  if (single) {
    const auto f = static_cast<float>(v);
    r = whole ? std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed)
              : std::to_chars(buf, buf + sizeof buf, f);
  } else {
    r = whole ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
              : std::to_chars(buf, buf + sizeof buf, v);
  }
  return std::string(buf, r.ptr);
}

// Runs `f` and puts the file's name in front of any InputError it throws, so
// GgufValue's messages (which only know the key) name the file too.
template <typename F>
auto NamingFile(const std::string& path, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError& e) {
    throw InputError(Quote(path, 512) + ": " + e.what());
  }
}

}  // namespace

std::string_view GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "unknown";
}

// ---- GgufValue ----

int64_t GgufValue::AsInt(const std::string& key) const {
  if (!IsUnsignedType(type) && !IsSignedType(type)) ThrowMismatch(*this, key, "an integer");
  const std::optional<int64_t> v = IntegerOf(*this);
  if (!v) {
    throw InputError("metadata key " + Quote(key) + " holds " + ToDisplayString() +
                     ", which does not fit in a signed 64-bit integer (corrupt file?)");
  }
  return *v;
}

double GgufValue::AsFloat(const std::string& key) const {
  if (type == GgufType::kF32 || type == GgufType::kF64) {
    if (const auto* d = std::get_if<double>(&scalar)) return *d;
  }
  if (IsUnsignedType(type)) {
    if (const auto* u = std::get_if<uint64_t>(&scalar)) return static_cast<double>(*u);
  }
  if (IsSignedType(type)) {
    if (const auto* i = std::get_if<int64_t>(&scalar)) return static_cast<double>(*i);
  }
  ThrowMismatch(*this, key, "a number");
}

bool GgufValue::AsBool(const std::string& key) const {
  const auto* b = std::get_if<bool>(&scalar);
  if (type != GgufType::kBool || b == nullptr) ThrowMismatch(*this, key, "a bool");
  return *b;
}

const std::string& GgufValue::AsString(const std::string& key) const {
  const auto* s = std::get_if<std::string>(&scalar);
  if (type != GgufType::kString || s == nullptr) ThrowMismatch(*this, key, "a string");
  return *s;
}

std::string GgufValue::TypeString() const {
  if (!IsArray()) return std::string(GgufTypeName(type));
  // A nested array names its first element's type; an empty one cannot.
  if (array_type == GgufType::kArray) {
    return "array[" + (array.empty() ? std::string("array") : array.front().TypeString()) + "]";
  }
  return "array[" + std::string(GgufTypeName(array_type)) + "]";
}

std::string GgufValue::ToDisplayString(size_t max_items) const {
  const bool unlimited = max_items == std::numeric_limits<size_t>::max();
  const size_t max_bytes = unlimited ? std::numeric_limits<size_t>::max() : kDisplayStringBytes;
  if (IsArray()) {
    const size_t n = ArraySize();
    std::string out = "[";
    for (size_t i = 0; i < n && i < max_items; ++i) {
      if (i) out += ", ";
      if (array_type == GgufType::kString) {
        out += DoubleQuote(strings[i], max_bytes);
      } else {
        out += array[i].ToDisplayString(max_items);
      }
    }
    if (n > max_items) out += ", ...";
    out += "]";
    if (n > max_items) out += " (" + std::to_string(n) + " items)";
    return out;
  }
  if (const auto* s = std::get_if<std::string>(&scalar)) return DoubleQuote(*s, max_bytes);
  if (const auto* b = std::get_if<bool>(&scalar)) return *b ? "true" : "false";
  if (const auto* d = std::get_if<double>(&scalar)) return ShortestFloat(*d, type == GgufType::kF32);
  if (const auto* u = std::get_if<uint64_t>(&scalar)) return std::to_string(*u);
  return std::to_string(std::get<int64_t>(scalar));
}

GgufValue GgufValue::Uint(GgufType type, uint64_t v) {
  TL_CHECK(IsUnsignedType(type));
  GgufValue out;
  out.type = type;
  out.scalar = v;
  return out;
}

GgufValue GgufValue::Int(GgufType type, int64_t v) {
  TL_CHECK(IsSignedType(type));
  GgufValue out;
  out.type = type;
  out.scalar = v;
  return out;
}

GgufValue GgufValue::Float(GgufType type, double v) {
  TL_CHECK(type == GgufType::kF32 || type == GgufType::kF64);
  GgufValue out;
  out.type = type;
  out.scalar = v;
  return out;
}

GgufValue GgufValue::Bool(bool v) {
  GgufValue out;
  out.type = GgufType::kBool;
  out.scalar = v;
  return out;
}

GgufValue GgufValue::String(std::string v) {
  GgufValue out;
  out.type = GgufType::kString;
  out.scalar = std::move(v);
  return out;
}

GgufValue GgufValue::StringArray(std::vector<std::string> v) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.array_type = GgufType::kString;
  out.strings = std::move(v);
  return out;
}

GgufValue GgufValue::Array(GgufType element_type, std::vector<GgufValue> items) {
  TL_CHECK(element_type != GgufType::kString);  // use StringArray
  GgufValue out;
  out.type = GgufType::kArray;
  out.array_type = element_type;
  out.array = std::move(items);
  return out;
}

// ---- GgufTensorInfo ----

uint64_t GgufTensorInfo::NumElements() const {
  const std::optional<uint64_t> n = io_internal::CheckedProduct(shape);
  TL_CHECK_MSG(n.has_value(), "tensor '" + name + "' has an invalid shape");
  return *n;
}

uint64_t GgufTensorInfo::NumBytes() const {
  if (shape.empty()) return RowBytes(dtype, 1);  // a scalar (plain types only)
  // [rows, cols]: ggml stores each row of `cols` elements as whole blocks.
  const std::span<const int64_t> dims(shape);
  const std::optional<uint64_t> rows = io_internal::CheckedProduct(dims.first(dims.size() - 1));
  TL_CHECK_MSG(rows.has_value() && shape.back() >= 0, "tensor '" + name + "' has an invalid shape");
  return *rows * RowBytes(dtype, shape.back());  // the reader checked that this fits
}

// ---- GgufFile lookups ----

GgufFile GgufFile::Open(const std::string& path) {
  auto file = std::make_shared<MappedFile>(MappedFile::Open(path));
  GgufFile gguf = Parse(file->data(), file->size(), path);
  gguf.file_ = std::move(file);
  return gguf;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::Get(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) {
    throw InputError(Quote(path_, 512) + ": required metadata key " + Quote(key) +
                     " is missing (the file has " + std::to_string(metadata_.size()) +
                     " keys; `tokenlora inspect` lists them — converted for a different "
                     "architecture or by an old converter?)");
  }
  return *v;
}

int64_t GgufFile::GetInt(const std::string& key) const {
  return NamingFile(path_, [&] { return Get(key).AsInt(key); });
}

std::optional<int64_t> GgufFile::FindInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::nullopt;
  return NamingFile(path_, [&] { return v->AsInt(key); });
}

double GgufFile::GetFloat(const std::string& key) const {
  return NamingFile(path_, [&] { return Get(key).AsFloat(key); });
}

std::optional<double> GgufFile::FindFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::nullopt;
  return NamingFile(path_, [&] { return v->AsFloat(key); });
}

std::string GgufFile::GetString(const std::string& key) const {
  return NamingFile(path_, [&] { return Get(key).AsString(key); });
}

std::optional<std::string> GgufFile::FindString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::nullopt;
  return NamingFile(path_, [&] { return v->AsString(key); });
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorView GgufFile::View(const GgufTensorInfo& info) const {
  // The parser checked every tensor of this file; an info from elsewhere is a bug.
  const uint64_t room = size_ >= data_offset_ ? size_ - data_offset_ : 0;
  TL_CHECK_MSG(info.offset <= room && info.NumBytes() <= room - info.offset,
               "tensor '" + info.name + "' does not belong to '" + path_ + "'");
  TensorView view;
  view.name = info.name;
  view.dtype = info.dtype;
  view.shape = info.shape;
  view.data = data_ + data_offset_ + info.offset;
  return view;
}

}  // namespace tokenlora
