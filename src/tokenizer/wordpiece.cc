#include "tokenizer/wordpiece.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "io/json_text.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece_unicode.h"

namespace tokenlora {
namespace {

using nlohmann::json;
using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedTokenMatcher;
using tokenizer_internal::CodeRange;
using tokenizer_internal::DecodeUtf8;
using tokenizer_internal::GetWordPieceUnicodeTables;
using tokenizer_internal::kReplacementChar;

bool InRanges(std::span<const CodeRange> ranges, uint32_t cp) {
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                                   [](uint32_t c, const CodeRange& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

// What the pre-tokenizer does with a normalised character.
enum class CharClass : uint8_t { kWord, kSpace, kPunct };

CharClass ClassifyFromTables(uint32_t cp) {
  const auto& t = GetWordPieceUnicodeTables();
  if (InRanges(t.whitespace, cp)) return CharClass::kSpace;
  if (InRanges(t.punctuation, cp)) return CharClass::kPunct;
  return CharClass::kWord;
}

CharClass Classify(uint32_t cp) {
  static const std::array<CharClass, 128> kAscii = [] {
    std::array<CharClass, 128> a{};
    for (uint32_t c = 0; c < 128; ++c) a[c] = ClassifyFromTables(c);
    return a;
  }();
  return cp < 128 ? kAscii[cp] : ClassifyFromTables(cp);
}

// Calls emit(cp) for each character BertNormalizer makes of `text`. The
// library normalises the whole string (NFD reorders combining marks), but
// every mark it reorders is one that strip_accents then removes, so mapping
// character by character gives the same text. Exception, documented rather
// than handled: surviving non-starters (Mc musical symbols U+1D165.. with
// canonical class != 0) are not reordered here.
template <typename Emit>
void ForEachNormalized(const WordPieceOptions& o, std::string_view text, Emit&& emit) {
  const auto& t = GetWordPieceUnicodeTables();
  const bool fold = o.lowercase;  // == strip_accents (checked at load)
  auto emit_folded = [&](uint32_t cp) {
    if (!fold) return emit(cp);
    if (cp < 0x80) return emit(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);  // the table's ASCII entries
    if (cp >= 0xAC00 && cp <= 0xD7A3) {                                 // Hangul syllable: algorithmic NFD
      const uint32_t s = cp - 0xAC00;
      emit(0x1100 + s / 588);
      emit(0x1161 + (s % 588) / 28);
      if (s % 28 != 0) emit(0x11A7 + s % 28);
      return;
    }
    if (InRanges(t.fold_removed, cp)) return;
    const auto it = std::lower_bound(t.fold.begin(), t.fold.end(), cp,
                                     [](const auto& m, uint32_t c) { return m.cp < c; });
    if (it != t.fold.end() && it->cp == cp) {
      for (uint32_t i = 0; i < it->n; ++i) emit(it->out[i]);
      return;
    }
    emit(cp);
  };
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(text, pos, &cp);
    pos += n == 0 ? 1 : n;
    if (n == 0) cp = kReplacementChar;
    if (o.clean_text && (cp < 0x20 || cp >= 0x7F)) {  // printable ASCII passes untouched
      if (InRanges(t.control, cp)) continue;
      if (InRanges(t.clean_space, cp)) cp = ' ';
    }
    if (o.handle_chinese_chars && InRanges(t.chinese, cp)) {
      emit(' ');
      emit_folded(cp);
      emit(' ');
    } else {
      emit_folded(cp);
    }
  }
}

// Errors for tokenizer.json fields: "<file>: <field>: <message>".
[[noreturn]] void Fail(const std::string& source, const std::string& field, const std::string& message) {
  throw InputError(source + ": " + field + ": " + message);
}

bool GetBool(const json& obj, const char* key, const std::string& source, const std::string& field,
             bool dflt) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) Fail(source, field, "expected true or false, got " + io_internal::Quote(it->dump()));
  return it->get<bool>();
}

std::string GetString(const json& obj, const char* key, const std::string& source, const std::string& field) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) Fail(source, field, "expected a string");
  return it->get<std::string>();
}

