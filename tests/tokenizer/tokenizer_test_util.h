// Shared helpers for the tokenizer tests: the golden ids of
// tests/golden/tokenizer/encode.jsonl (made by scripts/make_golden_tokenizer.py)
// and the tokenizers they were made with.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tokenlora::testing {

struct GoldenCase {
  std::string label;  // line number and where the text came from
  std::string text;
  std::map<std::string, std::vector<int32_t>> ids;  // as stored (keys may be absent)
};

struct EncodeGolden {
  std::vector<GoldenCase> cases;
  size_t skipped = 0;  // cases whose text lives in data that is absent
};

// Loads encode.jsonl once; texts stored as references are re-read from the
// shared data folder.
const EncodeGolden& LoadEncodeGolden();
// Ids under `key`, following the file's fallback rule for absent keys
// (smollm2_raw -> smollm2, spm_raw -> spm, spm_meta -> spm, spm_meta_raw -> spm_meta,
// flags -> smollm2, flags_raw -> smollm2_raw, llama3_pre -> smollm2,
// qwen2_pre -> llama3_pre). Null for an unknown key the case lacks.
const std::vector<int32_t>* GoldenIds(const GoldenCase& c, const std::string& key);

// Paths of the test tokenizers.
std::string SmolLM2JsonPath();  // in the data folder; "" when absent
std::string SpmDir();           // tests/data/tokenizer/spm_llama2
std::string SpmMetaspaceJsonPath();
std::string SpmGgufPath();

// Loaded once per process (loading SmolLM2 takes a moment); null when the
// file is absent.
const Tokenizer* SmolLM2Json();
const Tokenizer* SmolLM2Gguf();
const Tokenizer& SpmJson();
const Tokenizer& SpmMetaspaceJson();
const Tokenizer& SpmGguf();

// `s` shortened and escaped for a failure message.
std::string Show(std::string_view s);
std::string ShowIds(const std::vector<int32_t>& ids);

}  // namespace tokenlora::testing
