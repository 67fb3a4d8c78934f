#include "router/record_template.h"

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora {
namespace {

using nlohmann::json;

std::string JoinPath(const std::vector<std::string>& path, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < path.size(); ++i) {
    if (i > 0) s.push_back('.');
    s.append(path[i]);
  }
  return s;
}

std::string KeysOf(const json& obj) {
  std::string keys;
  for (const auto& [k, v] : obj.items()) {
    if (keys.size() > 80) return keys + ", ...";
    if (!keys.empty()) keys.append(", ");
    keys.append(k);
  }
  return keys.empty() ? "none" : keys;
}

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

const json& At(const json& record, const std::vector<std::string>& path) {
  const json* v = &record;
  for (size_t i = 0; i < path.size(); ++i) {
    const std::string& key = path[i];
    if (v->is_object()) {
      const auto it = v->find(key);
      if (it == v->end()) {
        throw InputError("field '" + JoinPath(path, i + 1) + "' is missing" +
                         (i == 0 ? " (the record has: " : " (it has: ") + KeysOf(*v) + ")");
      }
      v = &*it;
    } else if (v->is_array()) {
      const bool numeric =
          !key.empty() && key.find_first_not_of("0123456789") == std::string::npos && key.size() < 9;
      if (!numeric) {
        throw InputError("field '" + JoinPath(path, i) + "' is a list; index it with a number ('" +
                         JoinPath(path, i) + ".0'), not '" + key + "'");
      }
      const size_t index = std::stoul(key);
      if (index >= v->size()) {
        throw InputError("field '" + JoinPath(path, i + 1) + "' is out of range: the list has " +
                         std::to_string(v->size()) + " items");
      }
      v = &(*v)[index];
    } else {
      throw InputError("field '" + JoinPath(path, i) + "' is " + TypeName(*v) + ", so it has no '" + key +
                       "'");
    }
  }
  return *v;
}

std::vector<std::string> SplitPath(std::string_view s) {
  std::vector<std::string> path;
  size_t start = 0;
  for (;;) {
    const size_t dot = s.find('.', start);
    path.emplace_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return path;
}

std::string Text(const json& record, std::string_view path) { return FieldText(record, SplitPath(path)); }

// ARC record up to "Answer:", AI2 form {"question": {"stem", "choices":
// [{"text", "label"}]}} or HF form {"question": str, "choices": {"text": [...],
// "label": [...]}}.
std::string ArcPrompt(const json& r) {
  std::string question, choices;
  const json& q = At(r, {"question"});
  if (q.is_object()) {
    question = Text(r, "question.stem");
    const json& list = At(r, {"question", "choices"});
    if (!list.is_array())
      throw InputError("field 'question.choices' is " + std::string(TypeName(list)) + ", expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = "question.choices." + std::to_string(i);
      if (i > 0) choices.push_back('\n');
      choices.append(Text(r, p + ".label")).append(". ").append(Text(r, p + ".text"));
    }
  } else {
    question = Text(r, "question");
    const json& labels = At(r, {"choices", "label"});
    const json& texts = At(r, {"choices", "text"});
    if (!labels.is_array() || !texts.is_array())
      throw InputError("fields 'choices.label' and 'choices.text' must be lists");
    // The reference zips the lists: the shorter one decides.
    for (size_t i = 0; i < std::min(labels.size(), texts.size()); ++i) {
      if (i > 0) choices.push_back('\n');
      choices.append(Text(r, "choices.label." + std::to_string(i)))
          .append(". ")
          .append(Text(r, "choices.text." + std::to_string(i)));
    }
  }
  return "Question: " + question + "\nChoices: " + choices + "\n\nAnswer:";
}

}  // namespace

std::string FieldText(const json& record, const std::vector<std::string>& path) {
  const json& v = At(record, path);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw InputError("field '" + JoinPath(path, path.size()) + "' is " + TypeName(v) + ", expected text" +
                   (v.is_array() ? " (pick an item: '" + JoinPath(path, path.size()) + ".0')" : ""));
}

bool RecordTemplate::IsBuiltin(std::string_view name) {
  for (const std::string& b : BuiltinNames()) {
    if (b == name) return true;
  }
  return false;
}

std::vector<std::string> RecordTemplate::BuiltinNames() {
  return {"gsm8k",        "arc_challenge",        "squad",        "codealpaca",
          "gsm8k_prompt", "arc_challenge_prompt", "squad_prompt", "codealpaca_prompt"};
}

RecordTemplate RecordTemplate::Parse(std::string_view spec) {
  RecordTemplate t;
  t.spec_ = std::string(spec);
  constexpr std::string_view kPromptSuffix = "_prompt";
  std::string_view base = spec;
  if (base.size() > kPromptSuffix.size() && base.substr(base.size() - kPromptSuffix.size()) == kPromptSuffix) {
    base.remove_suffix(kPromptSuffix.size());
    t.prompt_only_ = true;
  }
  if (base == "gsm8k") t.builtin_ = Builtin::kGsm8k;
  if (base == "arc_challenge") t.builtin_ = Builtin::kArc;
  if (base == "squad") t.builtin_ = Builtin::kSquad;
  if (base == "codealpaca") t.builtin_ = Builtin::kCodeAlpaca;
  if (t.builtin_ != Builtin::kNone) return t;
  t.prompt_only_ = false;
  if (spec.find('{') == std::string_view::npos) {
    throw InputError("unknown template " + io_internal::Quote(spec) +
                     " (built-in: gsm8k, arc_challenge, squad, codealpaca, each also as NAME_prompt; or a "
                     "custom template with {field})");
  }
  std::string literal;
  for (size_t i = 0; i < spec.size(); ++i) {
    const char c = spec[i];
    if ((c == '{' || c == '}') && i + 1 < spec.size() && spec[i + 1] == c) {  // {{ or }}
      literal.push_back(c);
      ++i;
    } else if (c == '{') {
      const size_t close = spec.find('}', i);
      if (close == std::string_view::npos) {
        throw InputError("template " + io_internal::Quote(spec) + ": '{' at offset " + std::to_string(i) +
                         " is not closed (write {{ for a literal brace)");
      }
      const std::string_view name = spec.substr(i + 1, close - i - 1);
      if (name.empty() || name.find_first_of("{ ") != std::string_view::npos || name.front() == '.' ||
          name.back() == '.' || name.find("..") != std::string_view::npos) {
        throw InputError("template " + io_internal::Quote(spec) + ": " +
                         io_internal::Quote(std::string("{") + std::string(name) + "}") +
                         " is not a field name (use {field}, {nested.field} or {list.0})");
      }
      t.parts_.push_back({std::move(literal), SplitPath(name)});
      literal.clear();
      i = close;
    } else if (c == '}') {
      throw InputError("template " + io_internal::Quote(spec) + ": '}' at offset " + std::to_string(i) +
                       " has no '{' (write }} for a literal brace)");
    } else {
      literal.push_back(c);
    }
  }
  t.parts_.push_back({std::move(literal), {}});
  return t;
}

std::string RecordTemplate::Format(const json& r) const {
  if (!r.is_object()) throw InputError("expected a JSON object, got " + std::string(TypeName(r)));
  // Built-ins: the prompt up to "Answer:", then " " and the answer unless
  // prompt_only_ (the answer field is then not read at all).
  std::string prompt;
  const char* answer_field = nullptr;
  switch (builtin_) {
    case Builtin::kGsm8k:
      prompt = "Question: " + Text(r, "question") + "\n\nAnswer:";
      answer_field = "answer";
      break;
    case Builtin::kArc:
      prompt = ArcPrompt(r);
      answer_field = "answerKey";
      break;
    case Builtin::kSquad:
      prompt = "Context:\n" + Text(r, "context") + "\n\nQuestion: " + Text(r, "question") + "\n\nAnswer:";
      answer_field = "answers.text.0";
      break;
    case Builtin::kCodeAlpaca: {
      const std::string input = Text(r, "input");
      prompt = Text(r, "instruction") + (input.empty() ? "" : "\nInput: " + input) + "\n\nAnswer:";
      answer_field = "output";
      break;
    }
    case Builtin::kNone:
      break;
  }
  if (answer_field != nullptr) return prompt_only_ ? prompt : prompt + " " + Text(r, answer_field);
  std::string out;
  for (const Part& p : parts_) {
    out += p.literal;
    if (!p.field.empty()) out += FieldText(r, p.field);
  }
  return out;
}

}  // namespace tokenlora
