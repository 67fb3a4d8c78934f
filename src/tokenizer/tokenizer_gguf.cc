// GGUF tokenizer metadata (llama.cpp's tokenizer.ggml.* keys) -> TokenizerParts.
//   tokenizer.ggml.model  "gpt2": byte-level BPE with merges; "llama":
//                         SentencePiece BPE with scores
//   tokenizer.ggml.pre    the pre-tokenizer of a "gpt2" vocabulary (below)
//   tokens, token_type, scores, merges, *_token_id, add_bos_token,
//   add_space_prefix; tokenizer.chat_template
#include <algorithm>

#include "core/error.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tokenlora {
namespace {

using tokenizer_internal::AddedToken;
using tokenizer_internal::PreTokenizer;
using tokenizer_internal::Regex;
using tokenizer_internal::SplitBehavior;
using tokenizer_internal::TokenizerParts;
using tokenizer_internal::TokenType;

// The split patterns of the models' tokenizer.json files.
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kSupportedPre = "smollm, llama-bpe, qwen2, gpt2, default";

class MetadataReader {
 public:
  explicit MetadataReader(const GgufFile& gguf)
      : gguf_(gguf), source_("GGUF " + io_internal::Quote(gguf.path(), 200)) {}
  const std::string& source() const { return source_; }

  [[noreturn]] void Fail(const std::string& key, const std::string& message) const {
    throw InputError(source_ + ": metadata key " + io_internal::Quote(key) + ": " + message);
  }
  // Wraps GgufValue's own type errors so they name the file too.
  template <typename F>
  auto Convert(const std::string& key, F&& f) const {
    try {
      return f();
    } catch (const InputError& e) {
      throw InputError(source_ + ": " + e.what());
    }
  }
  std::optional<std::string> String(const std::string& key) const {
    const GgufValue* v = gguf_.Find(key);
    if (v == nullptr) return std::nullopt;
    return Convert(key, [&] { return v->AsString(key); });
  }
  std::optional<bool> Bool(const std::string& key) const {
    const GgufValue* v = gguf_.Find(key);
    if (v == nullptr) return std::nullopt;
    return Convert(key, [&] { return v->AsBool(key); });
  }
  // A token id key, checked against the vocabulary size; -1 when absent.
  int32_t TokenId(const std::string& key, size_t n_tokens) const {
    const GgufValue* v = gguf_.Find(key);
    if (v == nullptr) return -1;
    const int64_t id = Convert(key, [&] { return v->AsInt(key); });
    if (id < 0 || static_cast<uint64_t>(id) >= n_tokens) {
      Fail(key, "token id " + std::to_string(id) + " is outside the vocabulary of " +
                    std::to_string(n_tokens) + " tokens");
    }
    return static_cast<int32_t>(id);
  }
  // A non-string array with exactly `n` elements.
  const GgufValue& Array(const std::string& key, size_t n, const char* what) const {
    const GgufValue* v = gguf_.Find(key);
    TL_CHECK(v != nullptr);
    if (!v->IsArray() || v->array_type == GgufType::kString) {
      Fail(key, std::string("expected an array of ") + what + ", got " + v->ToDisplayString(3));
    }
    if (v->ArraySize() != n) {
      Fail(key, "has " + std::to_string(v->ArraySize()) + " entries but tokenizer.ggml.tokens has " +
                    std::to_string(n) + " (corrupt or mismatched vocabulary)");
    }
    return *v;
  }
  const GgufFile& gguf() const { return gguf_; }

