// Hugging Face tokenizer.json (+ tokenizer_config.json) -> TokenizerParts.
// Schema: https://github.com/huggingface/tokenizers (serde of Tokenizer).
// Supported: model BPE; normalizers Sequence/Prepend/Replace; pre-tokenizers
// Sequence/ByteLevel/Split/Digits/Metaspace. Anything else is refused by name.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/io_util.h"
#include "io/json_text.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tokenlora {
namespace {

using nlohmann::json;
using tokenizer_internal::AddedToken;
using tokenizer_internal::Normalizer;
using tokenizer_internal::PrependScheme;
using tokenizer_internal::PreTokenizer;
using tokenizer_internal::Regex;
using tokenizer_internal::SplitBehavior;
using tokenizer_internal::TokenizerParts;
using tokenizer_internal::TokenType;

constexpr int64_t kMaxVocab = int64_t{1} << 24;  // far above any real vocabulary

// JSON access with errors that name the file and the field path.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }

  [[noreturn]] void Fail(const std::string& field, const std::string& message) const {
    throw InputError(source_ + ": " + field + ": " + message);
  }
  static std::string Show(const json& v) { return io_internal::Quote(v.dump(), 80); }

  const json* Find(const json& obj, const char* key) const {
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  const json& Object(const json& obj, const char* key, const std::string& field) const {
    const json* v = Find(obj, key);
    if (v == nullptr) Fail(field, "missing");
    if (!v->is_object()) Fail(field, "expected an object, got " + Show(*v));
    return *v;
  }
  std::string String(const json& obj, const char* key, const std::string& field) const {
    const json* v = Find(obj, key);
    if (v == nullptr) Fail(field, "missing");
    if (!v->is_string()) Fail(field, "expected a string, got " + Show(*v));
    return v->get<std::string>();
  }
  std::string String(const json& obj, const char* key, const std::string& field,
                     const std::string& dflt) const {
    return Find(obj, key) == nullptr ? dflt : String(obj, key, field);
  }
  bool Bool(const json& obj, const char* key, const std::string& field, bool dflt) const {
    const json* v = Find(obj, key);
    if (v == nullptr) return dflt;
    if (!v->is_boolean()) Fail(field, "expected true or false, got " + Show(*v));
    return v->get<bool>();
  }
  // `field` names the value in errors: a string, or a callable that returns
  // one (hot loops over 50k entries should not build names they never use).
  template <typename Field>
  int32_t Id(const json& v, const Field& field) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxVocab) {
      Fail(FieldName(field), "expected a token id (an integer from 0 to " + std::to_string(kMaxVocab - 1) +
                                 "), got " + Show(v));
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }
  static std::string FieldName(const std::string& field) { return field; }
  template <typename F>
  static std::string FieldName(const F& field) {
    return field();
  }
  // {"String": s} or {"Regex": r}: a literal or a compiled regex.
  std::pair<std::string, bool> Pattern(const json& obj, const std::string& field) const {
    const json& p = Object(obj, "pattern", field + ".pattern");
    if (const json* s = Find(p, "String"); s != nullptr && s->is_string())
      return {s->get<std::string>(), false};
    if (const json* r = Find(p, "Regex"); r != nullptr && r->is_string())
      return {r->get<std::string>(), true};
    Fail(field + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}, got " + Show(p));
  }

 private:
  std::string source_;
};

json ParseJson(std::string_view text, const std::string& source) {
  try {
    return ParseBoundedJson(text);
  } catch (const json::exception& e) {
    throw InputError(source + ": not valid JSON: " + e.what());
  }
}

void ReadNormalizer(const Reader& r, const json& n, const std::string& field, Normalizer* out) {
  if (!n.is_object()) r.Fail(field, "expected an object, got " + Reader::Show(n));
  const std::string type = r.String(n, "type", field + ".type");
  if (type == "Sequence") {
    const json* list = r.Find(n, "normalizers");
    if (list == nullptr || !list->is_array()) r.Fail(field + ".normalizers", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      ReadNormalizer(r, (*list)[i], field + ".normalizers[" + std::to_string(i) + "]", out);
    }
  } else if (type == "Prepend") {
    out->AddPrepend(r.String(n, "prepend", field + ".prepend"));
  } else if (type == "Replace") {
    auto [pattern, is_regex] = r.Pattern(n, field);
    std::string content = r.String(n, "content", field + ".content");
    if (is_regex) {
      out->AddReplaceRegex(Regex::Compile(pattern, r.source() + ": " + field), std::move(content));
    } else {
      out->AddReplace(std::move(pattern), std::move(content));
    }
  } else {
    r.Fail(field + ".type", "normalizer '" + type +
                                "' is not supported (supported: Sequence, Prepend, Replace; Unicode "
                                "normalization such as NFC/NFKC is not available yet)");
  }
}

