// Every string of tests/golden/tokenizer/encode.jsonl must encode to exactly
// the ids Hugging Face tokenizers gave, through every loader.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "io/gguf.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

namespace tokenlora::testing {
namespace {

// The split patterns of Llama 3's and Qwen2's tokenizer.json (the GGUF loader
// has its own copies; the test checks both against Hugging Face).
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Compares all cases for one tokenizer and golden key; reports the first few
// differences in full.
void ExpectGolden(const Tokenizer& tok, const std::string& key, bool parse_special) {
  const EncodeGolden& golden = LoadEncodeGolden();
  ASSERT_GE(golden.cases.size(), 500u);
  size_t failures = 0;
  size_t compared = 0;
  for (const GoldenCase& c : golden.cases) {
    const std::vector<int32_t>* expected_ids = GoldenIds(c, key);
    if (expected_ids == nullptr) continue;
    const std::vector<int32_t>& expected = *expected_ids;
    ++compared;
    const std::vector<int32_t> got = tok.Encode(c.text, parse_special);
    if (got == expected) continue;
    if (++failures <= 8) {
      ADD_FAILURE() << c.label << " [" << key << "] text " << Show(c.text) << "\n  expected "
                    << ShowIds(expected) << "\n  got      " << ShowIds(got);
    }
  }
  EXPECT_GE(compared, 500u) << key;
  EXPECT_EQ(failures, 0u) << failures << " of " << compared << " strings differ for " << key;
  if (golden.skipped > 0) MissingData(std::to_string(golden.skipped) + " golden strings' source texts");
}

TEST(GoldenEncode, HasEnoughStrings) {
  const EncodeGolden& golden = LoadEncodeGolden();
  EXPECT_GE(golden.cases.size() + golden.skipped, 2000u);
}

TEST(GoldenEncode, SmolLM2TokenizerJson) {
  const Tokenizer* tok = SmolLM2Json();
  if (tok == nullptr) return MissingData(DataPath("tokenizers/SmolLM2-135M-Instruct/tokenizer.json"));
  ExpectGolden(*tok, "smollm2", /*parse_special=*/true);
  ExpectGolden(*tok, "smollm2_raw", /*parse_special=*/false);
}

TEST(GoldenEncode, SmolLM2Gguf) {
  const Tokenizer* tok = SmolLM2Gguf();
  if (tok == nullptr) GTEST_SKIP() << "default model not fetched (models/SmolLM2-135M-Instruct.Q4_1.gguf)";
  ExpectGolden(*tok, "smollm2", true);
  ExpectGolden(*tok, "smollm2_raw", false);
}

// SmolLM2 with the added-token options it does not use itself (lstrip, rstrip,
// single_word, non-special and normalized tokens, content already in the
// vocabulary), patched in as the golden script did.
TEST(GoldenEncode, AddedTokenOptions) {
  if (SmolLM2JsonPath().empty()) return MissingData(DataPath("tokenizers/SmolLM2-135M-Instruct/tokenizer.json"));
  using nlohmann::json;
  json tokenizer = json::parse(ReadTextFile(SmolLM2JsonPath()));
  std::ifstream patch_file(SourcePath("tests/golden/tokenizer/added_tokens_patch.json"));
  ASSERT_TRUE(patch_file.good());
  const json patch = json::parse(patch_file);
  for (const json& change : patch["set"]) {
    for (json& token : tokenizer["added_tokens"]) {
      if (token["id"] != change["id"]) continue;
      for (const auto& [key, value] : change.items()) token[key] = value;
    }
  }
  for (const json& token : patch["append"]) tokenizer["added_tokens"].push_back(token);
  const auto tok = ParseTokenizerJson(tokenizer.dump(), "patched SmolLM2 tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 49156);  // "tokenizer" kept its vocabulary id, so no id 49156
  EXPECT_EQ(tok->TokenId("zqx"), 49155);
  EXPECT_LT(*tok->TokenId("tokenizer"), 49152);
  EXPECT_FALSE(tok->IsSpecial(49152));
  ExpectGolden(*tok, "flags", true);
  ExpectGolden(*tok, "flags_raw", false);
}

// The SmolLM2 tokenizer.json with another model's pre-tokenizer, as the
// golden script built it: checks PCRE2 against Oniguruma on the Llama 3 and
// Qwen2 split patterns.
std::unique_ptr<Tokenizer> SmolLM2WithPre(const std::string& pattern, bool ignore_merges) {
  using nlohmann::json;
  json tokenizer = json::parse(ReadTextFile(SmolLM2JsonPath()));
  tokenizer["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  tokenizer["model"]["ignore_merges"] = ignore_merges;
  return ParseTokenizerJson(tokenizer.dump(), "SmolLM2 tokenizer.json with another pre-tokenizer");
}

// A GGUF holding the SmolLM2 vocabulary (from its tokenizer.json) with
// tokenizer.ggml.pre = `pre`: checks llama.cpp's pre-tokenizer names.
std::unique_ptr<Tokenizer> SmolLM2GgufWithPre(const std::string& pre) {
  using nlohmann::json;
  const json tokenizer = json::parse(ReadTextFile(SmolLM2JsonPath()));
  std::vector<std::string> tokens(tokenizer["model"]["vocab"].size());
  for (const auto& [text, id] : tokenizer["model"]["vocab"].items()) tokens.at(id.get<size_t>()) = text;
  std::vector<int32_t> types(tokens.size(), 1);
  for (const json& added : tokenizer["added_tokens"]) types.at(added["id"].get<size_t>()) = 3;
  std::vector<std::string> merges;
  for (const json& m : tokenizer["model"]["merges"]) {
    merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", pre);
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", merges);
  const std::string path = TempDir() + "/" + pre + ".gguf";
  w.Write(path);
  const GgufFile gguf = GgufFile::Open(path);
  return LoadTokenizerFromGguf(gguf);
}

TEST(GoldenEncode, Llama3AndQwen2PreTokenizers) {
  if (SmolLM2JsonPath().empty()) return MissingData(DataPath("tokenizers/SmolLM2-135M-Instruct/tokenizer.json"));
  ExpectGolden(*SmolLM2WithPre(std::string(kLlama3Pattern), true), "llama3_pre", true);
  ExpectGolden(*SmolLM2WithPre(std::string(kQwen2Pattern), false), "qwen2_pre", true);
  ExpectGolden(*SmolLM2GgufWithPre("llama-bpe"), "llama3_pre", true);
  ExpectGolden(*SmolLM2GgufWithPre("qwen2"), "qwen2_pre", true);
}

TEST(GoldenEncode, SentencePieceTokenizerJson) {
  ExpectGolden(SpmJson(), "spm", true);
  ExpectGolden(SpmJson(), "spm_raw", false);
}

TEST(GoldenEncode, SentencePieceMetaspaceTokenizerJson) {
  ExpectGolden(SpmMetaspaceJson(), "spm_meta", true);
  ExpectGolden(SpmMetaspaceJson(), "spm_meta_raw", false);
}

TEST(GoldenEncode, SentencePieceGguf) {
  // Score-based merging from the GGUF scores must agree with HF's rank-based
  // merges (and SentencePiece itself, which the script checked).
  ExpectGolden(SpmGguf(), "spm", true);
  ExpectGolden(SpmGguf(), "spm_raw", false);
}

// Very long runs (tests/golden/tokenizer/long.json): regex backtracking over
// 200k spaces, merge queues over whole texts. Id count and checksum
// sum((i + 1) * id) mod 2^64 as the script computed them.
TEST(GoldenEncode, LongRuns) {
  using nlohmann::json;
  std::ifstream in(SourcePath("tests/golden/tokenizer/long.json"));
  ASSERT_TRUE(in.good());
  const json cases = json::parse(in);
  std::vector<std::pair<std::string, const Tokenizer*>> toks = {{"spm", &SpmJson()}, {"spm", &SpmGguf()}};
  if (SmolLM2Json() != nullptr) toks.emplace_back("smollm2", SmolLM2Json());
  if (SmolLM2Gguf() != nullptr) toks.emplace_back("smollm2", SmolLM2Gguf());
  for (const json& c : cases) {
    std::string text;
    for (int i = 0; i < c["count"].get<int>(); ++i) text += c["unit"].get<std::string>();
    text += c["suffix"].get<std::string>();
    for (const auto& [key, tok] : toks) {
      const std::vector<int32_t> ids = tok->Encode(text, true);
      uint64_t checksum = 0;
      for (size_t i = 0; i < ids.size(); ++i) checksum += (i + 1) * static_cast<uint64_t>(ids[i]);
      EXPECT_EQ(ids.size(), c[key]["n"].get<size_t>()) << key << " " << Show(c["unit"].get<std::string>());
      EXPECT_EQ(checksum, c[key]["checksum"].get<uint64_t>())
          << key << " " << Show(c["unit"].get<std::string>());
    }
  }
}

// Pre-tokenizer and normalizer settings no shipped tokenizer uses (split
// behaviours, inverted and literal splits, Metaspace split, ...), applied to a
// base tokenizer.json as tests/golden/tokenizer/variants.json describes.
TEST(GoldenEncode, PreTokenizerVariants) {
  using nlohmann::json;
  std::ifstream in(SourcePath("tests/golden/tokenizer/variants.json"));
  ASSERT_TRUE(in.good());
  const json golden = json::parse(in);
  size_t checked = 0;
  bool missing = false;
  std::map<bool, json> bases;  // parsed once: SmolLM2 (true) and the Metaspace SentencePiece model
  for (const json& variant : golden["variants"]) {
    const std::string name = variant["name"].get<std::string>();
    const bool smollm2 = variant["base"] == "smollm2";
    if (smollm2 && SmolLM2JsonPath().empty()) {
      missing = true;
      continue;
    }
    if (!bases.count(smollm2)) {
      bases[smollm2] = json::parse(ReadTextFile(smollm2 ? SmolLM2JsonPath() : SpmMetaspaceJsonPath()));
    }
    json tokenizer = bases[smollm2];
    for (const char* key : {"pre_tokenizer", "normalizer"}) {
      if (variant.contains(key)) tokenizer[key] = variant[key];
    }
    const auto tok = ParseTokenizerJson(tokenizer.dump(), name);
    size_t failures = 0;
    for (const json& c : golden["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const auto expected = c["ids"][name].get<std::vector<int32_t>>();
      const std::vector<int32_t> got = tok->Encode(text, true);
      ++checked;
      if (got != expected && ++failures <= 5) {
        ADD_FAILURE() << name << ": " << Show(text) << "\n  expected " << ShowIds(expected) << "\n  got      "
                      << ShowIds(got);
      }
    }
    EXPECT_EQ(failures, 0u) << name;
  }
  EXPECT_GT(checked, 0u);
  if (missing) MissingData(DataPath("tokenizers/SmolLM2-135M-Instruct/tokenizer.json"));
}

}  // namespace
}  // namespace tokenlora::testing
