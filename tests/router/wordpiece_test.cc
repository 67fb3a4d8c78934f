// WordPiece ids against Hugging Face tokenizers on the strings of
// tests/golden/router/wordpiece.jsonl, plus the loader's errors and the
// incremental-tokenization split point.
#include "tokenizer/wordpiece.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/io_util.h"
#include "router_test_util.h"
#include "test_util.h"
#include "tokenizer/wordpiece_unicode.h"

namespace tokenlora {
namespace {

using testing::GoldenText;
using testing::MiniLmTokenizerDir;
using testing::SourcePath;

struct Case {
  std::string label;
  std::string text;
  std::vector<int32_t> ids;
};

const std::vector<Case>& GoldenCases(size_t* skipped = nullptr) {
  static size_t n_skipped = 0;
  static const std::vector<Case> cases = [] {
    std::vector<Case> out;
    std::ifstream in(SourcePath("tests/golden/router/wordpiece.jsonl"));
    EXPECT_TRUE(in.good()) << "missing tests/golden/router/wordpiece.jsonl";
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      const auto row = nlohmann::json::parse(line);
      const auto text = GoldenText(row);
      if (!text) {
        ++n_skipped;
        continue;
      }
      out.push_back(
          {"wordpiece.jsonl:" + std::to_string(line_no), *text, row["ids"].get<std::vector<int32_t>>()});
    }
    return out;
  }();
  if (skipped != nullptr) *skipped = n_skipped;
  return cases;
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) {
    if (i > 0) s.push_back(' ');
    s.append(std::to_string(ids[i]));
  }
  if (ids.size() > 40) s.append(" ...");
  return s;
}

class WordPieceGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MiniLmTokenizerDir();
    if (dir_.empty()) GTEST_SKIP() << "MiniLM tokenizer files absent (scripts/fetch-models, or scripts/fetch-data)";
  }
  std::string dir_;
};

TEST_F(WordPieceGolden, TokenizerJsonMatchesHuggingFace) {
  const auto tok = WordPieceTokenizer::LoadJson(dir_ + "/tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 30522);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.unk_id(), 100);
  size_t skipped = 0;
  const auto& cases = GoldenCases(&skipped);
  ASSERT_GE(cases.size() + skipped, 2000u);
  if (skipped > 0) testing::MissingData(std::to_string(skipped) + " golden strings' source texts");
  int failures = 0;
  for (const Case& c : cases) {
    const auto ids = tok.Encode(c.text);
    if (ids != c.ids && ++failures <= 10) {
      ADD_FAILURE() << c.label << ": " << io_internal::Quote(c.text, 200) << "\n  normalised "
                    << io_internal::Quote(tok.Normalize(c.text), 200) << "\n  got      " << Show(ids)
                    << "\n  expected " << Show(c.ids);
    }
  }
  EXPECT_EQ(failures, 0) << "of " << cases.size() << " strings (" << skipped << " skipped: data absent)";
}

TEST_F(WordPieceGolden, VocabTxtGivesTheSameIds) {
  const auto from_json = WordPieceTokenizer::LoadJson(dir_ + "/tokenizer.json");
  WordPieceOptions o;  // uncased, as the model's tokenizer_config.json says
  const auto from_txt = WordPieceTokenizer::LoadVocabTxt(dir_ + "/vocab.txt", o);
  ASSERT_EQ(from_txt.vocab_size(), from_json.vocab_size());
  for (const Case& c : GoldenCases()) ASSERT_EQ(from_txt.Encode(c.text), c.ids) << c.label;
}

// Cutting at StableSplit() of any prefix never changes the pieces: this is
// what lets the router tokenize a growing text incrementally.
TEST_F(WordPieceGolden, StableSplitKeepsPieces) {
  size_t skipped = 0;
  GoldenCases(&skipped);
  // The check needs the data-set texts: without them too few strings are cut.
  if (skipped > 0) return testing::MissingData(std::to_string(skipped) + " golden strings' source texts");
  const auto tok = WordPieceTokenizer::LoadJson(dir_ + "/tokenizer.json");
  std::mt19937 rng(5);
  int checked = 0;
  for (const Case& c : GoldenCases()) {
    const std::vector<int32_t> whole = tok.Encode(c.text, false);
    for (int k = 0; k < 3 && !c.text.empty(); ++k) {
      const size_t p = std::uniform_int_distribution<size_t>(0, c.text.size())(rng);
      const size_t s = tok.StableSplit(std::string_view(c.text).substr(0, p));
      ASSERT_LE(s, p);
      std::vector<int32_t> parts = tok.Encode(std::string_view(c.text).substr(0, s), false);
      tok.EncodeTo(std::string_view(c.text).substr(s), &parts);
      ASSERT_EQ(parts, whole) << c.label << " cut at " << s << " (prefix of " << p << " bytes)";
      checked += s > 0;
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(WordPiece, TablesAreSortedAndDisjoint) {
  const auto& t = tokenizer_internal::GetWordPieceUnicodeTables();
  for (auto ranges : {t.control, t.clean_space, t.chinese, t.fold_removed, t.punctuation, t.whitespace}) {
    ASSERT_FALSE(ranges.empty());
    for (size_t i = 0; i < ranges.size(); ++i) {
      ASSERT_LE(ranges[i].first, ranges[i].last);
      if (i > 0) {
        ASSERT_LT(ranges[i - 1].last + 1, ranges[i].first) << "ranges must be merged and sorted";
      }
    }
  }
  for (size_t i = 1; i < t.fold.size(); ++i) ASSERT_LT(t.fold[i - 1].cp, t.fold[i].cp);
}

// A minimal tokenizer.json; `patch` edits it before parsing.
std::string TinyJson(const std::function<void(nlohmann::json&)>& patch = {}) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "added_tokens": [{"id": 0, "content": "[PAD]", "special": true, "normalized": false},
                     {"id": 1, "content": "[UNK]", "special": true, "normalized": false},
                     {"id": 2, "content": "[CLS]", "special": true, "normalized": false},
                     {"id": 3, "content": "[SEP]", "special": true, "normalized": false}],
    "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                   "strip_accents": null, "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}},
                                  {"SpecialToken": {"id": "[SEP]", "type_id": 0}}]},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 5,
              "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "un": 4, "##aff": 5,
                        "##able": 6, "a": 7, "##a": 8, ",": 9, "é": 10, "e": 11}}})");
  if (patch) patch(j);
  return j.dump();
}

