#define PCRE2_CODE_UNIT_WIDTH 8
#include "lora/pattern.h"

#include <pcre2.h>

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora::lora_internal {
namespace {

using MatchData = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;

// Matches `s` at its start; ENDANCHORED as well for a full match. Load-time
// only, so the per-call match data is fine.
MatchData Match(const void* code, std::string_view s, uint32_t options) {
  MatchData md(pcre2_match_data_create_from_pattern(static_cast<const pcre2_code*>(code), nullptr),
               &pcre2_match_data_free);
  TL_CHECK(md != nullptr);
  const int rc = pcre2_match(static_cast<const pcre2_code*>(code), reinterpret_cast<PCRE2_SPTR>(s.data()),
                             s.size(), 0, PCRE2_ANCHORED | options, md.get(), nullptr);
  if (rc < 0) md.reset();
  return md;
}

}  // namespace

Pattern Pattern::Compile(const std::string& pattern, const std::string& where) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF,
                                   &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw InputError(where + " " + io_internal::Quote(pattern, 200) + " is not a valid regular expression (" +
                     reinterpret_cast<const char*>(message) + " at offset " + std::to_string(error_offset) +
                     ")");
  }
  Pattern p;
  p.text_ = pattern;
  p.code_ = std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
  return p;
}

bool Pattern::FullMatch(std::string_view s) const {
  return Match(code_.get(), s, PCRE2_ENDANCHORED) != nullptr;
}

std::optional<std::string> Pattern::MatchGroup(std::string_view s, const char* group) const {
  const MatchData md = Match(code_.get(), s, 0);
  if (md == nullptr) return std::nullopt;
  PCRE2_SIZE len = 0;
  if (pcre2_substring_length_byname(md.get(), reinterpret_cast<PCRE2_SPTR>(group), &len) != 0)
    return std::nullopt;
  PCRE2_SIZE size = len + 1;
  std::string buf(size, '\0');
  if (pcre2_substring_copy_byname(md.get(), reinterpret_cast<PCRE2_SPTR>(group),
                                  reinterpret_cast<PCRE2_UCHAR*>(buf.data()), &size) != 0) {
    return std::nullopt;
  }
  buf.resize(size);
  return buf;
}

}  // namespace tokenlora::lora_internal
