// Behaviour of the loaded tokenizers: known facts about SmolLM2, special
// tokens, BOS/EOS, decoding, round trips, streaming, threads and speed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "core/mapped_file.h"
#include "test_util.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace tokenlora::testing {
namespace {

using tokenizer_internal::IsValidUtf8;

const std::string kSmolTemplateStart = "{% for message in messages %}";

// Both SmolLM2 loaders, whichever are available.
std::vector<std::pair<std::string, const Tokenizer*>> SmolLM2Tokenizers() {
  std::vector<std::pair<std::string, const Tokenizer*>> out;
  if (SmolLM2Json() != nullptr) out.emplace_back("tokenizer.json", SmolLM2Json());
  if (SmolLM2Gguf() != nullptr) out.emplace_back("gguf", SmolLM2Gguf());
  return out;
}

TEST(SmolLM2, KnownFacts) {
  const auto toks = SmolLM2Tokenizers();
  if (toks.empty()) GTEST_SKIP() << "neither the SmolLM2 tokenizer.json nor the default model is present";
  for (const auto& [name, tok] : toks) {
    SCOPED_TRACE(name);
    EXPECT_EQ(tok->kind(), TokenizerKind::kByteLevelBpe);
    EXPECT_EQ(tok->vocab_size(), 49152);
    EXPECT_EQ(tok->Encode("The capital of France is", true),
              (std::vector<int32_t>{504, 3575, 282, 4649, 314}));
    for (int32_t id = 0; id <= 16; ++id) EXPECT_TRUE(tok->IsSpecial(id)) << id;
    EXPECT_FALSE(tok->IsSpecial(17));
    EXPECT_FALSE(tok->IsSpecial(-1));
    EXPECT_FALSE(tok->IsSpecial(49152));
    EXPECT_EQ(tok->TokenId("<|endoftext|>"), 0);
    EXPECT_EQ(tok->TokenId("<|im_start|>"), 1);
    EXPECT_EQ(tok->TokenId("<|im_end|>"), 2);
    EXPECT_EQ(tok->TokenId("no such token"), std::nullopt);
    EXPECT_EQ(tok->TokenText(1), "<|im_start|>");
    EXPECT_EQ(tok->TokenText(-5), "");
    EXPECT_EQ(tok->TokenText(1 << 20), "");
    // Both end-of-text tokens stop generation; <|im_start|> does not.
    EXPECT_TRUE(tok->IsEndOfGeneration(0));
    EXPECT_TRUE(tok->IsEndOfGeneration(2));
    EXPECT_FALSE(tok->IsEndOfGeneration(1));
    EXPECT_FALSE(tok->IsEndOfGeneration(504));
    EXPECT_FALSE(tok->IsEndOfGeneration(-1));
    EXPECT_FALSE(tok->add_bos());
    // Byte-level pieces decode to their bytes; special tokens to their text.
    EXPECT_EQ(tok->TokenBytes(*tok->TokenId("Ġthe")), " the");
    EXPECT_EQ(tok->TokenBytes(*tok->TokenId("Ċ")), "\n");
    EXPECT_EQ(tok->TokenBytes(2), "<|im_end|>");
    EXPECT_EQ(tok->TokenBytes(-1), "");
    EXPECT_EQ(tok->TokenBytes(49152), "");
  }
}

TEST(SmolLM2, GgufMetadata) {
  const Tokenizer* tok = SmolLM2Gguf();
  if (tok == nullptr) GTEST_SKIP() << "default model not fetched";
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->stop_ids(), std::vector<int32_t>{0});
  EXPECT_EQ(tok->chat_template().rfind(kSmolTemplateStart, 0), 0u);
  EXPECT_EQ(tok->EncodeWithBos("Hi", true), tok->Encode("Hi", true));  // add_bos_token is false
}