void ReadNormalizer(const json& n, const std::string& source, WordPieceOptions* o) {
  if (n.is_null()) {  // no normaliser: the text goes to the pre-tokenizer as is
    o->clean_text = o->handle_chinese_chars = o->lowercase = o->strip_accents = false;
    return;
  }
  const std::string type = n.is_object() && n.contains("type") ? n["type"].dump() : "?";
  if (type != "\"BertNormalizer\"") {
    Fail(source, "normalizer.type",
         "expected \"BertNormalizer\", got " + type +
             " (only BERT-style WordPiece tokenizers are supported here)");
  }
  o->clean_text = GetBool(n, "clean_text", source, "normalizer.clean_text", true);
  o->handle_chinese_chars =
      GetBool(n, "handle_chinese_chars", source, "normalizer.handle_chinese_chars", true);
  o->lowercase = GetBool(n, "lowercase", source, "normalizer.lowercase", true);
  // tokenizers: strip_accents null follows lowercase.
  o->strip_accents = GetBool(n, "strip_accents", source, "normalizer.strip_accents", o->lowercase);
}

// [CLS] and [SEP] from a TemplateProcessing or BertProcessing post-processor.
std::pair<std::string, std::string> ReadPostProcessor(const json& p, const std::string& source) {
  const std::string type = p.is_object() && p.contains("type") ? p["type"].dump() : "null";
  if (type == "\"BertProcessing\"") {
    const auto token = [&](const char* key) {
      const auto it = p.find(key);
      if (it == p.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) {
        Fail(source, std::string("post_processor.") + key, "expected [\"token\", id]");
      }
      return (*it)[0].get<std::string>();
    };
    return {token("cls"), token("sep")};
  }
  if (type != "\"TemplateProcessing\"") {
    Fail(source, "post_processor.type", "expected \"TemplateProcessing\" or \"BertProcessing\", got " + type);
  }
  const auto it = p.find("single");
  const auto shape_error = [&] {
    Fail(source, "post_processor.single",
         "expected the BERT template [CLS] $A [SEP], got " +
             io_internal::Quote(it == p.end() ? "" : it->dump()));
  };
  if (it == p.end() || !it->is_array() || it->size() != 3) shape_error();
  const json& single = *it;
  const auto special = [&](const json& item) {
    if (!item.is_object() || !item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
      shape_error();
    return item["SpecialToken"]["id"].get<std::string>();
  };
  if (!single[1].is_object() || !single[1].contains("Sequence")) shape_error();
  return {special(single[0]), special(single[2])};
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer() = default;
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer::~WordPieceTokenizer() = default;

WordPieceTokenizer WordPieceTokenizer::LoadJson(const std::string& path) {
  return ParseJson(ReadTextFile(path), path);
}

WordPieceTokenizer WordPieceTokenizer::ParseJson(std::string_view json_text, const std::string& name) {
  json root;
  try {
    root = ParseBoundedJson(json_text);
  } catch (const json::exception& e) {
    throw InputError(name + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw InputError(name + ": expected a JSON object at the top level");
  const auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) Fail(name, "model", "missing");
  const json& model = *model_it;
  const std::string model_type = model.contains("type") ? model["type"].dump() : "?";
  if (model_type != "\"WordPiece\"") {
    Fail(name, "model.type",
         "expected \"WordPiece\", got " + model_type + " (BPE tokenizers load with LoadTokenizerFromJson)");
  }
  WordPieceTokenizer tok;
  WordPieceOptions& o = tok.options_;
  o.unk_token = GetString(model, "unk_token", name, "model.unk_token");
  if (model.contains("continuing_subword_prefix")) {
    o.continuing_subword_prefix =
        GetString(model, "continuing_subword_prefix", name, "model.continuing_subword_prefix");
  }
  if (const auto it = model.find("max_input_chars_per_word"); it != model.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1'000'000) {
      Fail(name, "model.max_input_chars_per_word", "expected an integer in [1, 1000000], got " + it->dump());
    }
    o.max_input_chars_per_word = it->get<int>();
  }
  const auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object() || vocab->empty()) {
    Fail(name, "model.vocab", "expected a non-empty object {token: id}");
  }
  tok.tokens_.resize(vocab->size());
  std::vector<bool> seen(vocab->size(), false);
  for (const auto& [text, id_json] : vocab->items()) {
    const std::string field = "model.vocab[" + io_internal::Quote(text) + "]";
    if (!id_json.is_number_integer()) Fail(name, field, "expected an integer id, got " + id_json.dump());
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab->size()) || seen[static_cast<size_t>(id)]) {
      Fail(name, field,
           "id " + std::to_string(id) + " is out of range [0, " + std::to_string(vocab->size()) +
               ") or used twice (ids must be 0..n-1, each once)");
    }
    seen[static_cast<size_t>(id)] = true;
    tok.tokens_[static_cast<size_t>(id)] = text;
  }
  ReadNormalizer(root.contains("normalizer") ? root["normalizer"] : json(), name, &o);
  const auto pre = root.find("pre_tokenizer");
  const std::string pre_type =
      pre != root.end() && pre->is_object() && pre->contains("type") ? (*pre)["type"].dump() : "null";
  if (pre_type != "\"BertPreTokenizer\"") {
    Fail(name, "pre_tokenizer.type", "expected \"BertPreTokenizer\", got " + pre_type);
  }
  const auto [cls, sep] =
      ReadPostProcessor(root.contains("post_processor") ? root["post_processor"] : json(), name);

  std::vector<AddedToken> added;
  if (const auto it = root.find("added_tokens"); it != root.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      const json& a = (*it)[i];
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object()) Fail(name, field, "expected an object");
      AddedToken t;
      t.content = GetString(a, "content", name, field + ".content");
      t.special = GetBool(a, "special", name, field + ".special", false);
      t.lstrip = GetBool(a, "lstrip", name, field + ".lstrip", false);
      t.rstrip = GetBool(a, "rstrip", name, field + ".rstrip", false);
      t.single_word = GetBool(a, "single_word", name, field + ".single_word", false);
      t.normalized = GetBool(a, "normalized", name, field + ".normalized", !t.special);
      if (t.normalized) {
        Fail(name, field + ".normalized",
             "added token " + io_internal::Quote(t.content) +
                 " is matched on normalised text, which this WordPiece tokenizer does not support");
      }
      const auto pos = std::find(tok.tokens_.begin(), tok.tokens_.end(), t.content);
      if (pos == tok.tokens_.end()) {
        Fail(name, field, "added token " + io_internal::Quote(t.content) + " is not in model.vocab");
      }
      t.id = static_cast<int32_t>(pos - tok.tokens_.begin());
      added.push_back(std::move(t));
    }
  }
  tok.SetAddedTokens(std::move(added));
  tok.Finish(name);
  const auto id_of = [&](const std::string& token, const char* field) {
    const auto id = tok.TokenId(token);
    if (!id) Fail(name, field, io_internal::Quote(token) + " is not in model.vocab");
    return *id;
  };
  tok.cls_id_ = id_of(cls, "post_processor");
  tok.sep_id_ = id_of(sep, "post_processor");
  tok.pad_id_ = tok.TokenId("[PAD]").value_or(0);
  return tok;
}

