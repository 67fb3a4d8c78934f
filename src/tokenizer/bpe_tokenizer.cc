#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tokenlora::tokenizer_internal {
namespace {

void CheckId(const TokenizerParts& parts, int32_t id, const std::string& what) {
  if (id < -1 || id >= static_cast<int32_t>(parts.tokens.size())) {
    throw InputError(parts.source + ": " + what + " is token id " + std::to_string(id) +
                     ", outside the vocabulary of " + std::to_string(parts.tokens.size()) + " tokens");
  }
}

void Validate(const TokenizerParts& parts) {
  const size_t n = parts.tokens.size();
  if (n == 0) throw InputError(parts.source + ": the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) throw InputError(parts.source + ": the vocabulary is too large");
  TL_CHECK(parts.types.size() == n && parts.in_model.size() == n);
  TL_CHECK(!parts.score_merging || parts.scores.size() == n);
  CheckId(parts, parts.bos_id, "the BOS token");
  CheckId(parts, parts.eos_id, "the EOS token");
  CheckId(parts, parts.unk_id, "the unknown token");
  for (const int32_t id : parts.stop_ids) CheckId(parts, id, "an end-of-generation token");
  for (const AddedToken& t : parts.added) CheckId(parts, t.id, "added token '" + t.content + "'");
}

// Raw and normalized added tokens go to separate matchers.
AddedTokenMatcher MakeMatcher(const std::vector<AddedToken>& added, bool normalized,
                              const Normalizer& normalizer) {
  std::vector<AddedToken> tokens;
  std::vector<std::string> patterns;
  for (const AddedToken& t : added) {
    if (t.normalized != normalized) continue;
    tokens.push_back(t);
    // tokenizers normalizes the content of normalized tokens the same way as the text.
    patterns.push_back(normalized && !normalizer.empty() ? normalizer.Apply(t.content) : t.content);
  }
  return AddedTokenMatcher(std::move(tokens), std::move(patterns));
}

}  // namespace

std::unique_ptr<Tokenizer> BuildTokenizer(TokenizerParts parts) {
  Validate(parts);
  return std::make_unique<BpeTokenizer>(std::move(parts));
}

std::vector<int32_t> KnownStopIds(const std::vector<std::string>& tokens, const std::vector<TokenType>& types,
                                  int32_t eos_id) {
  static const char* const kEndOfTurn[] = {"<|im_end|>",      "<|eot_id|>", "<|eom_id|>",    "<|endoftext|>",
                                           "<|end_of_text|>", "<|end|>",    "<end_of_turn>", "<EOT>"};
  std::vector<int32_t> out;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] == TokenType::kNormal || types[id] == TokenType::kByte) continue;
    if (static_cast<int32_t>(id) == eos_id) continue;
    for (const char* text : kEndOfTurn) {
      if (tokens[id] == text) out.push_back(static_cast<int32_t>(id));
    }
  }
  return out;
}

BpeTokenizer::BpeTokenizer(TokenizerParts parts)
    : kind_(parts.kind),
      tokens_(std::move(parts.tokens)),
      types_(std::move(parts.types)),
      byte_level_(parts.kind == TokenizerKind::kByteLevelBpe),
      score_merging_(parts.score_merging),
      merges_(std::move(parts.merges)),
      byte_fallback_(parts.byte_fallback),
      unk_id_(parts.unk_id),
      fuse_unk_(parts.fuse_unk),
      ignore_merges_(parts.ignore_merges),
      normalizer_(std::move(parts.normalizer)),
      pre_tokenizer_(std::move(parts.pre_tokenizer)) {
  const size_t n = tokens_.size();
  bos_id_ = parts.bos_id;
  eos_id_ = parts.eos_id;
  stop_ids_ = std::move(parts.stop_ids);
  add_bos_ = parts.add_bos;
  chat_template_ = std::move(parts.chat_template);
  decode_strips_leading_space_ = parts.decode_strips_leading_space;

  special_.assign(n, false);
  for (size_t id = 0; id < n; ++id) {
    special_[id] = types_[id] == TokenType::kControl || types_[id] == TokenType::kUnknown;
  }
  for (const AddedToken& t : parts.added) special_[t.id] = special_[t.id] || t.special;

  ids_.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    if (!tokens_[id].empty()) ids_.emplace(tokens_[id], static_cast<int32_t>(id));  // first id wins
  }

  // Model lookups and the bytes each token decodes to.
  byte_ids_.fill(-1);
  bytes_.resize(n);
  model_vocab_.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    const std::string& text = tokens_[id];
    const TokenType type = types_[id];
    const bool plain = type == TokenType::kNormal || type == TokenType::kByte || type == TokenType::kUnused;
    if (byte_level_) {
      // Added and special tokens are stored as plain text ("<|im_end|>"); the
      // rest in the byte-level alphabet. The model looks words up by raw bytes.
      const std::optional<std::string> raw = ByteLevelDecode(text);
      bytes_[id] = plain && raw ? *raw : text;
      if (parts.in_model[id] && raw) {
        model_vocab_.emplace(*raw, static_cast<int32_t>(id));
        if (raw->size() == 1 && byte_ids_[static_cast<uint8_t>((*raw)[0])] < 0) {
          byte_ids_[static_cast<uint8_t>((*raw)[0])] = static_cast<int32_t>(id);
        }
      }
    } else {
      const std::optional<uint8_t> byte = ParseBytePiece(text);
      if (type == TokenType::kByte && byte) {
        bytes_[id] = std::string(1, static_cast<char>(*byte));
      } else if (type == TokenType::kControl || type == TokenType::kUnknown) {
        bytes_[id] = text;
      } else {
        std::string decoded;  // "▁" (U+2581) is SentencePiece's space
        for (size_t pos = 0; pos < text.size();) {
          if (text.compare(pos, 3, "\xE2\x96\x81") == 0) {
            decoded += ' ';
            pos += 3;
          } else {
            decoded += text[pos++];
          }
        }
        bytes_[id] = std::move(decoded);
      }
      if (parts.in_model[id]) {
        model_vocab_.emplace(text, static_cast<int32_t>(id));
        if (byte && (byte_fallback_ || score_merging_) && byte_ids_[*byte] < 0) {
          byte_ids_[*byte] = static_cast<int32_t>(id);
        }
      }
    }
  }

  if (score_merging_) {
    // SentencePiece merges only into normal, user-defined and unused pieces.
    TokenMap pieces;
    std::vector<bool> unused(n, false);
    for (size_t id = 0; id < n; ++id) {
      const TokenType type = types_[id];
      if (type == TokenType::kNormal || type == TokenType::kUserDefined || type == TokenType::kUnused) {
        pieces.emplace(tokens_[id], static_cast<int32_t>(id));
      }
      unused[id] = type == TokenType::kUnused;
    }
    std::vector<int32_t> byte_ids(byte_ids_.begin(), byte_ids_.end());
    spm_ = SpmMerger(std::move(pieces), std::move(parts.scores), std::move(unused), std::move(byte_ids),
                     unk_id_);
  }

  raw_added_ = MakeMatcher(parts.added, /*normalized=*/false, normalizer_);
  normalized_added_ = MakeMatcher(parts.added, /*normalized=*/true, normalizer_);
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<AddedTokenMatcher::Segment> segments;
  raw_added_.Split(text, parse_special, &segments);
  for (const auto& seg : segments) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
    } else {
      EncodeText(text.substr(seg.begin, seg.end - seg.begin), seg.begin == 0, parse_special, &out);
    }
  }
  return out;
}

