#include "tokenizer/unicode.h"

namespace tokenlora::tokenizer_internal {

size_t DecodeUtf8(std::string_view s, size_t pos, uint32_t* cp) {
  const size_t n = s.size() - pos;
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  const auto cont = [&](size_t i) { return i < n && (byte(i) & 0xC0) == 0x80; };
  const uint8_t b0 = byte(0);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  if (b0 < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (b0 < 0xE0) {
    if (!cont(1)) return 0;
    *cp = ((b0 & 0x1Fu) << 6) | (byte(1) & 0x3Fu);
    return 2;
  }
  if (b0 < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    const uint32_t c = ((b0 & 0x0Fu) << 12) | ((byte(1) & 0x3Fu) << 6) | (byte(2) & 0x3Fu);
    if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;  // overlong or surrogate
    *cp = c;
    return 3;
  }
  if (b0 < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const uint32_t c =
        ((b0 & 0x07u) << 18) | ((byte(1) & 0x3Fu) << 12) | ((byte(2) & 0x3Fu) << 6) | (byte(3) & 0x3Fu);
    if (c < 0x10000 || c > 0x10FFFF) return 0;
    *cp = c;
    return 4;
  }
  return 0;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t IncompleteUtf8Tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end
  // and whose bytes so far are a valid prefix (checked by completing it with
  // the smallest continuation bytes that could follow).
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const uint8_t b = static_cast<uint8_t>(s[s.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (need <= back) return 0;  // complete (or ASCII): nothing pending
    std::string probe(s.substr(s.size() - back));
    // The continuation bytes that make the prefix valid if any can: 0x80 is
    // too small after E0/F0 (overlong), 0xBF too large after ED/F4.
    for (const char fill : {'\x80', '\x90', '\xA0', '\xBF'}) {
      std::string candidate = probe;
      candidate.append(need - back, fill);
      uint32_t cp;
      if (DecodeUtf8(candidate, 0, &cp) == need) return back;
    }
    return 0;
  }
  return 0;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      AppendUtf8(kReplacementChar, &out);
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool IsUnicodeWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

bool IsPythonSpace(uint32_t cp) { return IsUnicodeWhiteSpace(cp) || (cp >= 0x1C && cp <= 0x1F); }

namespace {

// https://github.com/openai/gpt-2/blob/master/src/encoder.py bytes_to_unicode().
std::array<uint32_t, 256> MakeByteToChar() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    map[b] = printable ? b : next++;
  }
  return map;
}

// Inverse of the map over U+0000..U+01FF; -1 for characters outside the alphabet.
std::array<int16_t, 512> MakeCharToByte() {
  std::array<int16_t, 512> inv;
  inv.fill(-1);
  const auto& map = ByteToChar();
  for (int b = 0; b < 256; ++b) inv[map[b]] = static_cast<int16_t>(b);
  return inv;
}

}  // namespace

const std::array<uint32_t, 256>& ByteToChar() {
  static const std::array<uint32_t, 256> map = MakeByteToChar();
  return map;
}

std::optional<std::string> ByteLevelDecode(std::string_view text) {
  static const std::array<int16_t, 512> inv = MakeCharToByte();
  std::string out;
  out.reserve(text.size());
  uint32_t cp;
  for (size_t i = 0; i < text.size();) {
    const size_t n = DecodeUtf8(text, i, &cp);
    if (n == 0 || cp >= inv.size() || inv[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(inv[cp]));
    i += n;
  }
  return out;
}

std::string ByteLevelEncode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) AppendUtf8(ByteToChar()[static_cast<uint8_t>(c)], &out);
  return out;
}

std::optional<uint8_t> ParseBytePiece(std::string_view piece) {
  // Exactly "<0xHH>" with upper-case hex digits, as SentencePiece writes them.
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  int value = 0;
  for (const char c : piece.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else {
      return std::nullopt;
    }
  }
  return static_cast<uint8_t>(value);
}

}  // namespace tokenlora::tokenizer_internal
