// Normalizers and pre-tokenizers: the text transforms that run, in Hugging
// Face tokenizers' order, on each piece of text between added tokens before the
// BPE model sees it. Only the steps real BPE tokenizers use are here; loaders
// reject the others by name.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tokenlora::tokenizer_internal {

// Normalizer sequence (tokenizers' Prepend and Replace): whole-string edits.
class Normalizer {
 public:
  // Prepends `prefix` to non-empty text.
  void AddPrepend(std::string prefix);
  // Replaces every occurrence of the literal `from` (no-op when empty).
  void AddReplace(std::string from, std::string to);
  // Replaces every match of `regex`.
  void AddReplaceRegex(Regex regex, std::string to);

  bool empty() const { return steps_.empty(); }
  std::string Apply(std::string_view text) const;

 private:
  enum class Kind { kPrepend, kReplace, kReplaceRegex };
  struct Step {
    Kind kind;
    std::string pattern;  // prefix (kPrepend) or literal to find (kReplace)
    std::string content;  // replacement
    Regex regex;          // kReplaceRegex
  };
  std::vector<Step> steps_;
};

// How a split keeps the delimiters it finds (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
// When Metaspace prepends its replacement character.
enum class PrependScheme { kAlways, kFirst, kNever };

// Pieces produced by a pre-tokenizer: views into the input text, or into
// `storage` for pieces a step rewrote (prefix space, metaspace).
struct Pieces {
  std::vector<std::string_view> views;
  std::deque<std::string> storage;  // deque: growing it never moves earlier strings
  void clear() {
    views.clear();
    storage.clear();
  }
};

// The GPT-2 ByteLevel split pattern.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class PreTokenizer {
 public:
  // tokenizers' Split: pieces around (or, with `invert`, made of) matches.
  void AddSplit(Regex regex, SplitBehavior behavior, bool invert);
  void AddLiteralSplit(std::string literal, SplitBehavior behavior, bool invert);
  // Digits: each numeric character its own piece, or runs of them.
  void AddDigits(bool individual_digits, const std::string& where);
  // ByteLevel: optional leading space, then (use_regex) the GPT-2 split. The
  // byte-to-character mapping itself happens in the model, on raw bytes.
  void AddByteLevel(bool add_prefix_space, bool use_regex, const std::string& where);
  // Metaspace: spaces become `replacement`, which is prepended per `scheme`;
  // with `split`, pieces start at each replacement character.
  void AddMetaspace(std::string replacement, PrependScheme scheme, bool split);

  bool empty() const { return steps_.empty(); }
  // Splits `text`. `at_text_start`: it begins at offset 0 of the caller's
  // input (Metaspace's "first" scheme prepends only there). Appends to `out`.
  void Apply(std::string_view text, bool at_text_start, Pieces* out) const;

 private:
  enum class Kind { kSplit, kLiteralSplit, kPrefixSpace, kMetaspace };
  struct Step {
    Kind kind;
    Regex regex;          // kSplit
    std::string literal;  // kLiteralSplit; replacement for kMetaspace
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    PrependScheme scheme = PrependScheme::kAlways;
    bool split = false;  // kMetaspace
  };
  struct Piece {
    std::string_view text;
    bool at_text_start;
  };
  void ApplyStep(const Step& step, const Piece& piece, Pieces* pieces, std::vector<Piece>* out) const;

  std::vector<Step> steps_;
};

}  // namespace tokenlora::tokenizer_internal
