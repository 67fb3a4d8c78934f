#include "eval/suite_cache.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "io/json_text.h"

namespace tokenlora::eval {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;
constexpr size_t kFingerprintBytes = 1 << 20;

uint64_t Fnv1a(const char* data, size_t n, uint64_t h = kFnvOffset) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= kFnvPrime;
  }
  return h;
}

std::string Hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string OneFileFingerprint(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (!in || ec) return "unreadable";
  std::string buf(std::min<uintmax_t>(size, kFingerprintBytes), '\0');
  in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  uint64_t h = Fnv1a(buf.data(), static_cast<size_t>(in.gcount()));
  if (size > kFingerprintBytes) {
    in.seekg(static_cast<std::streamoff>(size - std::min<uintmax_t>(size - kFingerprintBytes, kFingerprintBytes)));
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = Fnv1a(buf.data(), static_cast<size_t>(in.gcount()), h);
  }
  return std::to_string(size) + ":" + Hex(h);
}

}  // namespace

std::string FileFingerprint(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) return "missing";
  if (!fs::is_directory(path, ec)) return OneFileFingerprint(path);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::string out;
  for (const fs::path& f : files) out += f.filename().string() + "=" + OneFileFingerprint(f) + ";";
  return out;
}

std::string CacheKey(const nlohmann::json& run_identity, const EvalItem& item) {
  const std::string identity = run_identity.dump();
  uint64_t h = Fnv1a(identity.data(), identity.size());
  const std::string where = "\n" + std::to_string(item.line) + "\n";
  h = Fnv1a(where.data(), where.size(), h);
  return Hex(Fnv1a(item.prompt.data(), item.prompt.size(), h));
}

RunCache::RunCache(std::string path, bool read_only) : path_(std::move(path)) {
  std::error_code ec;
  if (!read_only) fs::create_directories(fs::path(path_).parent_path(), ec);
  if (ec) throw InputError("cannot create " + fs::path(path_).parent_path().string() + ": " + ec.message());
  {
    std::ifstream in(path_, std::ios::binary);
    for (std::string line; std::getline(in, line);) {
      nlohmann::json j = ParseBoundedJson(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("key") && j["key"].is_string() && j.contains("score") && j["score"].is_number()) {
        const std::string key = j["key"].get<std::string>();
        by_key_[key] = std::move(j);
      }
    }
  }
  if (read_only) return;
  // Rewritten clean (a kill may have left half a line at the end).
  std::vector<nlohmann::json> kept;
  for (auto& [key, j] : by_key_) kept.push_back(j);
  Rewrite(kept);
}

const nlohmann::json* RunCache::Find(const std::string& key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &it->second;
}

std::vector<nlohmann::json> RunCache::LinesFrom(size_t first) const {
  std::vector<std::pair<size_t, const nlohmann::json*>> found;
  for (const auto& [key, j] : by_key_) {
    const auto it = j.find("index");
    if (it == j.end() || !it->is_number_unsigned()) continue;
    const size_t index = it->get<size_t>();
    if (index >= first) found.emplace_back(index, &j);
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<nlohmann::json> out;
  for (const auto& [index, j] : found) out.push_back(*j);
  return out;
}

void RunCache::Append(const nlohmann::json& line) {
  out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out_.flush();
  if (!out_) throw InputError("cannot write " + path_ + " (disk full?)");
  by_key_[line.at("key").get<std::string>()] = line;
}

void RunCache::Rewrite(const std::vector<nlohmann::json>& lines) {
  if (out_.is_open()) out_.close();
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    for (const nlohmann::json& j : lines) out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out) throw InputError("cannot write " + tmp + " (check the directory of -o)");
  }
  std::error_code ec;
  fs::rename(tmp, path_, ec);
  if (ec) throw InputError("cannot rename " + tmp + " to " + path_ + ": " + ec.message());
  by_key_.clear();
  for (const nlohmann::json& j : lines) by_key_[j.at("key").get<std::string>()] = j;
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw InputError("cannot append to " + path_);
}

}  // namespace tokenlora::eval
