#include "io/inspect.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "io/safetensors.h"

namespace tokenlora {
namespace {

using io_internal::DoubleQuote;
using io_internal::Escape;
using io_internal::HumanBytes;
using io_internal::Quote;
namespace fs = std::filesystem;

constexpr size_t kMaxArrayItemsShown = 8;

// Left-aligned columns separated by two spaces; columns listed in
// `right_aligned` (numbers) are right-aligned. Each row is indented.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows,
                        const std::vector<size_t>& right_aligned, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t c = 0; c < row.size(); ++c) {
      const bool right = std::find(right_aligned.begin(), right_aligned.end(), c) != right_aligned.end();
      const std::string pad(width[c] - row[c].size(), ' ');
      if (c) line += "  ";
      line += right ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : "");
    }
    out += line + "\n";
  }
  return out;
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "512 bytes", "30081024 bytes (28.7 MiB)".
std::string Bytes(uint64_t n) {
  std::string out = std::to_string(n) + " bytes";
  if (n >= 1024) out += " (" + HumanBytes(n) + ")";
  return out;
}

// Totals over a tensor list: count and bytes overall and per dtype.
struct Totals {
  uint64_t count = 0;
  uint64_t bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_dtype;  // name -> (count, bytes)

  void Add(std::string_view dtype, uint64_t n) {
    ++count;
    bytes += n;
    auto& [c, b] = by_dtype[std::string(dtype)];
    ++c;
    b += n;
  }
  std::string Render() const {
    std::string out = "total: " + Plural(count, "tensor", "tensors") + ", " + Bytes(bytes) + "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, cb] : by_dtype) {
      rows.push_back({name, Plural(cb.first, "tensor", "tensors"), Bytes(cb.second)});
    }
    return out + RenderTable(rows, {1}, "  ");
  }
};

// Reads up to 16 leading bytes to tell the file kinds apart.
std::string LeadingBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open " + Quote(path, 512) + ": " + std::strerror(errno));
  char buf[16];
  in.read(buf, sizeof buf);
  return std::string(buf, static_cast<size_t>(in.gcount()));
}

bool LooksLikeSafetensors(const std::string& path, const std::string& head) {
  if (fs::path(path).extension() == ".safetensors") return true;
  // u64 header length, then the JSON header's '{'.
  return head.size() > 8 && head[8] == '{' && static_cast<uint8_t>(head[7]) == 0;
}

[[noreturn]] void ThrowUnknownKind(const std::string& path, const std::string& head) {
  std::string hex;
  for (size_t i = 0; i < head.size() && i < 8; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", static_cast<uint8_t>(head[i]));
    if (i) hex += ' ';
    hex += b;
  }
  std::string hint = "inspect reads .gguf files, .safetensors files and Hugging Face model "
                     "directories";
  if (head.rfind("PK", 0) == 0) {
    hint = "this is a zip archive, likely a PyTorch .bin/.pt checkpoint; convert it to "
           "safetensors (or GGUF) first";
  } else if (!head.empty() && (head[0] == '{' || head[0] == '[')) {
    hint = "this looks like a JSON file; pass the model directory that holds it instead";
  }
  throw InputError(Quote(path, 512) + ": not a GGUF or safetensors file (it starts with bytes " +
                   (hex.empty() ? std::string("<none: empty file>") : hex) + ") — " + hint);
}

}  // namespace

std::string FormatGgufSummary(const GgufFile& file) {
  std::string out = "file: " + Escape(file.path(), 512) + " (" + Bytes(file.file_size()) + ")\n";
  out += "format: GGUF version " + std::to_string(file.version()) + ", alignment " +
         std::to_string(file.alignment()) + ", tensor data at byte " +
         std::to_string(file.data_offset()) + "\n\n";

  out += "metadata (" + Plural(file.metadata_order().size(), "key", "keys") + "):\n";
  std::vector<std::vector<std::string>> rows;
  for (const std::string& key : file.metadata_order()) {
    const GgufValue& v = file.metadata().at(key);
    rows.push_back({Escape(key, 200), v.TypeString(), v.ToDisplayString(kMaxArrayItemsShown)});
  }
  out += RenderTable(rows, {}, "  ");

  out += "\ntensors (" + Plural(file.tensors().size(), "tensor", "tensors") +
         "; offsets are relative to the tensor data):\n";
  rows = {{"name", "dtype", "shape", "offset", "bytes"}};
  Totals totals;
  for (const GgufTensorInfo& t : file.tensors()) {
    const uint64_t bytes = t.NumBytes();
    rows.push_back({Escape(t.name, 200), std::string(Name(t.dtype)), ShapeString(t.shape),
                    std::to_string(t.offset), std::to_string(bytes)});
    totals.Add(Name(t.dtype), bytes);
  }
  out += RenderTable(rows, {3, 4}, "  ");
  return out + "\n" + totals.Render();
}

std::string FormatSafetensorsSummary(std::span<const SafetensorsFile> files,
                                     const std::string& title) {
  std::string out = title + "\n";
  const bool sharded = files.size() > 1;
  for (const SafetensorsFile& f : files) {
    if (sharded) out += "\nshard: " + Escape(f.path(), 512) + "\n";
    out += "metadata (" + Plural(f.metadata().size(), "key", "keys") + "):\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, v] : f.metadata()) {
      rows.push_back({Escape(k, 200), DoubleQuote(v, 160)});
    }
    out += RenderTable(rows, {}, "  ");
  }

  size_t n_tensors = 0;
  for (const SafetensorsFile& f : files) n_tensors += f.tensors().size();
  out += "\ntensors (" + Plural(n_tensors, "tensor", "tensors") +
         "; offsets are relative to each file's data section):\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"name", "dtype", "shape", "offset", "bytes"});
  if (sharded) rows.back().push_back("file");
  Totals totals;
  for (const SafetensorsFile& f : files) {
    for (const TensorView& t : f.tensors()) {
      const uint64_t bytes = t.NumBytes();
      const uint64_t offset = f.DataOffset(t);
      rows.push_back({Escape(t.name, 200), std::string(SafetensorsName(t.dtype)),
                      ShapeString(t.shape), std::to_string(offset), std::to_string(bytes)});
      if (sharded) rows.back().push_back(Escape(fs::path(f.path()).filename().string(), 200));
      totals.Add(SafetensorsName(t.dtype), bytes);
    }
  }
  out += RenderTable(rows, {3, 4}, "  ");
  return out + "\n" + totals.Render();
}

std::string InspectModelFile(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const SafetensorsModel model = SafetensorsModel::OpenDirectory(path);
    return FormatSafetensorsSummary(model.files(),
                                    "directory: " + Escape(path, 512) + " (safetensors, " +
                                        Plural(model.files().size(), "file", "files") + ")");
  }
  const std::string head = LeadingBytes(path);
  if (head.rfind("GGUF", 0) == 0 || fs::path(path).extension() == ".gguf") {
    return FormatGgufSummary(GgufFile::Open(path));
  }
  if (LooksLikeSafetensors(path, head)) {
    const SafetensorsFile file = SafetensorsFile::Open(path);
    return FormatSafetensorsSummary(
        std::span(&file, 1), "file: " + Escape(path, 512) + " (safetensors, " +
                                 Bytes(fs::file_size(path, ec)) + ", JSON header " +
                                 std::to_string(file.header_bytes()) + " bytes)");
  }
  ThrowUnknownKind(path, head);
}

}  // namespace tokenlora