 private:
  const GgufFile& gguf_;
  std::string source_;
};

void ReadMerges(const MetadataReader& r, const tokenizer_internal::TokenMap& ids, TokenizerParts* parts) {
  const std::string key = "tokenizer.ggml.merges";
  const GgufValue* v = r.gguf().Find(key);
  if (v == nullptr) r.Fail(key, "missing; a \"gpt2\" (byte-level BPE) vocabulary needs its merges");
  if (!v->IsArray() || v->array_type != GgufType::kString) {
    r.Fail(key, "expected an array of strings, got " + v->ToDisplayString(3));
  }
  parts->merges.Reserve(v->strings.size());
  for (size_t i = 0; i < v->strings.size(); ++i) {
    const std::string& merge = v->strings[i];
    const std::string where = key + "[" + std::to_string(i) + "]";
    // As llama.cpp: split at the first space after the first character.
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) r.Fail(where, "expected \"a b\", got " + io_internal::Quote(merge));
    const std::string left = merge.substr(0, space);
    const std::string right = merge.substr(space + 1);
    const auto find = [&](const std::string& token) {
      const auto it = ids.find(token);
      if (it == ids.end()) {
        r.Fail(where, io_internal::Quote(token) + " (from " + io_internal::Quote(merge) +
                          ") is not in tokenizer.ggml.tokens");
      }
      return it->second;
    };
    const int32_t a = find(left);  // in order, so the message names the first missing one
    const int32_t b = find(right);
    parts->merges.Add(a, b, find(left + right), static_cast<int32_t>(i));
  }
}

// The pre-tokenizer llama.cpp uses for each tokenizer.ggml.pre value (those
// mirror the Hugging Face tokenizer.json of the model family).
void SetPreTokenizer(const MetadataReader& r, const std::string& pre, TokenizerParts* parts) {
  const std::string where = r.source() + ": tokenizer.ggml.pre '" + pre + "'";
  PreTokenizer& p = parts->pre_tokenizer;
  if (pre == "smollm") {
    p.AddDigits(/*individual_digits=*/true, where);
    p.AddByteLevel(/*add_prefix_space=*/false, /*use_regex=*/true, where);
  } else if (pre == "gpt2" || pre == "default") {
    // "default" is what llama.cpp assumes when the key is missing; the GPT-2
    // split is the one every byte-level BPE started from.
    p.AddByteLevel(false, true, where);
  } else if (pre == "llama-bpe") {
    p.AddSplit(Regex::Compile(kLlama3Pattern, where), SplitBehavior::kIsolated, false);
    parts->ignore_merges = true;  // Llama 3's tokenizer.json sets it
  } else if (pre == "qwen2") {
    // Qwen2's tokenizer.json also has an NFC normalizer, which llama.cpp
    // does not apply either; text already in NFC (nearly all) is unaffected.
    p.AddSplit(Regex::Compile(kQwen2Pattern, where), SplitBehavior::kIsolated, false);
  } else {
    r.Fail("tokenizer.ggml.pre", "pre-tokenizer " + io_internal::Quote(pre) +
                                     " is not supported (supported: " + std::string(kSupportedPre) + ")");
  }
}

}  // namespace