TEST(SmolLM2, JsonWithAndWithoutConfig) {
  const std::string path = SmolLM2JsonPath();
  if (path.empty()) return testing::MissingData(testing::DataPath("tokenizers/SmolLM2-135M-Instruct/tokenizer.json"));
  const Tokenizer& bare = *SmolLM2Json();
  // No tokenizer_config.json: EOS by convention, every end-of-turn token stops.
  EXPECT_EQ(bare.eos_id(), 0);
  EXPECT_EQ(bare.bos_id(), -1);
  EXPECT_TRUE(bare.IsEndOfGeneration(2));
  EXPECT_EQ(bare.chat_template(), "");

  const std::string config = R"({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"},
    "add_bos_token": false, "chat_template": "{% for message in messages %}<|im_start|>{% endfor %}"})";
  const auto tok = ParseTokenizerJson(ReadTextFile(path), "smollm2", config);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->IsEndOfGeneration(0));
  EXPECT_TRUE(tok->IsEndOfGeneration(2));
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->chat_template(), "{% for message in messages %}<|im_start|>{% endfor %}");
}

TEST(SpecialTokens, ParseSpecialOnAndOff) {
  const auto toks = SmolLM2Tokenizers();
  if (toks.empty()) GTEST_SKIP() << "SmolLM2 tokenizer absent";
  for (const auto& [name, tok] : toks) {
    SCOPED_TRACE(name);
    const std::string text = "<|im_start|>user\nHi<|im_end|>\n";
    const std::vector<int32_t> parsed = tok->Encode(text, true);
    ASSERT_GE(parsed.size(), 4u);
    EXPECT_EQ(parsed.front(), 1);
    EXPECT_EQ(std::count(parsed.begin(), parsed.end(), 2), 1);
    const std::vector<int32_t> plain = tok->Encode(text, false);
    for (const int32_t id : plain) EXPECT_FALSE(tok->IsSpecial(id)) << id;
    EXPECT_EQ(tok->Decode(plain, true), text);  // as text, nothing is special
    EXPECT_EQ(tok->Decode(parsed, false), text);
    EXPECT_EQ(tok->Decode(parsed, true), "user\nHi\n");
  }
}

TEST(SpecialTokens, SentencePiece) {
  for (const Tokenizer* tok : {&SpmJson(), &SpmGguf()}) {
    EXPECT_EQ(tok->kind(), TokenizerKind::kSentencePieceBpe);
    EXPECT_EQ(tok->vocab_size(), 2000);
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), 2);
    EXPECT_TRUE(tok->add_bos());
    EXPECT_TRUE(tok->IsEndOfGeneration(2));
    EXPECT_TRUE(tok->IsSpecial(1));
    EXPECT_FALSE(tok->IsSpecial(3));
    EXPECT_EQ(tok->TokenBytes(*tok->TokenId("<0x0A>")), "\n");
    EXPECT_EQ(tok->TokenBytes(*tok->TokenId("\xE2\x96\x81the")), " the");
    const std::vector<int32_t> ids = tok->EncodeWithBos("Hello world", true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 1);
    EXPECT_EQ(tok->Decode(ids, true), "Hello world");
    EXPECT_EQ(tok->Decode(ids, false), "<s> Hello world");  // as Hugging Face decodes it
    EXPECT_FALSE(tok->chat_template().empty());
  }
}

// Decode(Encode(s)) == s: exact for byte-level BPE; for SentencePiece when
// the text has no "▁" (which it cannot tell from a space).
TEST(RoundTrip, GoldenStrings) {
  const EncodeGolden& golden = LoadEncodeGolden();
  std::vector<std::pair<std::string, const Tokenizer*>> toks = SmolLM2Tokenizers();
  toks.emplace_back("spm json", &SpmJson());
  toks.emplace_back("spm gguf", &SpmGguf());
  for (const auto& [name, tok] : toks) {
    size_t failures = 0;
    for (const GoldenCase& c : golden.cases) {
      if (tok->kind() == TokenizerKind::kSentencePieceBpe &&
          c.text.find("\xE2\x96\x81") != std::string::npos) {
        continue;
      }
      const std::string decoded = tok->Decode(tok->Encode(c.text, false), false);
      if (decoded != c.text && ++failures <= 5) {
        ADD_FAILURE() << name << " " << c.label << ": " << Show(c.text) << " decodes back as "
                      << Show(decoded);
      }
    }
    EXPECT_EQ(failures, 0u) << name;
  }
}

