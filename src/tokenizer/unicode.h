// UTF-8 helpers and the GPT-2 byte <-> character map used by byte-level BPE.
// Tokenizer input is untrusted: every function here accepts any byte string,
// and an invalid byte is treated as a one-byte "character" of its own.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokenlora::tokenizer_internal {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Length of the valid UTF-8 sequence starting at s[pos], or 0 when the bytes
// there are not a complete, valid sequence (overlong forms, surrogates and
// code points above U+10FFFF are invalid). Sets *cp when valid.
size_t DecodeUtf8(std::string_view s, size_t pos, uint32_t* cp);

// Bytes of the "character" at s[pos]: a valid sequence, or 1 for an invalid byte.
inline size_t CharLength(std::string_view s, size_t pos) {
  uint32_t cp;
  const size_t n = DecodeUtf8(s, pos, &cp);
  return n == 0 ? 1 : n;
}

void AppendUtf8(uint32_t cp, std::string* out);
bool IsValidUtf8(std::string_view s);

// Number of bytes at the end of `s` that start a UTF-8 sequence which could
// still become valid when more bytes arrive (0..3). Used by streaming decode.
size_t IncompleteUtf8Tail(std::string_view s);
// `s` with each invalid byte replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// Unicode White_Space (what Rust's and Oniguruma's \s match): the set used by
// tokenizers' lstrip/rstrip of added tokens.
bool IsUnicodeWhiteSpace(uint32_t cp);
// Python's str.isspace(): White_Space plus the ASCII separators U+001C..U+001F.
// Jinja's trim and Python's strip() in chat templates use it.
bool IsPythonSpace(uint32_t cp);

// GPT-2 byte-level alphabet: byte b is written as the character
// ByteToChar()[b] (printable bytes map to themselves, the rest to U+0100+).
const std::array<uint32_t, 256>& ByteToChar();
// Byte-level text back to bytes; nullopt when a character is outside the
// alphabet (then the text is not byte-level encoded, e.g. a raw special token).
std::optional<std::string> ByteLevelDecode(std::string_view text);
// Bytes to byte-level text.
std::string ByteLevelEncode(std::string_view bytes);

// "<0x41>" -> 0x41 for SentencePiece byte pieces; nullopt for anything else.
std::optional<uint8_t> ParseBytePiece(std::string_view piece);

}  // namespace tokenlora::tokenizer_internal
