// StreamingDecoder: token ids to text, one id at a time, never cutting a
// UTF-8 character in half (a CJK character or an emoji often spans several
// byte-level tokens).
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tokenlora {

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::Push(int32_t id) {
  if (skip_special_ && tokenizer_.IsSpecial(id)) return "";
  std::string bytes = tokenizer_.TokenBytes(id);
  if (bytes.empty()) return "";
  // Same leading-space rule as Decode: only for the first bytes of the stream.
  if (first_ && tokenizer_.decode_strips_leading_space() && bytes.front() == ' ') bytes.erase(0, 1);
  first_ = false;
  pending_ += bytes;
  // Emit everything but a tail that may still become a valid character;
  // bytes that can never be valid are replaced now.
  const size_t hold = tokenizer_internal::IncompleteUtf8Tail(pending_);
  std::string out =
      tokenizer_internal::SanitizeUtf8(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamingDecoder::Flush() {
  std::string out = tokenizer_internal::SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace tokenlora
