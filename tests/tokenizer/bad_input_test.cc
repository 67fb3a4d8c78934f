// Malformed tokenizer.json and GGUF tokenizer metadata: a clear InputError
// naming the file and the field, never a crash. Also the GGUF pre-tokenizer
// choices, on a tiny byte-level vocabulary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "io/gguf.h"
#include "test_util.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace tokenlora::testing {
namespace {

using nlohmann::json;
using tokenizer_internal::ByteLevelEncode;

// The InputError message of `f`, or a test failure.
template <typename F>
std::string ErrorOf(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InputError";
  return "";
}

void ExpectMentions(const std::string& message, std::initializer_list<std::string_view> parts) {
  for (const std::string_view part : parts) {
    EXPECT_NE(message.find(part), std::string::npos) << "message lacks '" << part << "': " << message;
  }
}

// A small valid SentencePiece-style tokenizer.json to break in various ways.
json ValidJson() {
  return json::parse(R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                       {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": null,
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
              "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "▁": 4, "▁ab": 5},
              "merges": ["a b", ["▁", "ab"]]}
  })");
}

std::string JsonError(const json& j, const std::string& config = "") {
  return ErrorOf([&] { ParseTokenizerJson(j.dump(), "bad.json", config); });
}

TEST(BadJson, ValidBaseLoads) {
  const auto tok = ParseTokenizerJson(ValidJson().dump(), "ok.json");
  EXPECT_EQ(tok->Encode("ab ab", true), (std::vector<int32_t>{5, 5}));
  EXPECT_EQ(tok->Encode("<unk>", true), std::vector<int32_t>{0});
}

TEST(BadJson, Structure) {
  ExpectMentions(ErrorOf([] { ParseTokenizerJson("{not json", "bad.json"); }),
                 {"bad.json", "not valid JSON"});
  ExpectMentions(ErrorOf([] { ParseTokenizerJson("[1, 2]", "bad.json"); }),
                 {"bad.json", "expected a JSON object"});
  ExpectMentions(JsonError(json::object()), {"bad.json", "model: missing"});
  json j = ValidJson();
  j["model"] = "BPE";
  ExpectMentions(JsonError(j), {"model", "expected an object"});
}

TEST(BadJson, UnsupportedModelTypes) {
  for (const char* type : {"Unigram", "WordPiece", "WordLevel"}) {
    json j = ValidJson();
    j["model"]["type"] = type;
    ExpectMentions(JsonError(j), {"bad.json", "model.type", type, "not supported", "BPE", "byte_fallback"});
  }
}

TEST(BadJson, Merges) {
  const auto with_merge = [](const json& merge) {
    json j = ValidJson();
    j["model"]["merges"] = json::array({merge});
    return JsonError(j);
  };
  ExpectMentions(with_merge("ab"), {"model.merges[0]", "two tokens separated by one space"});
  ExpectMentions(with_merge("a b c"), {"model.merges[0]", "two tokens separated by one space"});
  ExpectMentions(with_merge(json::array({1, 2})), {"model.merges[0]", "expected \"a b\" or [\"a\", \"b\"]"});
  ExpectMentions(with_merge(json::array({"a"})), {"model.merges[0]"});
  ExpectMentions(with_merge(7), {"model.merges[0]"});
  ExpectMentions(with_merge("a x"), {"model.merges[0]", "token 'x' is not in model.vocab"});
  ExpectMentions(with_merge("b a"), {"model.merges[0]", "merged token 'ba' is not in model.vocab"});
  json j = ValidJson();
  j["model"].erase("merges");
  ExpectMentions(JsonError(j), {"model.merges", "missing"});
  j["model"]["merges"] = "a b";
  ExpectMentions(JsonError(j), {"model.merges", "expected an array"});
}

TEST(BadJson, Tokens) {
  json j = ValidJson();
  j["model"]["vocab"]["c"] = "6";
  ExpectMentions(JsonError(j), {"model.vocab['c']", "expected a token id"});
  j = ValidJson();
  j["model"]["vocab"]["c"] = -1;
  ExpectMentions(JsonError(j), {"model.vocab['c']", "expected a token id"});
  j = ValidJson();
  j["model"]["vocab"]["c"] = 1;  // id of "a"
  ExpectMentions(JsonError(j), {"already belongs to"});
  j = ValidJson();
  j["model"]["vocab"] = json::array({"a", "b"});
  ExpectMentions(JsonError(j), {"model.vocab", "expected an object"});
  j = ValidJson();
  j["added_tokens"][0]["content"] = 5;
  ExpectMentions(JsonError(j), {"added_tokens[0].content", "expected a string"});
  j = ValidJson();
  j["added_tokens"][0]["special"] = "yes";
  ExpectMentions(JsonError(j), {"added_tokens[0].special", "expected true or false"});
  j = ValidJson();
  j["added_tokens"].push_back({{"id", 1}, {"content", "<s>"}});
  ExpectMentions(JsonError(j), {"added_tokens[1]", "already belongs to 'a'"});
  j = ValidJson();
  j["model"]["unk_token"] = "<missing>";
  ExpectMentions(JsonError(j), {"model.unk_token", "'<missing>' is not in model.vocab"});
  j = ValidJson();
  j["model"]["vocab"] = json::object();
  j["model"]["merges"] = json::array();
  j["added_tokens"] = json::array();
  j["model"].erase("unk_token");
  ExpectMentions(JsonError(j), {"model.vocab", "empty"});
}