SplitBehavior ReadBehavior(const Reader& r, const json& obj, const std::string& field) {
  const std::string b = r.String(obj, "behavior", field);
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  r.Fail(field, "unknown split behavior '" + b +
                    "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

// Returns true when the pre-tokenizer contains ByteLevel (a byte-level model).
bool ReadPreTokenizer(const Reader& r, const json& p, const std::string& field, PreTokenizer* out) {
  if (!p.is_object()) r.Fail(field, "expected an object, got " + Reader::Show(p));
  const std::string type = r.String(p, "type", field + ".type");
  const std::string where = r.source() + ": " + field;
  if (type == "Sequence") {
    const json* list = r.Find(p, "pretokenizers");
    if (list == nullptr || !list->is_array()) r.Fail(field + ".pretokenizers", "expected an array");
    bool byte_level = false;
    for (size_t i = 0; i < list->size(); ++i) {
      byte_level |= ReadPreTokenizer(r, (*list)[i], field + ".pretokenizers[" + std::to_string(i) + "]", out);
    }
    return byte_level;
  }
  if (type == "ByteLevel") {
    out->AddByteLevel(r.Bool(p, "add_prefix_space", field + ".add_prefix_space", true),
                      r.Bool(p, "use_regex", field + ".use_regex", true), where);
    return true;
  }
  if (type == "Split") {
    auto [pattern, is_regex] = r.Pattern(p, field);
    const SplitBehavior behavior = ReadBehavior(r, p, field + ".behavior");
    const bool invert = r.Bool(p, "invert", field + ".invert", false);
    if (is_regex) {
      out->AddSplit(Regex::Compile(pattern, where), behavior, invert);
    } else {
      out->AddLiteralSplit(std::move(pattern), behavior, invert);
    }
    return false;
  }
  if (type == "Digits") {
    out->AddDigits(r.Bool(p, "individual_digits", field + ".individual_digits", false), where);
    return false;
  }
  if (type == "Metaspace") {
    const std::string replacement = r.String(p, "replacement", field + ".replacement", "\xE2\x96\x81");
    if (replacement.empty() || tokenizer_internal::CharLength(replacement, 0) != replacement.size()) {
      r.Fail(field + ".replacement", "expected one character, got '" + replacement + "'");
    }
    const std::string scheme = r.String(p, "prepend_scheme", field + ".prepend_scheme", "always");
    PrependScheme s;
    if (scheme == "always") {
      s = PrependScheme::kAlways;
    } else if (scheme == "first") {
      s = PrependScheme::kFirst;
    } else if (scheme == "never") {
      s = PrependScheme::kNever;
    } else {
      r.Fail(field + ".prepend_scheme", "expected always, first or never, got '" + scheme + "'");
    }
    // Older files say add_prefix_space: false for "never".
    if (!r.Bool(p, "add_prefix_space", field + ".add_prefix_space", true)) s = PrependScheme::kNever;
    out->AddMetaspace(replacement, s, r.Bool(p, "split", field + ".split", true));
    return false;
  }
  r.Fail(field + ".type",
         "pre-tokenizer '" + type +
             "' is not supported (supported: Sequence, ByteLevel, Split, Digits, Metaspace)");
}

// The BOS a TemplateProcessing post-processor puts first, if any.
std::optional<std::string> TemplateBos(const Reader& r, const json& p) {
  if (!p.is_object()) return std::nullopt;
  const json* type = r.Find(p, "type");
  if (type == nullptr || !type->is_string()) return std::nullopt;
  if (*type == "Sequence") {
    const json* list = r.Find(p, "processors");
    if (list == nullptr || !list->is_array()) return std::nullopt;
    for (const json& item : *list) {
      if (auto bos = TemplateBos(r, item)) return bos;
    }
    return std::nullopt;
  }
  if (*type != "TemplateProcessing") return std::nullopt;
  const json* single = r.Find(p, "single");
  if (single == nullptr || !single->is_array() || single->empty()) return std::nullopt;
  const json& first = single->front();
  if (!first.is_object() || !first.contains("SpecialToken")) return std::nullopt;
  const json& special = first["SpecialToken"];
  if (!special.is_object() || !special.contains("id") || !special["id"].is_string()) return std::nullopt;
  return special["id"].get<std::string>();
}

// d[key] when it is a string, else `dflt`.
std::string StringOr(const json& d, const char* key, const std::string& dflt) {
  const auto it = d.find(key);
  return it != d.end() && it->is_string() ? it->get<std::string>() : dflt;
}

// Whether the decoder strips the leading space SentencePiece's dummy prefix left.
bool DecoderStripsLeadingSpace(const json& d) {
  if (!d.is_object() || !d.contains("type") || !d["type"].is_string()) return false;
  const std::string type = d["type"];
  if (type == "Sequence" && d.contains("decoders") && d["decoders"].is_array()) {
    for (const json& item : d["decoders"]) {
      if (DecoderStripsLeadingSpace(item)) return true;
    }
    return false;
  }
  if (type == "Strip") {
    return StringOr(d, "content", "") == " " && d.contains("start") && d["start"].is_number_integer() &&
           d["start"].get<int64_t>() >= 1;
  }
  if (type == "Metaspace") {
    const bool add_prefix_space = !d.contains("add_prefix_space") || d["add_prefix_space"] != false;
    return StringOr(d, "prepend_scheme", "always") != "never" && add_prefix_space;
  }
  return false;
}

// Resolves model.merges into rank-ordered id triples.
void ReadMerges(const Reader& r, const json& merges, const tokenizer_internal::TokenMap& vocab,
                TokenizerParts* parts) {
  if (!merges.is_array()) r.Fail("model.merges", "expected an array, got " + Reader::Show(merges));
  parts->merges.Reserve(merges.size());
  int32_t rank = 0;
  std::string merged;  // reused: this loop runs ~50k times on a load
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto field = [i] { return "model.merges[" + std::to_string(i) + "]"; };  // for errors only
    const json& m = merges[i];
    std::string_view left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      if (s.rfind("#version", 0) == 0) continue;  // header line of old merges.txt files
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        r.Fail(field(), "expected two tokens separated by one space, got " + Reader::Show(m));
      }
      left = std::string_view(s).substr(0, space);
      right = std::string_view(s).substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get_ref<const std::string&>();
      right = m[1].get_ref<const std::string&>();
    } else {
      r.Fail(field(), "expected \"a b\" or [\"a\", \"b\"], got " + Reader::Show(m));
    }
    const auto find = [&](std::string_view token, const char* what) {
      const auto it = vocab.find(token);
      if (it == vocab.end()) {
        r.Fail(field(), std::string(what) + " " + io_internal::Quote(token) + " is not in model.vocab");
      }
      return it->second;
    };
    const int32_t a = find(left, "token");
    const int32_t b = find(right, "token");
    merged.assign(left).append(right);
    const int32_t result = find(merged, "merged token");
    parts->merges.Add(a, b, result, rank++);
  }
}

