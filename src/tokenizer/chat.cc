// Chat formats, written out by hand to give exactly what the models' Jinja
// templates render (transformers' apply_chat_template), without a Jinja
// engine. The templates reproduced (verbatim copies in
// scripts/make_golden_tokenizer.py, checked by tests/golden/tokenizer/chat.json):
//   ChatML   SmolLM2 / Qwen2 (with a default system message), OpenHermes (without)
//   Llama 2  meta-llama/Llama-2-7b-chat-hf
//   Llama 3  meta-llama/Meta-Llama-3-8B-Instruct
//   Zephyr   HuggingFaceH4/zephyr-7b-beta
#include <optional>
#include <string>

#include "core/error.h"
#include "io/io_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tokenlora {
namespace {

using tokenizer_internal::DecodeUtf8;
using tokenizer_internal::IsPythonSpace;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Python's str.strip() (Jinja's trim filter calls it).
std::string Strip(std::string_view s) {
  size_t begin = 0;
  uint32_t cp;
  while (begin < s.size()) {
    const size_t n = DecodeUtf8(s, begin, &cp);
    if (n == 0 || !IsPythonSpace(cp)) break;
    begin += n;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
    if (DecodeUtf8(s, start, &cp) != end - start || !IsPythonSpace(cp)) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

// The text of a Jinja string literal starting at template_[quote] (a ' or ").
std::optional<std::string> ReadJinjaLiteral(std::string_view t, size_t quote) {
  const char q = t[quote];
  std::string out;
  for (size_t i = quote + 1; i < t.size(); ++i) {
    if (t[i] == q) return out;
    if (t[i] == '\\' && i + 1 < t.size()) {
      const char e = t[++i];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      continue;
    }
    out += t[i];
  }
  return std::nullopt;
}

// The system message a ChatML template inserts when the conversation does
// not start with one (SmolLM2: "You are a helpful AI assistant named
// SmolLM, ..."): a string literal '<|im_start|>system\n...<|im_end|>\n' in a
// template that tests messages[0]['role'] != 'system'.
std::optional<std::string> ChatMLDefaultSystem(std::string_view t) {
  if (!Contains(t, "!= 'system'") && !Contains(t, "!= \"system\"")) return std::nullopt;
  constexpr std::string_view kOpen = "<|im_start|>system\n";
  constexpr std::string_view kClose = "<|im_end|>";
  for (const char quote : {'\'', '"'}) {
    const std::string start = quote + std::string("<|im_start|>system");
    for (size_t pos = t.find(start); pos != std::string_view::npos; pos = t.find(start, pos + 1)) {
      const std::optional<std::string> literal = ReadJinjaLiteral(t, pos);
      if (!literal || literal->rfind(kOpen, 0) != 0) continue;
      const size_t close = literal->find(kClose);
      if (close != std::string::npos) return literal->substr(kOpen.size(), close - kOpen.size());
    }
  }
  return std::nullopt;
}

std::string SpecialText(const Tokenizer& tokenizer, int32_t id) {
  return id >= 0 ? tokenizer.TokenText(id) : "";
}

std::string FormatChatML(std::span<const ChatMessage> messages, bool add_generation_prompt,
                         const Tokenizer& tokenizer) {
  std::string out;
  if (!messages.empty() && messages[0].role != "system") {
    if (auto system = ChatMLDefaultSystem(tokenizer.chat_template())) {
      out.append("<|im_start|>system\n").append(*system).append("<|im_end|>\n");
    }
  }
  for (const ChatMessage& m : messages) {
    out.append("<|im_start|>").append(m.role).append("\n").append(m.content).append("<|im_end|>\n");
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string FormatLlama2(std::span<const ChatMessage> messages, const Tokenizer& tokenizer) {
  const std::string bos = SpecialText(tokenizer, tokenizer.bos_id());
  const std::string eos = SpecialText(tokenizer, tokenizer.eos_id());
  std::optional<std::string> system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    messages = messages.subspan(1);
  }
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    // The template's check: users at even positions, anything else at odd ones.
    if ((m.role == "user") != (i % 2 == 0)) {
      throw InputError(
          "chat (Llama 2 format): conversation roles must alternate user/assistant/user/assistant/...; "
          "message " +
          std::to_string(i + (system ? 2 : 1)) + " has role " + io_internal::Quote(m.role));
    }
    std::string content;
    if (i == 0 && system) content.append("<<SYS>>\n").append(*system).append("\n<</SYS>>\n\n");
    content.append(m.content);
    if (m.role == "user") {
      out.append(bos).append("[INST] ").append(Strip(content)).append(" [/INST]");
    } else if (m.role == "assistant") {
      out.append(" ").append(Strip(content)).append(" ").append(eos);
    }
  }
  return out;
}

std::string FormatLlama3(std::span<const ChatMessage> messages, bool add_generation_prompt,
                         const Tokenizer& tokenizer) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += SpecialText(tokenizer, tokenizer.bos_id());
    out.append("<|start_header_id|>").append(messages[i].role).append("<|end_header_id|>\n\n");
    out.append(Strip(messages[i].content)).append("<|eot_id|>");
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string FormatZephyr(std::span<const ChatMessage> messages, bool add_generation_prompt,
                         const Tokenizer& tokenizer) {
  const std::string eos = SpecialText(tokenizer, tokenizer.eos_id());
  std::string out;
  for (const ChatMessage& m : messages) {
    if (m.role == "user" || m.role == "system" || m.role == "assistant") {
      out.append("<|").append(m.role).append("|>\n").append(m.content).append(eos).append("\n");
    }
  }
  // The template emits the prompt inside its loop, after the last message.
  if (add_generation_prompt && !messages.empty()) out += "<|assistant|>\n";
  return out;
}

}  // namespace

ChatFormat DetectChatFormat(const Tokenizer& tokenizer) {
  const std::string& t = tokenizer.chat_template();
  if (Contains(t, "<|im_start|>")) return ChatFormat::kChatML;
  if (Contains(t, "<|start_header_id|>")) return ChatFormat::kLlama3;
  if (Contains(t, "[INST]") && Contains(t, "<<SYS>>")) return ChatFormat::kLlama2;
  if (Contains(t, "<|user|>") && Contains(t, "<|assistant|>")) return ChatFormat::kZephyr;
  if (t.empty()) {
    // No template at all: ChatML tokens are the only evidence, and enough.
    if (tokenizer.TokenId("<|im_start|>")) return ChatFormat::kChatML;
    throw InputError(
        "chat: the model has no chat template and no <|im_start|> token, so its chat format is unknown "
        "(supported: ChatML, Llama 2, Llama 3, Zephyr); use plain completion instead");
  }
  throw InputError(
      "chat: the model's chat template is not one of the supported formats (ChatML, Llama 2, "
      "Llama 3, Zephyr), and a guess would build prompts the model was not trained on; it starts " +
      io_internal::Quote(t, 120) + " — use plain completion (no --chat), or a model with a supported template");
}

std::string FormatChat(ChatFormat format, std::span<const ChatMessage> messages, bool add_generation_prompt,
                       const Tokenizer& tokenizer) {
  switch (format) {
    case ChatFormat::kChatML:
      return FormatChatML(messages, add_generation_prompt, tokenizer);
    case ChatFormat::kLlama2:
      return FormatLlama2(messages, tokenizer);  // the template has no generation prompt
    case ChatFormat::kLlama3:
      return FormatLlama3(messages, add_generation_prompt, tokenizer);
    case ChatFormat::kZephyr:
      return FormatZephyr(messages, add_generation_prompt, tokenizer);
  }
  TL_CHECK_MSG(false, "unknown ChatFormat");
}

}  // namespace tokenlora
