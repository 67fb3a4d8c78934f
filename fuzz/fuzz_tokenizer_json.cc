// libFuzzer target: ParseTokenizerJson over arbitrary text, then, for what
// loads, encoding and decoding a few awkward strings. Only InputError may
// escape the loader; encoding a loaded tokenizer must not fail at all.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenlora;
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = ParseTokenizerJson(std::string_view(reinterpret_cast<const char*>(data), size),
                             "fuzz/tokenizer.json");
  } catch (const InputError&) {
    return 0;  // the expected outcome for malformed input
  }
  static const std::string kTexts[] = {
      "",
      "Hello world! The capital of France is",
      "  leading spaces\tand\ttabs\nand\r\nnewlines  ",
      "digits 1234567890 and 3.14",
      "ünïcödé 日本語 🙂 \u00a0nbsp",
      "<|im_start|>user\nhi<|im_end|><|endoftext|>",
      std::string("invalid utf-8: \xff\xfe\xc3 end"),
      std::string("nul\0byte", 8),
  };
  for (const std::string& text : kTexts) {
    for (const bool parse_special : {false, true}) {
      const std::vector<int32_t> ids = tok->Encode(text, parse_special);
      for (const int32_t id : ids) {
        if (id < 0 || id >= tok->vocab_size()) __builtin_trap();  // Encode must give valid ids
        (void)tok->TokenBytes(id);
        (void)tok->TokenText(id);
      }
      (void)tok->Decode(ids, /*skip_special=*/false);
      (void)tok->Decode(ids, /*skip_special=*/true);
    }
  }
  (void)tok->TokenBytes(-1);
  (void)tok->TokenBytes(tok->vocab_size());
  return 0;
}