std::unique_ptr<Tokenizer> LoadTokenizerFromGguf(const GgufFile& gguf) {
  const MetadataReader r(gguf);
  TokenizerParts parts;
  parts.source = r.source();

  const std::optional<std::string> model = r.String("tokenizer.ggml.model");
  if (!model) r.Fail("tokenizer.ggml.model", "missing; this GGUF carries no tokenizer");
  if (*model == "gpt2") {
    parts.kind = TokenizerKind::kByteLevelBpe;
  } else if (*model == "llama") {
    parts.kind = TokenizerKind::kSentencePieceBpe;
  } else {
    r.Fail("tokenizer.ggml.model", "tokenizer " + io_internal::Quote(*model) +
                                       " is not supported (supported: \"gpt2\" = byte-level BPE, \"llama\" = "
                                       "SentencePiece BPE)");
  }
  const bool spm = parts.kind == TokenizerKind::kSentencePieceBpe;

  const std::string tokens_key = "tokenizer.ggml.tokens";
  const GgufValue* tokens = gguf.Find(tokens_key);
  if (tokens == nullptr) r.Fail(tokens_key, "missing; the vocabulary is required");
  if (!tokens->IsArray() || tokens->array_type != GgufType::kString) {
    r.Fail(tokens_key, "expected an array of strings, got " + tokens->ToDisplayString(3));
  }
  const size_t n = tokens->strings.size();
  if (n == 0) r.Fail(tokens_key, "the vocabulary is empty");
  if (n >= static_cast<size_t>(INT32_MAX)) r.Fail(tokens_key, "too many tokens (" + std::to_string(n) + ")");
  parts.tokens = tokens->strings;

  parts.types.assign(n, TokenType::kNormal);
  if (gguf.Find("tokenizer.ggml.token_type") != nullptr) {
    const std::string key = "tokenizer.ggml.token_type";
    const GgufValue& types = r.Array(key, n, "integers");
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = r.Convert(key, [&] { return types.array[i].AsInt(key); });
      if (t < 0 || t > 6) {
        r.Fail(key, "entry " + std::to_string(i) + " is " + std::to_string(t) + "; token types are 0..6");
      }
      parts.types[i] = t == 0 ? TokenType::kNormal : static_cast<TokenType>(t);  // 0: undefined
    }
  }
  parts.in_model.assign(n, true);

  tokenizer_internal::TokenMap ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) ids.emplace(parts.tokens[i], static_cast<int32_t>(i));

  if (spm) {
    const std::string key = "tokenizer.ggml.scores";
    if (gguf.Find(key) == nullptr)
      r.Fail(key, "missing; a \"llama\" (SentencePiece) vocabulary needs its scores");
    const GgufValue& scores = r.Array(key, n, "floats");
    parts.scores.resize(n);
    for (size_t i = 0; i < n; ++i) {
      parts.scores[i] = static_cast<float>(r.Convert(key, [&] { return scores.array[i].AsFloat(key); }));
    }
    parts.score_merging = true;
    parts.byte_fallback = true;
    // Prefix every text run that follows the start or a special token with a
    // space, then spaces become "▁" (SentencePiece's dummy prefix, as llama.cpp).
    const bool add_space_prefix = r.Bool("tokenizer.ggml.add_space_prefix").value_or(true);
    if (add_space_prefix) parts.normalizer.AddPrepend("\xE2\x96\x81");
    parts.normalizer.AddReplace(" ", "\xE2\x96\x81");
    parts.decode_strips_leading_space = add_space_prefix;
    parts.unk_id = r.TokenId("tokenizer.ggml.unknown_token_id", n);
    if (parts.unk_id < 0) {
      for (size_t i = 0; i < n && parts.unk_id < 0; ++i) {
        if (parts.types[i] == TokenType::kUnknown) parts.unk_id = static_cast<int32_t>(i);
      }
    }
  } else {
    ReadMerges(r, ids, &parts);
    SetPreTokenizer(r, r.String("tokenizer.ggml.pre").value_or("default"), &parts);
    // Every byte has a token in a byte-level vocabulary; unknown_token_id
    // (SmolLM2 names <|endoftext|>) is never needed.
  }

  // Control, unknown and user-defined tokens are matched in the text.
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = parts.types[i];
    if (t != TokenType::kControl && t != TokenType::kUserDefined && t != TokenType::kUnknown) continue;
    AddedToken added;
    added.id = static_cast<int32_t>(i);
    added.content = parts.tokens[i];
    added.special = t != TokenType::kUserDefined;
    parts.added.push_back(std::move(added));
  }

  parts.bos_id = r.TokenId("tokenizer.ggml.bos_token_id", n);
  parts.eos_id = r.TokenId("tokenizer.ggml.eos_token_id", n);
  parts.add_bos = r.Bool("tokenizer.ggml.add_bos_token").value_or(spm) && parts.bos_id >= 0;
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const int32_t id = r.TokenId(key, n);
    if (id >= 0 && id != parts.eos_id) parts.stop_ids.push_back(id);
  }
  for (const int32_t id : tokenizer_internal::KnownStopIds(parts.tokens, parts.types, parts.eos_id)) {
    if (std::find(parts.stop_ids.begin(), parts.stop_ids.end(), id) == parts.stop_ids.end()) {
      parts.stop_ids.push_back(id);
    }
  }
  parts.chat_template = r.String("tokenizer.chat_template").value_or("");
  return tokenizer_internal::BuildTokenizer(std::move(parts));
}

}  // namespace tokenlora
