// The parts of Tokenizer shared by every implementation.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace tokenlora {

std::vector<int32_t> Tokenizer::EncodeWithBos(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos_ && bos_id_ >= 0) ids.push_back(bos_id_);
  const std::vector<int32_t> body = Encode(text, parse_special);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  for (const int32_t id : ids) {
    if (skip_special && IsSpecial(id)) continue;
    out += TokenBytes(id);
  }
  // As tokenizers' Strip decoder after Fuse: one leading space of the whole text.
  if (decode_strips_leading_space_ && !out.empty() && out.front() == ' ') out.erase(0, 1);
  return out;
}

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  if (id < 0) return false;
  return id == eos_id_ || std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
}

std::string ToValidUtf8(std::string_view text, size_t* first_bad) {
  size_t pos = 0;
  uint32_t cp = 0;
  for (size_t n; pos < text.size() && (n = tokenizer_internal::DecodeUtf8(text, pos, &cp)) > 0;) pos += n;
  if (first_bad != nullptr) *first_bad = pos < text.size() ? pos : std::string::npos;
  return pos < text.size() ? tokenizer_internal::SanitizeUtf8(text) : std::string(text);
}

}  // namespace tokenlora
