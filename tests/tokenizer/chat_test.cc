// FormatChat against transformers' apply_chat_template on the models' own
// templates (tests/golden/tokenizer/chat.json), and format detection.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

namespace tokenlora::testing {
namespace {

using nlohmann::json;

// A tiny byte-level tokenizer whose vocabulary holds `specials`, with the
// given tokenizer_config.json fields.
std::unique_ptr<Tokenizer> TinyTokenizer(const std::vector<std::string>& specials, const json& config) {
  json vocab = json::object();
  json added = json::array();
  int id = 0;
  for (const char c : std::string("abc")) vocab[std::string(1, c)] = id++;
  for (const std::string& s : specials) {
    vocab[s] = id;
    added.push_back({{"id", id}, {"content", s}, {"special", true}});
    ++id;
  }
  const json tokenizer = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
      {"added_tokens", added},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
  };
  return ParseTokenizerJson(tokenizer.dump(), "tiny tokenizer.json", config.is_null() ? "" : config.dump());
}

ChatFormat FormatByName(const std::string& name) {
  if (name == "chatml") return ChatFormat::kChatML;
  if (name == "llama2") return ChatFormat::kLlama2;
  if (name == "llama3") return ChatFormat::kLlama3;
  if (name == "zephyr") return ChatFormat::kZephyr;
  ADD_FAILURE() << "unknown format " << name;
  return ChatFormat::kChatML;
}

TEST(Chat, MatchesTransformersApplyChatTemplate) {
  std::ifstream in(SourcePath("tests/golden/tokenizer/chat.json"));
  ASSERT_TRUE(in.good());
  const json golden = json::parse(in);
  std::map<std::string, std::unique_ptr<Tokenizer>> tokenizers;
  for (const auto& [name, t] : golden["templates"].items()) {
    std::vector<std::string> specials;
    json config = {{"chat_template", t["template"]}};
    for (const char* key : {"bos", "eos"}) {
      if (t[key].is_null()) continue;
      specials.push_back(t[key].get<std::string>());
      config[std::string(key) + "_token"] = t[key];
    }
    tokenizers[name] = TinyTokenizer(specials, config);
    EXPECT_EQ(DetectChatFormat(*tokenizers[name]), FormatByName(t["format"].get<std::string>())) << name;
  }
  size_t checked = 0;
  for (const json& c : golden["cases"]) {
    const std::string name = c["name"].get<std::string>();
    const Tokenizer& tok = *tokenizers.at(name);
    std::vector<ChatMessage> messages;
    for (const json& m : c["messages"])
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    const bool gen = c["add_generation_prompt"].get<bool>();
    const ChatFormat format = DetectChatFormat(tok);
    SCOPED_TRACE(name + " " + c["messages"].dump() + (gen ? " +generation prompt" : ""));
    if (c["expected"].is_null()) {
      EXPECT_THROW(FormatChat(format, messages, gen, tok), InputError);
    } else {
      EXPECT_EQ(FormatChat(format, messages, gen, tok), c["expected"].get<std::string>());
    }
    ++checked;
  }
  EXPECT_GE(checked, 90u);
}

TEST(Chat, SmolLM2GgufTemplate) {
  const Tokenizer* tok = SmolLM2Gguf();
  if (tok == nullptr) GTEST_SKIP() << "default model not fetched";
  ASSERT_EQ(DetectChatFormat(*tok), ChatFormat::kChatML);
  const std::vector<ChatMessage> user_only = {{"user", "Hi"}};
  EXPECT_EQ(
      FormatChat(ChatFormat::kChatML, user_only, true, *tok),
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const std::vector<ChatMessage> with_system = {{"system", "Be terse."}, {"user", "Hi"}};
  EXPECT_EQ(FormatChat(ChatFormat::kChatML, with_system, false, *tok),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  // The formatted prompt encodes with the chat tokens as single ids.
  const std::vector<int32_t> ids = tok->Encode(FormatChat(ChatFormat::kChatML, user_only, true, *tok), true);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);
}

TEST(Chat, SentencePieceGgufIsLlama2) {
  const Tokenizer& tok = SpmGguf();
  ASSERT_EQ(DetectChatFormat(tok), ChatFormat::kLlama2);
  const std::vector<ChatMessage> messages = {{"system", "S"}, {"user", " Q "}, {"assistant", "A"}};
  EXPECT_EQ(FormatChat(ChatFormat::kLlama2, messages, true, tok),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n Q [/INST] A </s>");  // strip() sees the whole block
}

TEST(Chat, UnknownTemplateIsRefusedNotGuessed) {
  // A template in no supported format, on a vocabulary with ChatML tokens:
  // refused (it used to fall back to ChatML silently).
  const auto tok = TinyTokenizer({"<|im_start|>", "<|im_end|>"},
                                 {{"chat_template", "{% for m in messages %}<<USER>>{{ m.content }}{% endfor %}"}});
  try {
    DetectChatFormat(*tok);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("not one of the supported formats"), std::string::npos) << what;
    EXPECT_NE(what.find("<<USER>>"), std::string::npos) << what;
  }
}

TEST(Chat, DetectionWithoutTemplate) {
  // No template but ChatML tokens: ChatML, without a default system message.
  const auto chatml = TinyTokenizer({"<|im_start|>", "<|im_end|>"}, nullptr);
  ASSERT_EQ(DetectChatFormat(*chatml), ChatFormat::kChatML);
  const std::vector<ChatMessage> messages = {{"user", "x"}};
  EXPECT_EQ(FormatChat(ChatFormat::kChatML, messages, true, *chatml),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
  // Neither: refused, with the supported formats named.
  const auto none = TinyTokenizer({"<s>"}, nullptr);
  try {
    DetectChatFormat(*none);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ChatML, Llama 2, Llama 3, Zephyr"), std::string::npos) << e.what();
  }
  // An unknown template: refused, quoting its start.
  const auto odd =
      TinyTokenizer({"<s>"}, json{{"chat_template", "{{ 'Human: ' + messages[0]['content'] }}"}});
  try {
    DetectChatFormat(*odd);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("Human: "), std::string::npos) << e.what();
  }
}

TEST(Chat, EmptyConversation) {
  const auto tok = TinyTokenizer({"<|im_start|>", "<|im_end|>"}, nullptr);
  EXPECT_EQ(FormatChat(ChatFormat::kChatML, {}, true, *tok), "<|im_start|>assistant\n");
  EXPECT_EQ(FormatChat(ChatFormat::kZephyr, {}, true, *tok), "");
  EXPECT_EQ(FormatChat(ChatFormat::kLlama2, {}, true, *tok), "");
  EXPECT_EQ(FormatChat(ChatFormat::kLlama3, {}, true, *tok),
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

}  // namespace
}  // namespace tokenlora::testing
