#include "io/json_text.h"

#include <string>

namespace tokenlora {

size_t JsonNestingExceededAt(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is, does not end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

void CheckJsonNesting(std::string_view text) {
  const size_t at = JsonNestingExceededAt(text);
  if (at == std::string_view::npos) return;
  throw nlohmann::json::parse_error::create(
      101, at + 1,
      "arrays and objects nested more than " + std::to_string(kMaxJsonDepth) +
          " deep; no input of this program nests that deep",
      nullptr);
}

}  // namespace tokenlora
