// Regular expressions of PEFT adapter configs (target_modules,
// exclude_modules, layers_pattern, rank_pattern, alpha_pattern), which PEFT
// evaluates with Python's `re`. PCRE2 reads that syntax, (?P<name>...)
// included; std::regex does not (and GCC 12's <regex> trips
// -Wmaybe-uninitialized in the sanitizer build, which -Werror makes fatal).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tokenlora::lora_internal {

class Pattern {
 public:
  // Throws InputError naming `where` when `pattern` does not compile.
  static Pattern Compile(const std::string& pattern, const std::string& where);

  // Python re.fullmatch(pattern, s).
  bool FullMatch(std::string_view s) const;
  // Python re.match(pattern, s) (anchored at the start only) and the text of
  // the named group `group`, or nullopt when there is no match.
  std::optional<std::string> MatchGroup(std::string_view s, const char* group) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::shared_ptr<void> code_;  // pcre2_code_8*; shared: configs are copied into closures
};

}  // namespace tokenlora::lora_internal