void BpeTokenizer::EncodeText(std::string_view text, bool at_text_start, bool parse_special,
                              std::vector<int32_t>* out) const {
  std::string normalized;
  if (!normalizer_.empty()) {
    normalized = normalizer_.Apply(text);
    text = normalized;
  }
  Pieces pieces;
  if (normalized_added_.empty()) {
    pre_tokenizer_.Apply(text, at_text_start, &pieces);
    for (const std::string_view piece : pieces.views) EncodePiece(piece, out);
    return;
  }
  std::vector<AddedTokenMatcher::Segment> segments;
  normalized_added_.Split(text, parse_special, &segments);
  for (const auto& seg : segments) {
    if (seg.id >= 0) {
      out->push_back(seg.id);
      continue;
    }
    pieces.clear();
    pre_tokenizer_.Apply(text.substr(seg.begin, seg.end - seg.begin), at_text_start && seg.begin == 0,
                         &pieces);
    for (const std::string_view piece : pieces.views) EncodePiece(piece, out);
  }
}

void BpeTokenizer::EncodePiece(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.size() > kMaxCachedPiece) {
    EncodePieceUncached(piece, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  EncodePieceUncached(piece, &ids);
  out->insert(out->end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();
  cache_.emplace(std::string(piece), std::move(ids));
}

void BpeTokenizer::EncodePieceUncached(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (score_merging_) {
    spm_.Encode(piece, out);
    return;
  }
  if (ignore_merges_) {
    const auto it = model_vocab_.find(piece);
    if (it != model_vocab_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  // Initial symbols: one per byte (byte-level) or per character. A character
  // outside the vocabulary becomes its <0xNN> bytes (byte_fallback), else
  // <unk> (consecutive ones fused with fuse_unk), else nothing, as tokenizers does.
  std::vector<int32_t> symbols;
  symbols.reserve(piece.size());
  bool pending_unk = false;
  const auto flush_unk = [&] {
    if (pending_unk) symbols.push_back(unk_id_);
    pending_unk = false;
  };
  const auto unknown = [&] {
    if (unk_id_ < 0) return;
    if (pending_unk && !fuse_unk_) symbols.push_back(unk_id_);
    pending_unk = true;
  };
  for (size_t pos = 0; pos < piece.size();) {
    const size_t n = byte_level_ ? 1 : CharLength(piece, pos);
    const std::string_view ch = piece.substr(pos, n);
    pos += n;
    int32_t id = -1;
    if (byte_level_) {
      id = byte_ids_[static_cast<uint8_t>(ch[0])];
    } else if (const auto it = model_vocab_.find(ch); it != model_vocab_.end()) {
      id = it->second;
    }
    if (id >= 0) {
      flush_unk();
      symbols.push_back(id);
      continue;
    }
    if (byte_fallback_ && !byte_level_ &&
        std::all_of(ch.begin(), ch.end(), [&](char c) { return byte_ids_[static_cast<uint8_t>(c)] >= 0; })) {
      for (const char c : ch) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      continue;
    }
    unknown();
  }
  flush_unk();
  merges_.Apply(&symbols);
  out->insert(out->end(), symbols.begin(), symbols.end());
}

std::string BpeTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return bytes_[id];
}

const std::string& BpeTokenizer::TokenText(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= vocab_size()) return kEmpty;
  return tokens_[id];
}

std::optional<int32_t> BpeTokenizer::TokenId(std::string_view token_text) const {
  const auto it = ids_.find(token_text);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

bool BpeTokenizer::IsSpecial(int32_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }

}  // namespace tokenlora::tokenizer_internal
