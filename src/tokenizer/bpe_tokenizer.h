// The one Tokenizer implementation behind both loaders. A loader (GGUF or
// tokenizer.json) parses its file into TokenizerParts, with every reference
// resolved to ids and every error reported against the file; BuildTokenizer
// then assembles the encode pipeline:
//
//   text ─ added tokens (raw) ─┬─ token ids
//                              └─ plain text ─ normalizer ─ added tokens
//                                 (normalized) ─ pre-tokenizer ─ BPE per piece
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tokenlora::tokenizer_internal {

// llama.cpp's / SentencePiece's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerParts {
  std::string source;  // the file, for messages
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;

  std::vector<std::string> tokens;  // id -> text as stored ("" for ids nobody uses)
  std::vector<TokenType> types;     // id -> type
  std::vector<bool> in_model;       // id -> the BPE model may produce it (else: added token only)

  // Rank merging (tokenizer.json, GGUF gpt2) or score merging (GGUF llama).
  bool score_merging = false;
  BpeMerges merges;
  std::vector<float> scores;  // by id, score merging only

  bool byte_fallback = false;  // characters outside the vocabulary become <0xNN> pieces
  int32_t unk_id = -1;         // else they become this (-1: dropped, as tokenizers does)
  bool fuse_unk = false;       // consecutive unknown characters give one <unk>
  bool ignore_merges = false;  // a piece that is itself in the vocabulary is not merged

  std::vector<AddedToken> added;  // matched in the text before BPE
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  bool decode_strips_leading_space = false;  // SentencePiece's dummy prefix

  int32_t bos_id = -1;
  int32_t eos_id = -1;
  std::vector<int32_t> stop_ids;
  bool add_bos = false;
  std::string chat_template;
};

// Validates `parts` (throws InputError naming parts.source) and builds the tokenizer.
std::unique_ptr<Tokenizer> BuildTokenizer(TokenizerParts parts);

// End-of-generation tokens found by their text, as llama.cpp does for models
// whose metadata names only one EOS: <|im_end|>, <|eot_id|>, <|endoftext|>, ...
std::vector<int32_t> KnownStopIds(const std::vector<std::string>& tokens, const std::vector<TokenType>& types,
                                  int32_t eos_id);

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(TokenizerParts parts);

  TokenizerKind kind() const override { return kind_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  std::vector<int32_t> Encode(std::string_view text, bool parse_special) const override;
  std::string TokenBytes(int32_t id) const override;
  const std::string& TokenText(int32_t id) const override;
  std::optional<int32_t> TokenId(std::string_view token_text) const override;
  bool IsSpecial(int32_t id) const override;

 private:
  // BPE of one pre-tokenized piece, through the cache.
  void EncodePiece(std::string_view piece, std::vector<int32_t>* out) const;
  void EncodePieceUncached(std::string_view piece, std::vector<int32_t>* out) const;
  // Plain text between added tokens: normalizer, normalized added tokens, pre-tokenizer, BPE.
  void EncodeText(std::string_view text, bool at_text_start, bool parse_special,
                  std::vector<int32_t>* out) const;

  TokenizerKind kind_;
  std::vector<std::string> tokens_;
  std::vector<std::string> bytes_;  // id -> decoded bytes (TokenBytes)
  std::vector<TokenType> types_;
  std::vector<bool> special_;
  TokenMap ids_;  // text -> id over the whole vocabulary (TokenId)

  // Model lookups. Byte-level: model_vocab_ is keyed by the token's raw bytes
  // and byte_ids_[b] is the token of byte b's character. Otherwise keyed by
  // text and byte_ids_[b] is the <0xNN> piece.
  TokenMap model_vocab_;
  std::array<int32_t, 256> byte_ids_;
  bool byte_level_;
  bool score_merging_;
  BpeMerges merges_;
  SpmMerger spm_;
  bool byte_fallback_;
  int32_t unk_id_;
  bool fuse_unk_;
  bool ignore_merges_;

  AddedTokenMatcher raw_added_;         // matched in the input text
  AddedTokenMatcher normalized_added_;  // matched after the normalizer
  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;

  // Words repeat a lot in natural text; their ids are cached. Bounded, and
  // cleared when full (a cheap stand-in for LRU that keeps the hot words).
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedPiece = 256;  // bytes
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringViewHash, std::equal_to<>> cache_;
};

}  // namespace tokenlora::tokenizer_internal
