#include "tokenizer_test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "test_util.h"

namespace tokenlora::testing {
namespace {

using nlohmann::json;

// Lines of a data file, read once; empty when the file is absent.
const std::vector<std::string>& SharedLines(const std::string& relative) {
  static std::map<std::string, std::vector<std::string>> cache;
  auto [it, inserted] = cache.try_emplace(relative);
  if (inserted) {
    std::ifstream in(DataPath(relative));
    for (std::string line; std::getline(in, line);) it->second.push_back(line);
  }
  return it->second;
}

// [file, line, "a.b"] -> the text, or nullopt when the data is absent.
std::optional<std::string> ResolveRef(const json& ref) {
  const std::vector<std::string>& lines = SharedLines(ref.at(0).get<std::string>());
  const size_t line = ref.at(1).get<size_t>();
  if (line >= lines.size()) return std::nullopt;
  json value = json::parse(lines[line]);
  const std::string path = ref.at(2).get<std::string>();
  for (size_t start = 0; start <= path.size();) {
    const size_t dot = std::min(path.find('.', start), path.size());
    value = json(value.at(path.substr(start, dot - start)));
    start = dot + 1;
  }
  return value.get<std::string>();
}

EncodeGolden ReadGolden() {
  EncodeGolden golden;
  std::ifstream in(SourcePath("tests/golden/tokenizer/encode.jsonl"));
  EXPECT_TRUE(in.good()) << "missing tests/golden/tokenizer/encode.jsonl";
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const json row = json::parse(line);
    GoldenCase c;
    c.label = "encode.jsonl:" + std::to_string(line_no);
    if (row.contains("text")) {
      c.text = row["text"].get<std::string>();
    } else if (row.contains("ref")) {
      const auto text = ResolveRef(row["ref"]);
      if (!text) {
        ++golden.skipped;
        continue;
      }
      c.text = *text;
      c.label += " (" + row["ref"].dump() + ")";
    } else {
      // Two shared texts glued into a chat-like string: fmt has {0} and {1}.
      const auto a = ResolveRef(row["refs"][0]);
      const auto b = ResolveRef(row["refs"][1]);
      if (!a || !b) {
        ++golden.skipped;
        continue;
      }
      std::string fmt = row["fmt"].get<std::string>();
      const size_t p0 = fmt.find("{0}");
      fmt.replace(p0, 3, *a);
      const size_t p1 = fmt.find("{1}", p0 + a->size());
      fmt.replace(p1, 3, *b);
      c.text = fmt;
      c.label += " (" + row["refs"].dump() + ")";
    }
    for (const auto& [key, value] : row.items()) {
      if (value.is_array() && key != "ref" && key != "refs") c.ids[key] = value.get<std::vector<int32_t>>();
    }
    golden.cases.push_back(std::move(c));
  }
  return golden;
}

std::unique_ptr<Tokenizer> LoadGguf(const std::string& path) {
  const GgufFile gguf = GgufFile::Open(path);
  return LoadTokenizerFromGguf(gguf);
}

}  // namespace

const EncodeGolden& LoadEncodeGolden() {
  static const EncodeGolden golden = ReadGolden();
  return golden;
}

const std::vector<int32_t>* GoldenIds(const GoldenCase& c, const std::string& key) {
  static const std::map<std::string, std::string> kFallback = {
      {"smollm2_raw", "smollm2"},   {"spm_raw", "spm"},         {"spm_meta", "spm"},
      {"spm_meta_raw", "spm_meta"}, {"flags", "smollm2"},       {"flags_raw", "smollm2_raw"},
      {"llama3_pre", "smollm2"},    {"qwen2_pre", "llama3_pre"}};
  const auto it = c.ids.find(key);
  if (it != c.ids.end()) return &it->second;
  const auto fallback = kFallback.find(key);
  return fallback == kFallback.end() ? nullptr : GoldenIds(c, fallback->second);
}

std::string SmolLM2JsonPath() {
  const std::string path = DataPath("tokenizers/SmolLM2-135M-Instruct/tokenizer.json");
  return std::filesystem::exists(path) ? path : "";
}
std::string SpmDir() { return SourcePath("tests/data/tokenizer/spm_llama2"); }
std::string SpmMetaspaceJsonPath() { return SourcePath("tests/data/tokenizer/spm_metaspace/tokenizer.json"); }
std::string SpmGgufPath() { return SourcePath("tests/data/tokenizer/spm_llama2.gguf"); }

const Tokenizer* SmolLM2Json() {
  static const std::unique_ptr<Tokenizer> tok =
      SmolLM2JsonPath().empty() ? nullptr : LoadTokenizerFromJson(SmolLM2JsonPath());
  return tok.get();
}

const Tokenizer* SmolLM2Gguf() {
  static const std::unique_ptr<Tokenizer> tok =
      DefaultModelPath().empty() ? nullptr : LoadGguf(DefaultModelPath());
  return tok.get();
}

const Tokenizer& SpmJson() {
  static const std::unique_ptr<Tokenizer> tok = LoadTokenizerFromJson(SpmDir() + "/tokenizer.json");
  return *tok;
}

const Tokenizer& SpmMetaspaceJson() {
  static const std::unique_ptr<Tokenizer> tok = LoadTokenizerFromJson(SpmMetaspaceJsonPath());
  return *tok;
}

const Tokenizer& SpmGguf() {
  static const std::unique_ptr<Tokenizer> tok = LoadGguf(SpmGgufPath());
  return *tok;
}

std::string Show(std::string_view s) { return io_internal::Quote(s, 160); }

std::string ShowIds(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 40) {
      out += ", ... (" + std::to_string(ids.size()) + " ids)";
      break;
    }
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

}  // namespace tokenlora::testing
