// Turns a data-set record (one JSON object of a JSONL file) into the text the
// router embeds. Built-in templates reproduce the formats of the reference
// code (jb-01/LoRA-TLE utils/data.py) character for character:
//   gsm8k          Question: {question}\n\nAnswer: {answer}
//   arc_challenge  Question: {question}\nChoices: A. t1\nB. t2 ...\n\nAnswer: {answerKey}
//                  (the AI2 files' question.stem / question.choices, or the HF
//                  ai2_arc row form question / choices.text / choices.label)
//   squad          Context:\n{context}\n\nQuestion: {question}\n\nAnswer: {answers.text.0}
//   codealpaca     {instruction}\nInput: {input}\n\nAnswer: {output}, without the
//                  Input line when input is ""
// and NAME_prompt (gsm8k_prompt, ...): the same text cut after "Answer:", what
// a model is asked at inference (the answer field is not read).
// Custom templates substitute {field}, {nested.field} and {list.0}; {{ and }}
// are literal braces. Strings go in as they are, numbers and booleans as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tokenlora {

class RecordTemplate {
 public:
  // A built-in name, or a custom template (anything with a '{'). Throws
  // InputError for an unknown name or a malformed template.
  static RecordTemplate Parse(std::string_view spec);
  static bool IsBuiltin(std::string_view name);
  static std::vector<std::string> BuiltinNames();

  // The text for `record`. Throws InputError (no location: the caller adds
  // file:line) naming the missing or mistyped field.
  std::string Format(const nlohmann::json& record) const;
  // The spec as given: a built-in name or the custom template text.
  const std::string& spec() const { return spec_; }

 private:
  enum class Builtin { kNone, kGsm8k, kArc, kSquad, kCodeAlpaca };
  struct Part {
    std::string literal;             // text before the field
    std::vector<std::string> field;  // path; empty for the trailing literal
  };
  std::string spec_;
  Builtin builtin_ = Builtin::kNone;
  bool prompt_only_ = false;  // NAME_prompt
  std::vector<Part> parts_;
};

// The value at a dotted path ("question.stem", "answers.text.0") as text, per
// the rules above. Throws InputError naming the path.
std::string FieldText(const nlohmann::json& record, const std::vector<std::string>& path);

}  // namespace tokenlora
