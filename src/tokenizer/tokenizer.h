// Tokenizers: byte-level BPE (GPT-2 style: SmolLM2, Llama 3, Qwen2) and
// SentencePiece-style BPE (Llama 2), loaded from GGUF metadata or from a
// Hugging Face tokenizer.json. Ids match the Hugging Face tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tokenlora {

class GgufFile;

enum class TokenizerKind { kByteLevelBpe, kSentencePieceBpe };

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual TokenizerKind kind() const = 0;
  virtual int32_t vocab_size() const = 0;

  // Encodes `text` without adding BOS/EOS. With `parse_special`, the text of
  // special (added/control) tokens such as "<|im_start|>" becomes that token;
  // otherwise it is encoded as plain text.
  virtual std::vector<int32_t> Encode(std::string_view text, bool parse_special) const = 0;

  // The bytes that token `id` stands for (byte-level and <0xNN> pieces
  // decoded, SentencePiece "▁" turned into a space). Special tokens give
  // their text ("<|im_end|>"). Out-of-range ids give "".
  virtual std::string TokenBytes(int32_t id) const = 0;
  // The token's string as stored in the vocabulary.
  virtual const std::string& TokenText(int32_t id) const = 0;
  virtual std::optional<int32_t> TokenId(std::string_view token_text) const = 0;
  // Control/special tokens (BOS, EOS, <|im_start|>, ...).
  virtual bool IsSpecial(int32_t id) const = 0;

  // -1 when the model has none.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  // Extra end-of-generation tokens (e.g. <|im_end|>, <|eot_id|>).
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  bool add_bos() const { return add_bos_; }
  // Jinja chat template from the model files, "" if none.
  const std::string& chat_template() const { return chat_template_; }

  // Encode with BOS prepended when the model asks for it.
  std::vector<int32_t> EncodeWithBos(std::string_view text, bool parse_special) const;
  // Concatenated bytes of the ids; `skip_special` drops special tokens.
  // SentencePiece models drop the one leading space the first piece carries.
  std::string Decode(std::span<const int32_t> ids, bool skip_special) const;
  bool IsEndOfGeneration(int32_t id) const;
  // SentencePiece models: Decode drops the space the first piece carries
  // (the dummy prefix the encoder added).
  bool decode_strips_leading_space() const { return decode_strips_leading_space_; }

 protected:
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  std::vector<int32_t> stop_ids_;
  bool add_bos_ = false;
  std::string chat_template_;
  bool decode_strips_leading_space_ = false;
};

// From GGUF metadata (tokenizer.ggml.model = "gpt2" or "llama", with
// tokenizer.ggml.pre choosing the pre-tokenizer). Throws InputError naming
// the file and key.
std::unique_ptr<Tokenizer> LoadTokenizerFromGguf(const GgufFile& gguf);
// From a Hugging Face tokenizer.json (+ tokenizer_config.json beside it when
// present, for BOS/EOS, add_bos_token and chat_template). Merges may be
// written as "a b" or ["a", "b"].
std::unique_ptr<Tokenizer> LoadTokenizerFromJson(const std::string& tokenizer_json_path);
// Same from the text of tokenizer.json (for fuzzing); `name` names it in errors.
std::unique_ptr<Tokenizer> ParseTokenizerJson(std::string_view json_text, const std::string& name,
                                              std::string_view tokenizer_config_text = {});

// Turns a stream of token ids into text, holding back bytes of an incomplete
// UTF-8 sequence so every string it returns is valid UTF-8 (an invalid
// sequence becomes U+FFFD).
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  std::string Push(int32_t id);
  std::string Flush();  // whatever is held back, invalid bytes as U+FFFD

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;
};

// Chat formatting for instruct models.
struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};
enum class ChatFormat { kChatML, kLlama2, kLlama3, kZephyr };
// Picks the format from a Jinja chat template's text; ChatML when unknown
// and the vocabulary has <|im_start|>. Throws InputError when none fits.
ChatFormat DetectChatFormat(const Tokenizer& tokenizer);

// `text` with each invalid UTF-8 byte replaced by U+FFFD — what a Hugging
// Face tokenizer receives for such input (Python decodes it with
// errors="replace"). `*first_bad` (when given) is the offset of the first
// invalid byte, or std::string::npos when the text is valid.
std::string ToValidUtf8(std::string_view text, size_t* first_bad = nullptr);
std::string FormatChat(ChatFormat format, std::span<const ChatMessage> messages,
                       bool add_generation_prompt, const Tokenizer& tokenizer);

}  // namespace tokenlora
