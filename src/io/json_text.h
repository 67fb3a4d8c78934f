// JSON text from files and requests, parsed with a bound on nesting.
//
// nlohmann::json parses iteratively, but copies, compares and dumps a value
// by recursion: a hostile body of 100,000 '[' parses fine and then overflows
// the stack on its first copy (a crash, not an error). Every parse of
// outside text goes through ParseBoundedJson, which refuses nesting deeper
// than kMaxJsonDepth with the same exception type as a syntax error, so each
// caller's handler reports it with its own file, line or field.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

namespace tokenlora {

// Arrays and objects nested deeper than this are refused. Real inputs
// (configs, tokenizers, headers, API requests) nest under 10.
inline constexpr int kMaxJsonDepth = 512;

// 0-based byte offset of the bracket at which `text` first nests more than
// max_depth arrays/objects deep (string contents skipped), or npos. Meant to
// run before a parse: on invalid JSON the parse reports what is wrong.
size_t JsonNestingExceededAt(std::string_view text, int max_depth = kMaxJsonDepth);

// Throws nlohmann::json::parse_error (id 101, naming the byte and the limit)
// when `text` nests deeper than kMaxJsonDepth.
void CheckJsonNesting(std::string_view text);

// Json::parse(text, callback, allow_exceptions) after CheckJsonNesting; with
// allow_exceptions false, too deep text gives a discarded value as a syntax
// error does.
template <class Json = nlohmann::json>
Json ParseBoundedJson(std::string_view text, typename Json::parser_callback_t callback = nullptr,
                      bool allow_exceptions = true) {
  if (JsonNestingExceededAt(text) != std::string_view::npos) {
    if (!allow_exceptions) return Json(Json::value_t::discarded);
    CheckJsonNesting(text);
  }
  return Json::parse(text.begin(), text.end(), std::move(callback), allow_exceptions);
}

}  // namespace tokenlora
