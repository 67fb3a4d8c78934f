// WordPiece tokenizer of BERT-style models (the router's MiniLM embedder).
// Ids match Hugging Face tokenizers (BertNormalizer, BertPreTokenizer,
// WordPiece, [CLS] ... [SEP]): tests/router compares them on 2,000+ strings.
//
// Pipeline, per character of the input:
//   clean_text            drop NUL, U+FFFD, controls; whitespace -> ' '
//   handle_chinese_chars  ' ' around CJK ideographs
//   strip_accents+lower   NFD, drop non-spacing marks, lower-case
//   pre-tokenizer         split on whitespace; punctuation becomes its own word
//   WordPiece             greedy longest match, "##" continuations; a word
//                         longer than max_input_chars_per_word or with no
//                         match becomes [UNK]
// Special tokens written in the text ("[MASK]") are matched first, on the raw
// text, as tokenizers does. Invalid UTF-8 bytes count as U+FFFD, which
// clean_text drops.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tokenlora {

class GgufFile;

namespace tokenizer_internal {
class AddedTokenMatcher;
struct AddedToken;
}  // namespace tokenizer_internal

struct WordPieceOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  // Uncased models strip accents and lower-case; cased ones do neither. The
  // two mixed settings are refused at load (their tables are not generated).
  bool lowercase = true;
  bool strip_accents = true;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  int max_input_chars_per_word = 100;
};

class WordPieceTokenizer {
 public:
  // From a tokenizer.json (model WordPiece, normalizer BertNormalizer,
  // pre-tokenizer BertPreTokenizer, a [CLS] $A [SEP] post-processor). Its
  // truncation and padding settings are ignored: the embedder truncates to
  // max_seq_length. Throws InputError naming the file and field.
  static WordPieceTokenizer LoadJson(const std::string& path);
  static WordPieceTokenizer ParseJson(std::string_view json_text, const std::string& name);
  // From vocab.txt (token per line, id = line number); [CLS], [SEP], [UNK],
  // [PAD] and [MASK] must be in it.
  static WordPieceTokenizer LoadVocabTxt(const std::string& path, const WordPieceOptions& options);
  // From GGUF metadata of llama.cpp's BERT converter (tokenizer.ggml.model
  // "bert"): its "phantom space" vocabulary ("▁word" starts a word, a bare
  // piece continues one, "[X]" is special) is turned back into WordPiece's.
  // Uncased, as llama.cpp's WPM tokenizer always is. Control tokens
  // (token_type 3) are matched in the text like [MASK] in tokenizer.json.
  static WordPieceTokenizer FromGguf(const GgufFile& gguf);
  // tokenizer.json in `dir`, else vocab.txt with tokenizer_config.json's
  // do_lower_case / strip_accents / tokenize_chinese_chars.
  static WordPieceTokenizer LoadDirectory(const std::string& dir);

  WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
  WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;
  ~WordPieceTokenizer();

  // Appends the word pieces of `text` (no [CLS]/[SEP]) to `ids`.
  void EncodeTo(std::string_view text, std::vector<int32_t>* ids) const;
  // [CLS] pieces [SEP] (as tokenizer(text) without truncation), or the bare pieces.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = true) const;
  // An offset p such that, for any `rest`, the pieces of text + rest are the
  // pieces of text[0, p) followed by those of text[p, end) + rest: just past
  // the last character that normalises to whitespace (no word, special token
  // or canonical reordering crosses it). 0 when there is none, or when an
  // added token contains whitespace. Incremental tokenization cuts here.
  size_t StableSplit(std::string_view text) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t pad_id() const { return pad_id_; }
  const std::string& TokenText(int32_t id) const;  // "" when out of range
  std::optional<int32_t> TokenId(std::string_view token) const;
  const WordPieceOptions& options() const { return options_; }
  // Normalised text as BertNormalizer writes it (for tests and `tokenize`).
  std::string Normalize(std::string_view text) const;

 private:
  WordPieceTokenizer();
  void Finish(const std::string& source);
  void SetAddedTokens(std::vector<tokenizer_internal::AddedToken> added);
  void EncodePlain(std::string_view text, std::vector<int32_t>* ids) const;
  void EncodeWord(std::string_view word, int n_chars, std::vector<int32_t>* ids) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  WordPieceOptions options_;
  std::vector<std::string> tokens_;  // [vocab_size]
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  int32_t cls_id_ = -1, sep_id_ = -1, unk_id_ = -1, pad_id_ = -1;
  int max_token_chars_ = 1;  // longest vocabulary entry in characters (prefix excluded)
  std::unique_ptr<tokenizer_internal::AddedTokenMatcher> added_;  // null when none
  bool split_safe_ = true;  // false when an added token contains whitespace
};

}  // namespace tokenlora