// tokenizer_config.json: "x" or {"content": "x", ...}.
std::optional<std::string> ConfigTokenText(const Reader& r, const json& config, const char* key) {
  const json* v = r.Find(config, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object() && v->contains("content") && (*v)["content"].is_string())
    return (*v)["content"].get<std::string>();
  r.Fail(key, "expected a string or {\"content\": ...}, got " + Reader::Show(*v));
}

void ReadConfig(std::string_view config_text, const std::string& source,
                const tokenizer_internal::TokenMap& ids, TokenizerParts* parts) {
  const Reader r(source);
  const json config = ParseJson(config_text, source);
  if (!config.is_object()) r.Fail("(top level)", "expected an object");
  const auto id_of = [&](const char* key, const std::string& text) {
    const auto it = ids.find(text);
    if (it == ids.end()) r.Fail(key, io_internal::Quote(text) + " is not a token of the vocabulary");
    return it->second;
  };
  if (auto bos = ConfigTokenText(r, config, "bos_token")) parts->bos_id = id_of("bos_token", *bos);
  if (auto eos = ConfigTokenText(r, config, "eos_token")) parts->eos_id = id_of("eos_token", *eos);
  parts->add_bos = r.Bool(config, "add_bos_token", "add_bos_token", parts->add_bos && parts->bos_id >= 0);
  if (const json* t = r.Find(config, "chat_template")) {
    if (t->is_string()) {
      parts->chat_template = t->get<std::string>();
    } else if (t->is_array()) {
      // Named templates: [{"name": "default", "template": ...}, ...]; take "default".
      for (const json& item : *t) {
        if (item.is_object() && StringOr(item, "name", "") == "default" && item.contains("template") &&
            item["template"].is_string()) {
          parts->chat_template = item["template"].get<std::string>();
        }
      }
    } else {
      r.Fail("chat_template", "expected a string or a list of {name, template}, got " + Reader::Show(*t));
    }
  }
}