WordPieceTokenizer WordPieceTokenizer::LoadVocabTxt(const std::string& path,
                                                    const WordPieceOptions& options) {
  const std::string text = ReadTextFile(path);
  WordPieceTokenizer tok;
  tok.options_ = options;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF copies of vocab.txt
    tok.tokens_.emplace_back(line);
    begin = end + 1;
  }
  if (tok.tokens_.empty()) throw InputError(path + ": the vocabulary is empty");
  tok.Finish(path);
  std::vector<AddedToken> added;
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    const auto id = tok.TokenId(special);
    if (!id) throw InputError(path + ": special token " + special + " is not in the vocabulary");
    AddedToken t;
    t.id = *id;
    t.content = special;
    t.special = true;
    added.push_back(t);
  }
  tok.SetAddedTokens(std::move(added));
  tok.cls_id_ = *tok.TokenId("[CLS]");
  tok.sep_id_ = *tok.TokenId("[SEP]");
  tok.pad_id_ = *tok.TokenId("[PAD]");
  return tok;
}

WordPieceTokenizer WordPieceTokenizer::FromGguf(const GgufFile& gguf) {
  const std::string& source = gguf.path();
  const std::string model = gguf.GetString("tokenizer.ggml.model");
  if (model != "bert") {
    throw InputError(source + ": tokenizer.ggml.model is '" + model +
                     "', expected 'bert' (a WordPiece vocabulary)");
  }
  const GgufValue& tokens = gguf.Get("tokenizer.ggml.tokens");
  if (!tokens.IsArray() || tokens.array_type != GgufType::kString || tokens.strings.empty()) {
    throw InputError(source + ": tokenizer.ggml.tokens must be a non-empty array of strings");
  }
  std::vector<int64_t> types;
  if (const GgufValue* t = gguf.Find("tokenizer.ggml.token_type")) {
    for (const GgufValue& v : t->array) types.push_back(v.AsInt("tokenizer.ggml.token_type"));
    if (types.size() != tokens.strings.size()) {
      throw InputError(source + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                       " entries, expected " + std::to_string(tokens.strings.size()) + " (one per token)");
    }
  }
  static constexpr std::string_view kPhantomSpace =
      "\xE2\x96\x81";  // U+2581, as llama.cpp writes word starts
  WordPieceTokenizer tok;
  for (const std::string& t : tokens.strings) {
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
      tok.tokens_.push_back(t);
    } else if (t.rfind(kPhantomSpace, 0) == 0) {
      tok.tokens_.push_back(t.substr(kPhantomSpace.size()));
    } else {
      tok.tokens_.push_back("##" + t);
    }
  }
  const auto special_id = [&](const char* key) {
    const int64_t id = gguf.GetInt(key);
    if (id < 0 || id >= static_cast<int64_t>(tok.tokens_.size())) {
      throw InputError(source + ": " + key + " = " + std::to_string(id) + " is outside the vocabulary");
    }
    return static_cast<int32_t>(id);
  };
  tok.options_.unk_token = tok.tokens_[static_cast<size_t>(special_id("tokenizer.ggml.unknown_token_id"))];
  tok.Finish(source);
  std::vector<AddedToken> added;
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] != 3) continue;  // llama.cpp's LLAMA_TOKEN_TYPE_CONTROL
    AddedToken t;
    t.id = static_cast<int32_t>(i);
    t.content = tok.tokens_[i];
    t.special = true;
    added.push_back(t);
  }
  tok.SetAddedTokens(std::move(added));
  tok.cls_id_ = special_id("tokenizer.ggml.cls_token_id");
  tok.sep_id_ = special_id("tokenizer.ggml.seperator_token_id");  // sic: llama.cpp's key
  tok.pad_id_ =
      gguf.FindInt("tokenizer.ggml.padding_token_id") ? special_id("tokenizer.ggml.padding_token_id") : 0;
  return tok;
}

