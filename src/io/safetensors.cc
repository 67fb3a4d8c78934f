// Safetensors reader. Layout: u64 little-endian header length N | N bytes of
// JSON | data. The JSON maps each tensor name to {"dtype", "shape",
// "data_offsets": [begin, end]} (offsets relative to the data section) and
// may hold "__metadata__": {string: string}. Everything in the header is
// untrusted: sizes are computed with overflow checks and each tensor's bytes
// must lie inside the data section and match shape x dtype.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/io_util.h"
#include "io/json_text.h"

namespace tokenlora {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the safetensors reader decodes the little-endian header length with memcpy");

using io_internal::Escape;
using io_internal::kTruncatedHint;
using io_internal::Quote;
using Json = nlohmann::ordered_json;  // keeps header order for error messages
namespace fs = std::filesystem;

// The limit the reference implementation (safetensors' MAX_HEADER_SIZE) sets.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Dtypes the format defines but tokenlora does not load.
constexpr std::string_view kOtherSafetensorsDtypes[] = {
    "BOOL", "U8",      "I8",      "I16",     "U16", "U32",     "I64",     "U64",
    "F64",  "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};

// A short rendering of a JSON value for error messages.
std::string Snippet(const Json& j) { return Escape(j.dump(), 60); }

bool IsUnsigned(const Json& j) { return j.is_number_unsigned(); }

class HeaderParser {
 public:
  HeaderParser(const std::string& name, uint64_t data_bytes) : name_(name), data_bytes_(data_bytes) {}

  [[noreturn]] void Fail(const std::string& detail, std::string_view hint) const {
    throw InputError(Quote(name_, 512) + ": " + detail + " — " + std::string(hint));
  }

  // Parses one tensor entry; `data` points at the start of the data section.
  TensorView ParseTensor(const std::string& tensor, const Json& entry, const uint8_t* data,
                         uint64_t* begin_out) const {
    const std::string what = "tensor " + Quote(tensor);
    constexpr std::string_view kCorrupt = "corrupt header, or written by a buggy tool";
    if (!entry.is_object()) {
      Fail(what + ": entry must be a JSON object with dtype, shape and data_offsets, got " +
               Snippet(entry),
           kCorrupt);
    }
    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      Fail(what + ": 'dtype' is missing or not a string", kCorrupt);
    }
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    const std::optional<DType> dtype = DTypeFromSafetensors(dtype_name);
    if (!dtype) {
      const bool known = std::find(std::begin(kOtherSafetensorsDtypes),
                                   std::end(kOtherSafetensorsDtypes),
                                   dtype_name) != std::end(kOtherSafetensorsDtypes);
      Fail(what + (known ? " has dtype " : " has unknown dtype ") + Quote(dtype_name) +
               ", which tokenlora does not load (supported: F32, F16, BF16, I32)",
           known ? "convert the checkpoint, e.g. in PyTorch: tensor.to(torch.float16)"
                 : "corrupt header, or a dtype newer than this tokenlora");
    }

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      Fail(what + ": 'shape' is missing or not an array", kCorrupt);
    }
    std::vector<int64_t> shape;
    shape.reserve(shape_it->size());
    for (const Json& d : *shape_it) {
      if (!IsUnsigned(d) ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        Fail(what + ": shape " + Snippet(*shape_it) + " must hold non-negative integers",
             kCorrupt);
      }
      shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }

    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !IsUnsigned((*offsets_it)[0]) || !IsUnsigned((*offsets_it)[1])) {
      Fail(what + ": 'data_offsets' must be [begin, end] with non-negative integers, got " +
               (offsets_it == entry.end() ? std::string("nothing") : Snippet(*offsets_it)),
           kCorrupt);
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end) {
      Fail(what + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               "] end before they begin",
           kCorrupt);
    }
    if (end > data_bytes_) {
      Fail(what + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               "] end past the data section (" + std::to_string(data_bytes_) + " bytes)",
           kTruncatedHint);
    }
    const std::optional<uint64_t> n = io_internal::CheckedProduct(shape);
    if (!n) Fail(what + ": shape " + ShapeString(shape) + " is too large for 64-bit sizes", kCorrupt);
    const std::optional<uint64_t> bytes = io_internal::CheckedMul(*n, Info(*dtype).block_bytes);
    if (!bytes || *bytes != end - begin) {
      Fail(what + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               "] hold " + std::to_string(end - begin) + " bytes, but " + dtype_name + " " +
               ShapeString(shape) + " needs " +
               (bytes ? std::to_string(*bytes) : std::string("more than 2^64")),
           kCorrupt);
    }
    *begin_out = begin;
    TensorView view;
    view.name = tensor;
    view.dtype = *dtype;
    view.shape = std::move(shape);
    view.data = data + begin;
    return view;
  }

 private:
  const std::string& name_;
  uint64_t data_bytes_;
};

}  // namespace

