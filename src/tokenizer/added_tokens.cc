#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tokenlora::tokenizer_internal {
namespace {

// Start of the character that ends at `pos` (> 0); an invalid byte counts as
// a character of its own.
size_t PreviousCharStart(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && pos - start < 4 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  uint32_t cp;
  return DecodeUtf8(text, start, &cp) == pos - start ? start : pos - 1;
}

// Start of the whitespace run that ends at `end`, not before `begin` (Rust regex \s*$).
size_t WhitespaceRunStart(std::string_view text, size_t begin, size_t end) {
  size_t pos = end;
  while (pos > begin) {
    const size_t start = PreviousCharStart(text, pos);
    uint32_t cp;
    if (start < begin || DecodeUtf8(text, start, &cp) != pos - start || !IsUnicodeWhiteSpace(cp)) break;
    pos = start;
  }
  return pos;
}

// End of the whitespace run that starts at `begin` (Rust regex ^\s*).
size_t WhitespaceRunEnd(std::string_view text, size_t begin) {
  size_t pos = begin;
  uint32_t cp;
  while (pos < text.size()) {
    const size_t n = DecodeUtf8(text, pos, &cp);
    if (n == 0 || !IsUnicodeWhiteSpace(cp)) break;
    pos += n;
  }
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
  TL_CHECK(tokens_.size() == patterns_.size());
  for (size_t i = 0; i < patterns_.size(); ++i) {
    if (patterns_[i].empty()) continue;  // tokenizers ignores empty added tokens
    by_first_byte_[static_cast<uint8_t>(patterns_[i][0])].push_back(static_cast<int>(i));
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(),
                     [&](int a, int b) { return patterns_[a].size() > patterns_[b].size(); });
  }
  const bool any_single_word =
      std::any_of(tokens_.begin(), tokens_.end(), [](const AddedToken& t) { return t.single_word; });
  if (any_single_word) {
    word_char_ =
        Regex::Compile(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])", "added token word class");
  }
}

int AddedTokenMatcher::LongestMatchAt(std::string_view text, size_t pos) const {
  for (const int index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    const std::string& pattern = patterns_[index];
    if (text.compare(pos, pattern.size(), pattern) == 0) return index;
  }
  return -1;
}

void AddedTokenMatcher::Split(std::string_view text, bool parse_special, std::vector<Segment>* out) const {
  const auto is_word_char_at = [&](size_t begin, size_t end) {
    bool found = false;
    word_char_.ForEachMatch(text.substr(begin, end - begin), [&](size_t, size_t) { found = true; });
    return found;
  };
  size_t text_start = 0;  // start of the pending plain-text segment
  size_t pos = 0;
  while (pos < text.size()) {
    const int index = LongestMatchAt(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = pos;
    size_t stop = pos + patterns_[index].size();
    // A match that is not used stays plain text; the search resumes after it
    // (leftmost-longest matches never overlap).
    pos = stop;
    if (token.special && !parse_special) continue;
    if (token.single_word) {
      // Neither the character before nor the one after may be a word character.
      const bool word_before = start > 0 && is_word_char_at(PreviousCharStart(text, start), start);
      const bool word_after = stop < text.size() && is_word_char_at(stop, stop + CharLength(text, stop));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) start = std::max(WhitespaceRunStart(text, text_start, start), text_start);
    if (token.rstrip) stop = WhitespaceRunEnd(text, stop);
    if (start > text_start) out->push_back({text_start, start, -1});
    out->push_back({start, stop, token.id});
    text_start = stop;
    pos = std::max(pos, stop);
  }
  if (text_start < text.size() || text.empty()) out->push_back({text_start, text.size(), -1});
}

}  // namespace tokenlora::tokenizer_internal