WordPieceTokenizer WordPieceTokenizer::LoadDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "tokenizer.json", ec))
    return LoadJson((fs::path(dir) / "tokenizer.json").string());
  const fs::path vocab = fs::path(dir) / "vocab.txt";
  if (!fs::exists(vocab, ec)) {
    throw InputError(
        dir + ": no tokenizer.json or vocab.txt (is this a BERT / sentence-transformers model directory?)");
  }
  WordPieceOptions o;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config, ec)) {
    json c;
    try {
      c = ParseBoundedJson(ReadTextFile(config.string()));
    } catch (const json::exception& e) {
      throw InputError(config.string() + ": not valid JSON (" + e.what() + ")");
    }
    o.lowercase = GetBool(c, "do_lower_case", config.string(), "do_lower_case", true);
    o.strip_accents = GetBool(c, "strip_accents", config.string(), "strip_accents", o.lowercase);
    o.handle_chinese_chars =
        GetBool(c, "tokenize_chinese_chars", config.string(), "tokenize_chinese_chars", true);
  }
  return LoadVocabTxt(vocab.string(), o);
}

void WordPieceTokenizer::SetAddedTokens(std::vector<tokenizer_internal::AddedToken> added) {
  std::vector<std::string> patterns;
  split_safe_ = true;
  for (const AddedToken& t : added) {
    patterns.push_back(t.content);
    for (size_t p = 0; p < t.content.size();) {
      uint32_t cp;
      const size_t n = DecodeUtf8(t.content, p, &cp);
      if (n != 0 && Classify(cp) == CharClass::kSpace) split_safe_ = false;
      p += n == 0 ? 1 : n;
    }
  }
  added_ =
      added.empty() ? nullptr : std::make_unique<AddedTokenMatcher>(std::move(added), std::move(patterns));
}

void WordPieceTokenizer::Finish(const std::string& source) {
  if (options_.lowercase != options_.strip_accents) {
    throw InputError(source + ": BertNormalizer with lowercase=" + (options_.lowercase ? "true" : "false") +
                     " and strip_accents=" + (options_.strip_accents ? "true" : "false") +
                     " is not supported (uncased models do both, cased models neither)");
  }
  ids_.clear();
  ids_.reserve(tokens_.size());
  const std::string& prefix = options_.continuing_subword_prefix;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    // The first id wins for duplicate lines of a vocab.txt, as in transformers.
    ids_.emplace(t, static_cast<int32_t>(i));
    std::string_view body = t;
    if (body.size() >= prefix.size() && body.substr(0, prefix.size()) == prefix)
      body.remove_prefix(prefix.size());
    int chars = 0;
    for (size_t p = 0; p < body.size(); p += tokenizer_internal::CharLength(body, p)) ++chars;
    max_token_chars_ = std::max(max_token_chars_, chars);
  }
  const auto unk = TokenId(options_.unk_token);
  if (!unk)
    throw InputError(source + ": unk token " + io_internal::Quote(options_.unk_token) +
                     " is not in the vocabulary");
  unk_id_ = *unk;
}

