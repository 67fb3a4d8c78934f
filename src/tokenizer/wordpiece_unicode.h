// Character classes of the BERT normaliser and pre-tokenizer, as Hugging Face
// tokenizers implements them. The tables (wordpiece_unicode.cc) are generated
// by scripts/make_golden_router.py from the library itself.
#pragma once

#include <cstdint>
#include <span>

namespace tokenlora::tokenizer_internal {

struct CodeRange {
  uint32_t first;
  uint32_t last;  // inclusive
};

// One code point and what strip_accents + lowercase turn it into.
struct FoldMapping {
  uint32_t cp;
  uint32_t n;  // 1..3 code points in `out`
  uint32_t out[3];
};

// Every table is sorted and non-overlapping.
struct WordPieceUnicodeTables {
  std::span<const CodeRange> control;       // clean_text removes
  std::span<const CodeRange> clean_space;   // clean_text turns into ' '
  std::span<const CodeRange> chinese;       // handle_chinese_chars pads with spaces
  std::span<const CodeRange> fold_removed;  // strip_accents removes (non-spacing marks)
  std::span<const CodeRange> punctuation;   // the pre-tokenizer isolates
  std::span<const CodeRange> whitespace;    // the pre-tokenizer splits on
  std::span<const FoldMapping> fold;        // strip_accents + lowercase, Hangul excepted
  const char* source;                       // "tokenizers X.Y.Z"
};

const WordPieceUnicodeTables& GetWordPieceUnicodeTables();

}  // namespace tokenlora::tokenizer_internal
