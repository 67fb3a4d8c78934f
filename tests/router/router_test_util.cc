#include "router_test_util.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/mapped_file.h"
#include "router/router_file.h"
#include "tensor/dtype.h"
#include "test_util.h"

namespace tokenlora::testing {
namespace fs = std::filesystem;

std::string EditedJson(const std::string& text, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(text);
  edit(j);
  return j.dump();
}

void ExpectRouterFileRefused(const std::string& text, const std::string& needle) {
  ExpectInputError([&] { RouterFile::Parse(text, "r.json"); }, needle);
}

std::string MiniLmDir() {
  const std::string dir = SourcePath("models/all-MiniLM-L6-v2");
  return fs::exists(dir + "/model.safetensors") ? dir : "";
}

std::string MiniLmTokenizerDir() {
  const std::string model = SourcePath("models/all-MiniLM-L6-v2");
  if (fs::exists(model + "/tokenizer.json") && fs::exists(model + "/vocab.txt")) return model;
  const std::string shared = DataPath("tokenizers/all-MiniLM-L6-v2");
  if (fs::exists(shared + "/tokenizer.json") && fs::exists(shared + "/vocab.txt")) return shared;
  return "";
}

namespace {

std::optional<std::string> ResolveRef(const nlohmann::json& ref) {
  static std::mutex mu;
  static std::map<std::string, std::vector<std::string>> files;
  const std::string rel = ref[0].get<std::string>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = files.find(rel);
  if (it == files.end()) {
    std::vector<std::string> lines;
    std::ifstream in(DataPath(rel));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    it = files.emplace(rel, std::move(lines)).first;
  }
  const size_t line = ref[1].get<size_t>();
  if (line >= it->second.size()) return std::nullopt;
  nlohmann::json value = nlohmann::json::parse(it->second[line]);
  std::stringstream path(ref[2].get<std::string>());
  for (std::string part; std::getline(path, part, '.');) {
    value = value.is_array() ? nlohmann::json(value[std::stoul(part)]) : nlohmann::json(value[part]);
  }
  return value.get<std::string>();
}

}  // namespace

std::optional<std::string> GoldenText(const nlohmann::json& row) {
  if (row.contains("text")) return row["text"].get<std::string>();
  if (row.contains("ref")) return ResolveRef(row["ref"]);
  std::string joined;
  for (size_t i = 0; i < row["refs"].size(); ++i) {
    const auto part = ResolveRef(row["refs"][i]);
    if (!part) return std::nullopt;
    if (i > 0) joined += row["sep"].get<std::string>();
    joined += *part;
  }
  return joined;
}

std::vector<float> ReadF16File(const std::string& path) {
  const std::string bytes = ReadTextFile(path);
  std::vector<float> out(bytes.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    out[i] = F16ToF32(h);
  }
  return out;
}

std::vector<float> ReadF32File(const std::string& path) {
  const std::string bytes = ReadTextFile(path);
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

double Cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace tokenlora::testing