TEST(RoundTrip, InvalidUtf8NeverCrashesAndRoundTrips) {
  std::vector<std::pair<std::string, const Tokenizer*>> toks = SmolLM2Tokenizers();
  toks.emplace_back("spm json", &SpmJson());
  toks.emplace_back("spm gguf", &SpmGguf());
  toks.emplace_back("spm metaspace", &SpmMetaspaceJson());
  std::mt19937 rng(7);
  const std::vector<std::string> fixed = {"\xFF",
                                          "abc\xC3",
                                          "\xE2\x82",
                                          "\xED\xA0\x80 surrogate",
                                          "\xC0\xAF",
                                          "\xF4\x90\x80\x80",
                                          std::string("nul\0byte", 8),
                                          "ok \x80\x80 then"};
  for (const auto& [name, tok] : toks) {
    std::vector<std::string> inputs = fixed;
    for (int i = 0; i < 300; ++i) {
      std::string s(rng() % 40, '\0');
      for (char& c : s) c = static_cast<char>(rng() % 3 == 0 ? rng() % 128 : rng() % 256);
      inputs.push_back(s);
    }
    // Bytes without a token of their own (SmolLM2 lacks 21, e.g. 0xFF) are
    // dropped, as Hugging Face tokenizers drops them.
    std::string missing;
    if (tok->kind() == TokenizerKind::kByteLevelBpe) {
      for (int b = 0; b < 256; ++b) {
        if (!tok->TokenId(tokenizer_internal::ByteLevelEncode(std::string(1, static_cast<char>(b))))) {
          missing += static_cast<char>(b);
        }
      }
    }
    size_t failures = 0;
    for (const std::string& s : inputs) {
      std::string expected;
      for (const char c : s) {
        if (missing.find(c) == std::string::npos) expected += c;
      }
      for (const bool parse_special : {false, true}) {
        const std::vector<int32_t> ids = tok->Encode(s, parse_special);
        for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size());
        // Raw bytes survive byte-level BPE and SentencePiece byte fallback
        // (Metaspace drops a leading space, as Hugging Face does).
        if (name == "spm metaspace" || s.find("\xE2\x96\x81") != std::string::npos) continue;
        const std::string decoded = tok->Decode(ids, false);
        if (decoded != expected && ++failures <= 3) {
          ADD_FAILURE() << name << ": " << Show(s) << " decodes back as " << Show(decoded);
        }
      }
    }
    EXPECT_EQ(failures, 0u) << name;
  }
}

// Feeds ids one by one: every chunk is valid UTF-8 and the chunks add up to
// the full decode.
void ExpectStreamsLikeDecode(const Tokenizer& tok, const std::string& text, bool skip_special) {
  const std::vector<int32_t> ids = tok.Encode(text, true);
  StreamingDecoder decoder(tok, skip_special);
  std::string streamed;
  for (const int32_t id : ids) {
    const std::string chunk = decoder.Push(id);
    ASSERT_TRUE(IsValidUtf8(chunk)) << "chunk " << Show(chunk) << " of " << Show(text);
    streamed += chunk;
  }
  const std::string rest = decoder.Flush();
  ASSERT_TRUE(IsValidUtf8(rest));
  streamed += rest;
  EXPECT_EQ(streamed, tok.Decode(ids, skip_special)) << Show(text);
}

TEST(Streaming, EveryChunkIsValidUtf8) {
  const std::vector<std::string> texts = {"👨‍👩‍👧‍👦 family",
                                          "🇫🇷🇩🇪 flags",
                                          "你好，世界！日本語のテキスト",
                                          "नमस्ते दुनिया",
                                          "Z͑͒a͓͔l͕g͖o͗",
                                          "<|im_start|>user\n😀😀<|im_end|>",
                                          "mixed 🙂 text ✌🏿 and 한국어",
                                          " leading space",
                                          "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"};
  std::vector<const Tokenizer*> toks = {&SpmJson(), &SpmGguf()};
  for (const auto& entry : SmolLM2Tokenizers()) toks.push_back(entry.second);
  for (const Tokenizer* tok : toks) {
    for (const std::string& text : texts) {
      ExpectStreamsLikeDecode(*tok, text, true);
      ExpectStreamsLikeDecode(*tok, text, false);
    }
    for (const GoldenCase& c : LoadEncodeGolden().cases) ExpectStreamsLikeDecode(*tok, c.text, true);
  }
}