SafetensorsFile SafetensorsFile::Open(const std::string& path) {
  auto file = std::make_shared<MappedFile>(MappedFile::Open(path));
  SafetensorsFile st = Parse(file->data(), file->size(), path);
  st.file_ = std::move(file);
  return st;
}

SafetensorsFile SafetensorsFile::Parse(const uint8_t* data, size_t size, const std::string& name) {
  const std::string prefix = Quote(name, 512) + ": ";
  if (size < 8) {
    throw InputError(prefix + "file is " + std::to_string(size) +
                     " bytes, too short for the 8-byte header length of a safetensors file — " +
                     std::string(kTruncatedHint));
  }
  uint64_t header_bytes;
  std::memcpy(&header_bytes, data, 8);
  if (header_bytes > kMaxHeaderBytes) {
    throw InputError(prefix + "header length " + std::to_string(header_bytes) +
                     " exceeds the safetensors limit of " + std::to_string(kMaxHeaderBytes) +
                     " bytes — not a safetensors file, or corrupt");
  }
  if (header_bytes > size - 8) {
    throw InputError(prefix + "header length " + std::to_string(header_bytes) +
                     " runs past the end of the file (" + std::to_string(size) + " bytes) — " +
                     std::string(kTruncatedHint));
  }
  const char* text = reinterpret_cast<const char*>(data + 8);

  // nlohmann keeps the last of two equal keys silently; a callback sees every
  // top-level key (depth 1) so duplicates can be refused.
  std::set<std::string> seen;
  std::string duplicate;
  const Json::parser_callback_t on_event = [&](int depth, Json::parse_event_t event,
                                               Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  Json header;
  try {
    header = ParseBoundedJson<Json>(std::string_view(text, header_bytes), on_event);
  } catch (const Json::exception& e) {
    throw InputError(prefix + "header is not valid JSON (" + e.what() +
                     ") — truncated, corrupt, or not a safetensors file");
  }
  if (!header.is_object()) {
    throw InputError(prefix + "header must be a JSON object, got " + Snippet(header) +
                     " — corrupt, or not a safetensors file");
  }
  if (!duplicate.empty()) {
    throw InputError(prefix + Quote(duplicate) + " appears twice in the header (tensor names "
                     "must be unique) — corrupt file or a buggy writer");
  }

  SafetensorsFile st;
  st.path_ = name;
  st.header_bytes_ = header_bytes;
  const uint8_t* data_section = data + 8 + header_bytes;
  st.data_section_ = data_section;
  const HeaderParser parser(name, size - 8 - header_bytes);
  std::vector<std::pair<uint64_t, TensorView>> tensors;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) {
        throw InputError(prefix + "__metadata__ must be an object of strings, got " +
                         Snippet(entry) + " — corrupt header");
      }
      for (const auto& [mkey, mvalue] : entry.items()) {
        if (!mvalue.is_string()) {
          throw InputError(prefix + "__metadata__ value for " + Quote(mkey) +
                           " must be a string, got " + Snippet(mvalue) + " — corrupt header");
        }
        st.metadata_[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    uint64_t begin = 0;
    TensorView view = parser.ParseTensor(key, entry, data_section, &begin);
    tensors.emplace_back(begin, std::move(view));
  }
  // File order: by position of the data (ties keep header order).
  std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.NumBytes() < b.second.NumBytes();
  });
  // As the reference library (safetensors' Metadata::validate and
  // MetadataIncompleteBuffer): in offset order every tensor starts where the
  // one before ends and the last ends where the file does — no overlap (one
  // tensor reading another's bytes), no holes, nothing after the end.
  uint64_t expected = 0;
  std::string previous;
  for (const auto& [begin, view] : tensors) {
    if (begin != expected) {
      const std::string where = previous.empty() ? "the start of the data section (offset 0)"
                                                 : "tensor " + Quote(previous) + ", which ends at " +
                                                       std::to_string(expected);
      throw InputError(prefix + "tensor " + Quote(view.name) + " starts at data offset " + std::to_string(begin) +
                       (begin < expected ? ", overlapping " : ", leaving a hole of " +
                                                                  std::to_string(begin - expected) +
                                                                  " bytes after ") +
                       where + "; the format requires tensors packed back to back (the safetensors library "
                       "refuses this file) — corrupt header, or written by a buggy tool");
    }
    expected = begin + view.NumBytes();
    previous = view.name;
  }
  if (expected != size - 8 - header_bytes) {
    throw InputError(prefix + "the tensors end at data offset " + std::to_string(expected) + " but the data "
                     "section holds " + std::to_string(size - 8 - header_bytes) +
                     " bytes; the format allows nothing after the last tensor (the safetensors library refuses "
                     "this file) — corrupt, or bytes appended by another tool");
  }
  st.tensors_.reserve(tensors.size());
  for (auto& [begin, view] : tensors) {
    st.index_.emplace(view.name, st.tensors_.size());
    st.tensors_.push_back(std::move(view));
  }
  return st;
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---- SafetensorsModel ----