TEST(BadJson, UnsupportedOptions) {
  json j = ValidJson();
  j["normalizer"] = {{"type", "NFC"}};
  ExpectMentions(JsonError(j), {"normalizer.type", "'NFC' is not supported", "Sequence, Prepend, Replace"});
  j = ValidJson();
  j["normalizer"]["normalizers"][1] = {{"type", "Lowercase"}};
  ExpectMentions(JsonError(j), {"normalizer.normalizers[1].type", "Lowercase"});
  j = ValidJson();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  ExpectMentions(JsonError(j), {"pre_tokenizer.type", "'Whitespace' is not supported", "ByteLevel"});
  j = ValidJson();
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}, {"invert", false}};
  ExpectMentions(JsonError(j), {"pre_tokenizer", "(unclosed", "does not compile"});
  j["pre_tokenizer"]["pattern"] = {{"Regex", "x"}};
  j["pre_tokenizer"]["behavior"] = "Sideways";
  ExpectMentions(JsonError(j), {"pre_tokenizer.behavior", "Sideways"});
  j["pre_tokenizer"]["behavior"] = "Isolated";
  j["pre_tokenizer"]["pattern"] = {{"Glob", "x"}};
  ExpectMentions(JsonError(j), {"pre_tokenizer.pattern"});
  j = ValidJson();
  j["model"]["dropout"] = 0.1;
  ExpectMentions(JsonError(j), {"model.dropout"});
  j = ValidJson();
  j["model"]["continuing_subword_prefix"] = "##";
  ExpectMentions(JsonError(j), {"model.continuing_subword_prefix"});
}

TEST(BadJson, Config) {
  ExpectMentions(JsonError(ValidJson(), R"({"bos_token": "<s>"})"),
                 {"tokenizer_config.json", "bad.json", "bos_token", "'<s>' is not a token"});
  ExpectMentions(JsonError(ValidJson(), R"({"eos_token": 3})"), {"eos_token", "expected a string"});
  ExpectMentions(JsonError(ValidJson(), R"({"chat_template": 3})"), {"chat_template"});
  ExpectMentions(JsonError(ValidJson(), "{oops"), {"tokenizer_config.json", "not valid JSON"});
}

// Truncated and mutated files: an InputError or a working tokenizer, never a
// crash or another exception type.
TEST(BadJson, MutationsNeverCrash) {
  const std::string text = ValidJson().dump();
  for (size_t n = 0; n < text.size(); ++n) {
    try {
      ParseTokenizerJson(text.substr(0, n), "cut.json");
    } catch (const InputError&) {
    }
  }
  std::mt19937 rng(11);
  const std::string alphabet = "{}[]\",:0123456789-abtruefalsn \\";
  for (int i = 0; i < 3000; ++i) {
    std::string mutated = text;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k) {
      mutated[rng() % mutated.size()] = alphabet[rng() % alphabet.size()];
    }
    try {
      const auto tok = ParseTokenizerJson(mutated, "mutated.json");
      tok->Encode("ab ba <unk> \xFF", true);
    } catch (const InputError&) {
    }
  }
}

// --- GGUF ----------------------------------------------------------------------

// A tiny byte-level vocabulary: the 256 byte characters (id = byte), then
// "12", "34", "23" and <|endoftext|>; merges 1+2, 3+4, 2+3 in that rank order.
struct GgufParts {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges = {"1 2", "3 4", "2 3"};
  GgufParts() {
    for (int b = 0; b < 256; ++b) tokens.push_back(ByteLevelEncode(std::string(1, static_cast<char>(b))));
    for (const char* t : {"12", "34", "23"}) tokens.push_back(t);
    tokens.push_back("<|endoftext|>");
    types.assign(tokens.size(), 1);
    types.back() = 3;
  }
};

std::string WriteGguf(const std::function<void(GgufWriter&)>& fill) {
  GgufWriter w;
  fill(w);
  const std::string path = TempDir() + "/tok.gguf";
  w.Write(path);
  return path;
}

std::string Gpt2Gguf(const std::string& pre, const std::function<void(GgufWriter&, GgufParts&)>& edit = {}) {
  return WriteGguf([&](GgufWriter& w) {
    GgufParts p;
    w.SetString("tokenizer.ggml.model", "gpt2");
    if (!pre.empty()) w.SetString("tokenizer.ggml.pre", pre);
    if (edit) edit(w, p);
    w.SetStringArray("tokenizer.ggml.tokens", p.tokens);
    w.SetI32Array("tokenizer.ggml.token_type", p.types);
    w.SetStringArray("tokenizer.ggml.merges", p.merges);
  });
}