const std::string& WordPieceTokenizer::TokenText(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && id < vocab_size() ? tokens_[static_cast<size_t>(id)] : kEmpty;
}

std::optional<int32_t> WordPieceTokenizer::TokenId(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string WordPieceTokenizer::Normalize(std::string_view text) const {
  std::string out;
  ForEachNormalized(options_, text, [&](uint32_t cp) { tokenizer_internal::AppendUtf8(cp, &out); });
  return out;
}

void WordPieceTokenizer::EncodeWord(std::string_view word, int n_chars, std::vector<int32_t>* ids) const {
  if (n_chars > options_.max_input_chars_per_word) {
    ids->push_back(unk_id_);
    return;
  }
  // Byte offset of each character start, plus the end.
  std::vector<uint32_t> starts;
  starts.reserve(static_cast<size_t>(n_chars) + 1);
  for (size_t p = 0; p < word.size(); p += tokenizer_internal::CharLength(word, p))
    starts.push_back(static_cast<uint32_t>(p));
  starts.push_back(static_cast<uint32_t>(word.size()));
  const size_t n = starts.size() - 1;
  const size_t first_piece = ids->size();
  std::string candidate;
  for (size_t begin = 0; begin < n;) {
    size_t end = std::min(n, begin + static_cast<size_t>(max_token_chars_));
    int32_t found = -1;
    for (; end > begin; --end) {
      candidate.clear();
      if (begin > 0) candidate = options_.continuing_subword_prefix;
      candidate.append(word.substr(starts[begin], starts[end] - starts[begin]));
      if (const auto it = ids_.find(candidate); it != ids_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {  // no piece fits: the whole word is unknown
      ids->resize(first_piece);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(found);
    begin = end;
  }
}

void WordPieceTokenizer::EncodePlain(std::string_view text, std::vector<int32_t>* ids) const {
  std::string word;
  int word_chars = 0;
  const auto flush = [&] {
    if (word_chars > 0) EncodeWord(word, word_chars, ids);
    word.clear();
    word_chars = 0;
  };
  ForEachNormalized(options_, text, [&](uint32_t cp) {
    const CharClass c = Classify(cp);
    if (c == CharClass::kSpace) {
      flush();
    } else if (c == CharClass::kPunct) {
      flush();
      tokenizer_internal::AppendUtf8(cp, &word);
      word_chars = 1;
      flush();
    } else {
      tokenizer_internal::AppendUtf8(cp, &word);
      ++word_chars;
    }
  });
  flush();
}

void WordPieceTokenizer::EncodeTo(std::string_view text, std::vector<int32_t>* ids) const {
  if (added_ == nullptr) return EncodePlain(text, ids);
  std::vector<AddedTokenMatcher::Segment> segments;
  added_->Split(text, /*parse_special=*/true, &segments);
  for (const auto& s : segments) {
    if (s.id >= 0) {
      ids->push_back(s.id);
    } else {
      EncodePlain(text.substr(s.begin, s.end - s.begin), ids);
    }
  }
}

std::vector<int32_t> WordPieceTokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens) ids.push_back(cls_id_);
  EncodeTo(text, &ids);
  if (add_special_tokens) ids.push_back(sep_id_);
  return ids;
}

size_t WordPieceTokenizer::StableSplit(std::string_view text) const {
  if (!split_safe_) return 0;
  // Scan backwards for a character that normalises to whitespace.
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    uint32_t cp;
    if (DecodeUtf8(text, start, &cp) != end - start) {
      start = end - 1;  // an invalid byte: its own character (dropped by clean_text)
      cp = kReplacementChar;
    }
    bool space = false;
    ForEachNormalized(options_, text.substr(start, end - start),
                      [&](uint32_t c) { space = Classify(c) == CharClass::kSpace; });
    if (space) return end;
    end = start;
  }
  return 0;
}

}  // namespace tokenlora