namespace {

// The shard files of model.safetensors.index.json, sorted by name, each with
// one tensor it should hold (for error messages).
std::vector<std::pair<std::string, std::string>> ReadIndex(
    const std::string& index_path, std::map<std::string, std::string>* weight_map) {
  const std::string prefix = Quote(index_path, 512) + ": ";
  Json index;
  try {
    index = ParseBoundedJson<Json>(ReadTextFile(index_path));
  } catch (const Json::exception& e) {
    throw InputError(prefix + "not valid JSON (" + e.what() + ") — re-download the model");
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw InputError(prefix + "has no \"weight_map\" object mapping tensor names to shard files "
                     "— not a safetensors index, or corrupt");
  }
  std::vector<std::pair<std::string, std::string>> shards;
  std::set<std::string> seen;
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) {
      throw InputError(prefix + "weight_map entry for " + Quote(tensor) + " must be a file name, got " +
                       Snippet(shard) + " — corrupt index");
    }
    const std::string& file = shard.get_ref<const std::string&>();
    const fs::path p(file);
    // Shards live beside the index; a path leaving the directory is not a shard.
    if (file.empty() || p.is_absolute() ||
        std::any_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; })) {
      throw InputError(prefix + "weight_map entry for " + Quote(tensor) + " names " + Quote(file) +
                       ", which is not a file inside the model directory — corrupt index");
    }
    (*weight_map)[tensor] = file;
    if (seen.insert(file).second) shards.emplace_back(file, tensor);
  }
  std::sort(shards.begin(), shards.end());  // model-00001-of-00002 before model-00002-...
  return shards;
}

}  // namespace

SafetensorsModel SafetensorsModel::OpenDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InputError(Quote(dir, 512) + " is not a directory — pass a Hugging Face model directory "
                     "holding model.safetensors or model.safetensors.index.json");
  }
  const fs::path root(dir);
  SafetensorsModel model;
  std::map<std::string, std::string> weight_map;  // tensor -> shard, when sharded
  const std::string index_path = (root / "model.safetensors.index.json").string();
  if (fs::exists(index_path, ec)) {
    for (const auto& [shard, example] : ReadIndex(index_path, &weight_map)) {
      const std::string shard_path = (root / shard).string();
      if (!fs::exists(shard_path, ec)) {
        throw InputError(Quote(index_path, 512) + ": shard " + Quote(shard) + " (holding " +
                         Quote(example) + ") is missing from " + Quote(dir, 512) +
                         " — incomplete download? fetch every shard the index lists");
      }
      model.files_.push_back(SafetensorsFile::Open(shard_path));
    }
  } else if (fs::exists(root / "model.safetensors", ec)) {
    model.files_.push_back(SafetensorsFile::Open((root / "model.safetensors").string()));
  } else {
    // Name what is there: other .safetensors files (an adapter?), or a GGUF
    // model that should be passed as a file.
    std::string found, gguf;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      std::string& list = entry.path().extension() == ".gguf" ? gguf : found;
      if (entry.path().extension() == ".safetensors" || entry.path().extension() == ".gguf") {
        if (!list.empty()) list += ", ";
        list += Quote(entry.path().filename().string());
      }
    }
    std::string msg = Quote(dir, 512) +
                      ": no model.safetensors or model.safetensors.index.json in this directory";
    msg += found.empty() ? " (and no .safetensors file at all)" : " (found " + found + ")";
    msg += gguf.empty() ? " — is this a Hugging Face model directory?"
                        : " — for a GGUF model pass the file itself: " + gguf;
    throw InputError(msg);
  }

  // files_ is complete, so pointers into each file's tensors stay valid.
  std::map<std::string, const SafetensorsFile*> owner;
  for (const SafetensorsFile& file : model.files_) {
    for (const TensorView& t : file.tensors()) {
      const auto [it, inserted] = model.by_name_.emplace(t.name, &t);
      if (!inserted) {
        throw InputError("tensor " + Quote(t.name) + " is in both " + Quote(owner[t.name]->path(), 512) +
                         " and " + Quote(file.path(), 512) +
                         " — shards from two different checkpoints mixed in one directory?");
      }
      owner[t.name] = &file;
    }
  }
  for (const auto& [tensor, shard] : weight_map) {
    const std::string shard_path = (root / shard).string();
    const auto it = owner.find(tensor);
    if (it == owner.end() || it->second->path() != shard_path) {
      throw InputError(Quote(index_path, 512) + ": maps tensor " + Quote(tensor) + " to " +
                       Quote(shard) + ", but that shard does not hold it — index and shards "
                       "come from different downloads? re-download the model");
    }
  }
  return model;
}

const TensorView* SafetensorsModel::Find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const TensorView*> SafetensorsModel::All() const {
  std::vector<const TensorView*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) out.push_back(view);
  return out;
}

}  // namespace tokenlora