TEST(WordPiece, TinyVocabulary) {
  const auto tok = WordPieceTokenizer::ParseJson(TinyJson(), "tiny.json");
  EXPECT_EQ(tok.Encode("unaffable"), (std::vector<int32_t>{2, 1, 3}));  // 9 chars > 5: [UNK]
  EXPECT_EQ(tok.Encode("aaaa,Un"), (std::vector<int32_t>{2, 7, 8, 8, 8, 9, 4, 3}));
  EXPECT_EQ(tok.Encode("É"), (std::vector<int32_t>{2, 11, 3}));  // accent stripped
  EXPECT_EQ(tok.Encode("ab"), (std::vector<int32_t>{2, 1, 3}));  // no piece for "##b": whole word [UNK]
  EXPECT_EQ(tok.Encode("[SEP]a"), (std::vector<int32_t>{2, 3, 7, 3}));
}

TEST(WordPiece, ErrorsNameTheField) {
  const auto expect_error = [](const std::string& json, const std::string& needle) {
    try {
      WordPieceTokenizer::ParseJson(json, "tok.json");
      ADD_FAILURE() << "expected an InputError containing " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("{", "tok.json: not valid JSON");
  expect_error(TinyJson([](auto& j) { j["model"]["type"] = "BPE"; }), "model.type: expected \"WordPiece\"");
  expect_error(TinyJson([](auto& j) { j["model"]["unk_token"] = "<unk>"; }), "unk token '<unk>'");
  expect_error(TinyJson([](auto& j) { j["model"]["vocab"]["x"] = 99; }), "model.vocab['x']: id 99");
  expect_error(TinyJson([](auto& j) { j["normalizer"]["strip_accents"] = false; }),
               "lowercase=true and strip_accents=false");
  expect_error(TinyJson([](auto& j) { j["normalizer"] = {{"type", "NFC"}}; }), "normalizer.type");
  expect_error(TinyJson([](auto& j) {
                 j["pre_tokenizer"] = {{"type", "Whitespace"}};
               }),
               "pre_tokenizer.type");
  expect_error(TinyJson([](auto& j) { j["post_processor"]["single"].erase(2); }), "post_processor.single");
  expect_error(TinyJson([](auto& j) { j["added_tokens"][0]["normalized"] = true; }),
               "added_tokens[0].normalized");
}

TEST(WordPiece, CasedModelsKeepCaseAndAccents) {
  const auto tok = WordPieceTokenizer::ParseJson(TinyJson([](auto& j) {
                                                   j["normalizer"]["lowercase"] = false;
                                                   j["model"]["vocab"]["Un"] = 12;
                                                 }),
                                                 "cased.json");
  EXPECT_EQ(tok.Encode("Un é"), (std::vector<int32_t>{2, 12, 10, 3}));
}

}  // namespace
}  // namespace tokenlora