TEST(Streaming, InvalidBytesBecomeReplacementCharacters) {
  const Tokenizer& tok = SpmGguf();
  const int32_t e4 = *tok.TokenId("<0xE4>");
  const int32_t bd = *tok.TokenId("<0xBD>");
  const int32_t a0 = *tok.TokenId("<0xA0>");
  const int32_t ff = *tok.TokenId("<0xFF>");
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.Push(e4), "");  // held back: may become 你 (E4 BD A0)
  EXPECT_EQ(decoder.Push(bd), "");
  EXPECT_EQ(decoder.Push(a0), "你");
  EXPECT_EQ(decoder.Push(ff), "\xEF\xBF\xBD");  // can never be valid
  EXPECT_EQ(decoder.Push(e4), "");
  EXPECT_EQ(decoder.Flush(), "\xEF\xBF\xBD");  // cut short at the end
  EXPECT_EQ(decoder.Flush(), "");
  StreamingDecoder cut(tok);
  EXPECT_EQ(cut.Push(e4), "");
  EXPECT_EQ(cut.Push(*tok.TokenId("\xE2\x96\x81the")), "\xEF\xBF\xBD the");
}

TEST(Encode, EmptyAndWhitespaceOnly) {
  for (const auto& [name, tok] : SmolLM2Tokenizers()) {
    EXPECT_TRUE(tok->Encode("", true).empty()) << name;
    EXPECT_TRUE(tok->Decode(std::vector<int32_t>{}, true).empty());
  }
  EXPECT_TRUE(SpmJson().Encode("", true).empty());
  EXPECT_TRUE(SpmGguf().Encode("", true).empty());
  EXPECT_EQ(SpmGguf().EncodeWithBos("", true), std::vector<int32_t>{1});
}

TEST(Encode, ThreadSafe) {
  const auto& cases = LoadEncodeGolden().cases;
  std::vector<const Tokenizer*> toks = {&SpmJson(), &SpmGguf()};
  for (const auto& entry : SmolLM2Tokenizers()) toks.push_back(entry.second);
  for (const Tokenizer* tok : toks) {
    std::vector<std::vector<int32_t>> expected;
    for (size_t i = 0; i < 400 && i < cases.size(); ++i) expected.push_back(tok->Encode(cases[i].text, true));
    std::vector<std::thread> threads;
    std::atomic<int> mismatches{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (size_t i = 0; i < expected.size(); ++i) {
          const size_t k = (i * 7 + t * 13) % expected.size();
          if (tok->Encode(cases[k].text, true) != expected[k]) ++mismatches;
        }
      });
    }
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0);
  }
}

// Prints the encoding speed on a mixed text of ~2 MB (the brief asks for at
// least 1 MB/s). Not asserted: timing under a loaded `ctest -j` says nothing
// about the code, and belongs in benchmarks.
TEST(Encode, Throughput) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "timing is meaningless under sanitizers";
#endif
  std::string text;
  for (const GoldenCase& c : LoadEncodeGolden().cases) text += c.text + "\n";
  while (text.size() < (2u << 20)) text += text;
  std::vector<std::pair<std::string, const Tokenizer*>> toks = SmolLM2Tokenizers();
  toks.emplace_back("spm json", &SpmJson());
  toks.emplace_back("spm gguf", &SpmGguf());
  for (const auto& [name, tok] : toks) {
    const auto start = std::chrono::steady_clock::now();
    size_t n_ids = 0;
    // Line by line, as prompts arrive (SentencePiece BPE has no pre-split).
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = std::min(text.find('\n', pos), text.size());
      n_ids += tok->Encode(std::string_view(text).substr(pos, end - pos), true).size();
      pos = end + 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double mb_per_s = text.size() / seconds / 1e6;
    std::printf("encode %-15s %.1f MB/s (%zu bytes -> %zu ids)\n", name.c_str(), mb_per_s, text.size(),
                n_ids);
  }
}

}  // namespace
}  // namespace tokenlora::testing
