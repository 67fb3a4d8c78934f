#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora::tokenizer_internal {
namespace {

// PCRE2's \s is \p{Z}, \h and \v, which is Unicode White_Space plus U+180E
// (MONGOLIAN VOWEL SEPARATOR, no longer a space since Unicode 6.3). Oniguruma,
// which Hugging Face tokenizers use, follows White_Space; spell the class out
// so both agree. Inside a character class the ranges go in without brackets.
constexpr std::string_view kSpaceRanges =
    "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Rewrites \s and \S (outside and inside [...]) to the White_Space class.
// \S inside a class cannot be expressed as a range list; it is left alone
// (no tokenizer pattern we know uses it).
std::string RewriteSpaceClasses(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += in_class ? std::string(kSpaceRanges) : "[" + std::string(kSpaceRanges) + "]";
      } else if (next == 'S' && !in_class) {
        out += "[^" + std::string(kSpaceRanges) + "]";
      } else {
        out += c;
        out += next;
      }
      ++i;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

void Regex::CodeDeleter::operator()(void* code) const { pcre2_code_free(static_cast<pcre2_code*>(code)); }

Regex Regex::Compile(std::string_view pattern, const std::string& where) {
  const std::string rewritten = RewriteSpaceClasses(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // MATCH_INVALID_UTF: tokenizer input is untrusted and may hold invalid UTF-8;
  // without it PCRE2 would reject (or, unchecked, misread) such subjects.
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw InputError(where + ": regex " + io_internal::Quote(pattern, 200) +
                     " does not compile: " + reinterpret_cast<const char*>(message));
  }
  // JIT is an optimisation only: if it is unavailable the interpreter runs.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  Regex regex;
  regex.pattern_ = std::string(pattern);
  regex.code_.reset(code);
  return regex;
}

void Regex::ForEachMatch(std::string_view subject,
                         const std::function<void(size_t, size_t)>& on_match) const {
  TL_CHECK(code_ != nullptr);
  const auto* code = static_cast<const pcre2_code*>(code_.get());
  // Per call, so concurrent Encode calls never share match state.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create(1, nullptr), &pcre2_match_data_free);
  TL_CHECK(match != nullptr);
  const auto* data = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t offset = 0;
  while (offset < subject.size()) {
    const int rc = pcre2_match(code, data, subject.size(), offset, 0, match.get(), nullptr);
    // No match, or a resource limit hit on a pathological pattern: the rest of
    // the subject stays unmatched (it is still tokenized, as one piece).
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end > begin) {
      on_match(begin, end);
      offset = end;
    } else {
      // Empty match: step over one character, as find_iter does.
      offset = begin + 1;
      while (offset < subject.size() && (static_cast<uint8_t>(subject[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
}

}  // namespace tokenlora::tokenizer_internal
