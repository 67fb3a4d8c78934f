// Added tokens (special tokens such as "<|im_start|>" and user-defined ones)
// are found in the text before any other processing and never go through the
// BPE model. Matching follows Hugging Face tokenizers' AddedVocabulary:
// leftmost-longest, with the lstrip/rstrip/single_word options.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tokenlora::tokenizer_internal {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;      // skipped by Decode(skip_special); only matched with parse_special
  bool lstrip = false;       // a match swallows the whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // matches only when not inside a word
  bool normalized = false;   // matched in normalized text instead of the raw input
};

class AddedTokenMatcher {
 public:
  // One span of the text: an added token (id >= 0) or plain text (id == -1).
  struct Segment {
    size_t begin;
    size_t end;
    int32_t id;
  };

  // `patterns[i]` is what to look for to find `tokens[i]` (its content, or
  // its normalized content for normalized tokens).
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);
  AddedTokenMatcher() = default;

  bool empty() const { return tokens_.empty(); }
  // Splits `text` into segments covering it (an empty text gives one empty
  // text segment). Without `parse_special`, special tokens stay plain text, as
  // with tokenizers' encode_special_tokens; user-defined ones still match.
  void Split(std::string_view text, bool parse_special, std::vector<Segment>* out) const;

 private:
  // The longest pattern matching at `pos`, or -1.
  int LongestMatchAt(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  // Token indices by first byte of their pattern, longest pattern first.
  std::array<std::vector<int>, 256> by_first_byte_;
  Regex word_char_;  // \w as Rust's regex defines it, for single_word
};

}  // namespace tokenlora::tokenizer_internal
