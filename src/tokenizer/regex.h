// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available)
// for pre-tokenizer splits. The patterns of GPT-2, Llama 3 and Qwen2 rely on
// \p{L}, \p{N} and (?!\S), which std::regex lacks.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tokenlora::tokenizer_internal {

class Regex {
 public:
  // Throws InputError naming `where` (file and field) when `pattern` does not compile.
  static Regex Compile(std::string_view pattern, const std::string& where);

  Regex() = default;
  Regex(Regex&&) noexcept = default;
  Regex& operator=(Regex&&) noexcept = default;

  // Calls on_match(begin, end) for each non-overlapping, non-empty match in
  // `subject`, left to right, as Oniguruma's find_iter does. Lookarounds see
  // only `subject`. Invalid UTF-8 bytes never match a character class, so they
  // are left between matches. Thread-safe.
  void ForEachMatch(std::string_view subject, const std::function<void(size_t, size_t)>& on_match) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct CodeDeleter {
    void operator()(void* code) const;
  };
  std::string pattern_;
  std::unique_ptr<void, CodeDeleter> code_;  // pcre2_code_8*
};

}  // namespace tokenlora::tokenizer_internal