std::unique_ptr<Tokenizer> LoadGgufFile(const std::string& path) {
  const GgufFile gguf = GgufFile::Open(path);
  return LoadTokenizerFromGguf(gguf);
}

std::string GgufError(const std::string& path) {
  const std::string message = ErrorOf([&] { LoadGgufFile(path); });
  EXPECT_NE(message.find(path), std::string::npos) << "message does not name the file: " << message;
  return message;
}

TEST(GgufPre, EachPreTokenizerSplitsDigitsItsOwnWay) {
  // "1234" stays one piece for GPT-2 (-> 12|34), is cut into 123|4 by Llama 3's
  // \p{N}{1,3} (-> 12|3|4), and into single digits by SmolLM2 and Qwen2.
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"gpt2", {256, 257}},           {"default", {256, 257}},          {"", {256, 257}},
      {"llama-bpe", {256, '3', '4'}}, {"smollm", {'1', '2', '3', '4'}}, {"qwen2", {'1', '2', '3', '4'}}};
  for (const auto& [pre, expected] : cases) {
    const auto tok = LoadGgufFile(Gpt2Gguf(pre));
    EXPECT_EQ(tok->Encode("1234", true), expected) << "pre '" << pre << "'";
    EXPECT_EQ(tok->Encode("<|endoftext|>", true), std::vector<int32_t>{259}) << pre;
    EXPECT_EQ(tok->eos_id(), -1);
    EXPECT_TRUE(tok->IsEndOfGeneration(259)) << pre;
  }
}

TEST(BadGguf, Keys) {
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) { w.SetString("general.name", "x"); })),
                 {"tokenizer.ggml.model", "missing"});
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) { w.SetString("tokenizer.ggml.model", "bert"); })),
                 {"tokenizer.ggml.model", "'bert'", "not supported", "gpt2", "llama"});
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) { w.SetString("tokenizer.ggml.model", "gpt2"); })),
                 {"tokenizer.ggml.tokens", "missing"});
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) {
                   w.SetString("tokenizer.ggml.model", "gpt2");
                   w.SetI32Array("tokenizer.ggml.tokens", {1, 2});
                 })),
                 {"tokenizer.ggml.tokens", "expected an array of strings"});
  ExpectMentions(GgufError(Gpt2Gguf("gpt2", [](GgufWriter&, GgufParts& p) { p.types.pop_back(); })),
                 {"tokenizer.ggml.token_type", "has 259 entries but tokenizer.ggml.tokens has 260"});
  ExpectMentions(GgufError(Gpt2Gguf("gpt2", [](GgufWriter&, GgufParts& p) { p.types[5] = 9; })),
                 {"tokenizer.ggml.token_type", "entry 5 is 9"});
  ExpectMentions(GgufError(Gpt2Gguf("gpt3-turbo")),
                 {"tokenizer.ggml.pre", "'gpt3-turbo'", "smollm, llama-bpe, qwen2, gpt2, default"});
  ExpectMentions(GgufError(Gpt2Gguf("gpt2", [](GgufWriter&, GgufParts& p) { p.merges.push_back("1 zz"); })),
                 {"tokenizer.ggml.merges[3]", "'zz' (from '1 zz')", "is not in tokenizer.ggml.tokens"});
  ExpectMentions(GgufError(Gpt2Gguf("gpt2", [](GgufWriter&, GgufParts& p) { p.merges.push_back("12"); })),
                 {"tokenizer.ggml.merges[3]", "expected \"a b\""});
  ExpectMentions(
      GgufError(
          Gpt2Gguf("gpt2", [](GgufWriter& w, GgufParts&) { w.SetI32("tokenizer.ggml.bos_token_id", 260); })),
      {"tokenizer.ggml.bos_token_id", "260", "outside the vocabulary of 260"});
  ExpectMentions(GgufError(Gpt2Gguf(
                     "gpt2", [](GgufWriter& w, GgufParts&) { w.SetU32("tokenizer.ggml.add_bos_token", 1); })),
                 {"tokenizer.ggml.add_bos_token"});
  // Merges are required for byte-level BPE, scores for SentencePiece.
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) {
                   GgufParts p;
                   w.SetString("tokenizer.ggml.model", "gpt2");
                   w.SetStringArray("tokenizer.ggml.tokens", p.tokens);
                 })),
                 {"tokenizer.ggml.merges", "missing"});
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) {
                   w.SetString("tokenizer.ggml.model", "llama");
                   w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "a"});
                 })),
                 {"tokenizer.ggml.scores", "missing"});
  ExpectMentions(GgufError(WriteGguf([](GgufWriter& w) {
                   w.SetString("tokenizer.ggml.model", "llama");
                   w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "a"});
                   w.SetF32Array("tokenizer.ggml.scores", {0.0f});
                 })),
                 {"tokenizer.ggml.scores", "has 1 entries but tokenizer.ggml.tokens has 2"});
}

}  // namespace
}  // namespace tokenlora::testing