std::unique_ptr<Tokenizer> ParseChecked(std::string_view json_text, const std::string& name,
                                        std::string_view tokenizer_config_text) {
  const Reader r(name);
  const json root = ParseJson(json_text, name);
  if (!root.is_object()) r.Fail("(top level)", "expected a JSON object, got " + Reader::Show(root));
  const json& model = r.Object(root, "model", "model");

  const std::string type = r.String(model, "type", "model.type", model.contains("merges") ? "BPE" : "");
  if (type != "BPE") {
    r.Fail("model.type",
           "'" + type +
               "' is not supported: tokenlora reads BPE tokenizers, byte-level (GPT-2, Llama 3, "
               "Qwen2, SmolLM) or SentencePiece-style with byte_fallback (Llama 2)");
  }
  if (const json* d = r.Find(model, "dropout");
      d != nullptr && (!d->is_number() || d->get<double>() != 0.0)) {
    r.Fail("model.dropout", "BPE dropout is not supported at inference, got " + Reader::Show(*d));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!r.String(model, key, std::string("model.") + key, "").empty()) {
      r.Fail(std::string("model.") + key, "subword prefixes/suffixes are not supported");
    }
  }

  TokenizerParts parts;
  parts.source = name;

  // Model vocabulary, then added tokens, which may extend it.
  const json& vocab = r.Object(model, "vocab", "model.vocab");
  tokenizer_internal::TokenMap model_ids;
  model_ids.reserve(vocab.size());
  std::vector<std::string> tokens;
  std::vector<bool> assigned;
  const auto assign = [&](int32_t id, const std::string& text, const auto& field) {
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      assigned.resize(id + 1, false);
    }
    if (assigned[id] && tokens[id] != text) {
      r.Fail(Reader::FieldName(field), "id " + std::to_string(id) + " of " + io_internal::Quote(text) +
                                           " already belongs to " + io_internal::Quote(tokens[id]));
    }
    tokens[id] = text;
    assigned[id] = true;
  };
  for (const auto& entry : vocab.items()) {
    const std::string& text = entry.key();
    const json& id_value = entry.value();
    const auto field = [&text] { return "model.vocab[" + io_internal::Quote(text) + "]"; };
    const int32_t id = r.Id(id_value, field);
    assign(id, text, field);
    model_ids.emplace(text, id);
  }
  if (const json* added = r.Find(root, "added_tokens")) {
    if (!added->is_array()) r.Fail("added_tokens", "expected an array, got " + Reader::Show(*added));
    for (size_t i = 0; i < added->size(); ++i) {
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      const json& a = (*added)[i];
      if (!a.is_object()) r.Fail(field, "expected an object, got " + Reader::Show(a));
      if (!a.contains("id")) r.Fail(field + ".id", "missing");
      AddedToken t;
      t.id = r.Id(a["id"], field + ".id");
      t.content = r.String(a, "content", field + ".content");
      t.special = r.Bool(a, "special", field + ".special", false);
      t.lstrip = r.Bool(a, "lstrip", field + ".lstrip", false);
      t.rstrip = r.Bool(a, "rstrip", field + ".rstrip", false);
      t.single_word = r.Bool(a, "single_word", field + ".single_word", false);
      t.normalized = r.Bool(a, "normalized", field + ".normalized", !t.special);
      // As tokenizers: content the model vocabulary already has keeps the
      // model's id, whatever id the entry states.
      if (const auto it = model_ids.find(t.content); it != model_ids.end()) {
        t.id = it->second;
      } else {
        assign(t.id, t.content, field);
      }
      parts.added.push_back(std::move(t));
    }
  }
  if (tokens.empty()) r.Fail("model.vocab", "the vocabulary is empty");

  parts.byte_fallback = r.Bool(model, "byte_fallback", "model.byte_fallback", false);
  parts.fuse_unk = r.Bool(model, "fuse_unk", "model.fuse_unk", false);
  parts.ignore_merges = r.Bool(model, "ignore_merges", "model.ignore_merges", false);
  const size_t n = tokens.size();
  parts.types.assign(n, TokenType::kNormal);
  parts.in_model.assign(n, false);
  for (const auto& [text, id] : model_ids) {
    parts.in_model[id] = true;
    if (parts.byte_fallback && tokenizer_internal::ParseBytePiece(text)) parts.types[id] = TokenType::kByte;
  }
  for (const AddedToken& t : parts.added) {
    parts.types[t.id] = t.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  const std::string unk = r.String(model, "unk_token", "model.unk_token", "");
  if (!unk.empty()) {
    const auto it = model_ids.find(unk);
    if (it == model_ids.end()) r.Fail("model.unk_token", io_internal::Quote(unk) + " is not in model.vocab");
    parts.unk_id = it->second;
  }
  if (!model.contains("merges")) r.Fail("model.merges", "missing");
  ReadMerges(r, model["merges"], model_ids, &parts);

  bool byte_level = false;
  if (const json* n_json = r.Find(root, "normalizer"))
    ReadNormalizer(r, *n_json, "normalizer", &parts.normalizer);
  if (const json* p = r.Find(root, "pre_tokenizer")) {
    byte_level = ReadPreTokenizer(r, *p, "pre_tokenizer", &parts.pre_tokenizer);
  }
  parts.kind = byte_level ? TokenizerKind::kByteLevelBpe : TokenizerKind::kSentencePieceBpe;
  if (const json* d = r.Find(root, "decoder"))
    parts.decode_strips_leading_space = !byte_level && DecoderStripsLeadingSpace(*d);

  tokenizer_internal::TokenMap ids;
  for (size_t id = 0; id < n; ++id) {
    if (!tokens[id].empty()) ids.emplace(tokens[id], static_cast<int32_t>(id));
  }
  // BOS from the post-processor; EOS by convention. tokenizer_config.json,
  // when given, overrides both.
  if (const json* p = r.Find(root, "post_processor")) {
    if (auto bos = TemplateBos(r, *p)) {
      const auto it = ids.find(*bos);
      if (it == ids.end())
        r.Fail("post_processor", io_internal::Quote(*bos) + " is not a token of the vocabulary");
      parts.bos_id = it->second;
      parts.add_bos = true;
    }
  }
  for (const char* eos : {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "<|eot_id|>"}) {
    const auto it = ids.find(eos);
    if (it != ids.end() && parts.types[it->second] == TokenType::kControl) {
      parts.eos_id = it->second;
      break;
    }
  }
  parts.tokens = std::move(tokens);
  if (!tokenizer_config_text.empty()) {
    ReadConfig(tokenizer_config_text, "tokenizer_config.json beside " + name, ids, &parts);
  }
  parts.stop_ids = tokenizer_internal::KnownStopIds(parts.tokens, parts.types, parts.eos_id);
  return tokenizer_internal::BuildTokenizer(std::move(parts));
}

}  // namespace

std::unique_ptr<Tokenizer> ParseTokenizerJson(std::string_view json_text, const std::string& name,
                                              std::string_view tokenizer_config_text) {
  try {
    return ParseChecked(json_text, name, tokenizer_config_text);
  } catch (const json::exception& e) {
    // Every access above checks types first; this only guards against a
    // shape we did not foresee, so that bad input never escapes as a crash.
    throw InputError(name + ": unexpected JSON structure: " + e.what());
  }
}

std::unique_ptr<Tokenizer> LoadTokenizerFromJson(const std::string& tokenizer_json_path) {
  const std::string text = ReadTextFile(tokenizer_json_path);
  const std::filesystem::path config_path =
      std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  std::string config;
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) config = ReadTextFile(config_path.string());
  return ParseTokenizerJson(text, "tokenizer.json " + io_internal::Quote(tokenizer_json_path, 200), config);
}

}  // namespace tokenlora
