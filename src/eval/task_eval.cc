#include "eval/task_eval.h"

#include <fstream>

#include "core/error.h"
#include "eval/task_metrics.h"
#include "io/io_util.h"
#include "io/json_text.h"
#include "router/record_template.h"
#include "router/task_data.h"

namespace tokenlora::eval {
namespace {

using nlohmann::json;

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string FirstLine(std::string_view s) {
  const std::string t = Trim(s);
  return Trim(std::string_view(t).substr(0, t.find('\n')));
}

// The choice labels of an ARC record, AI2 or Hugging Face form.
std::vector<std::string> ArcLabels(const json& r) {
  std::vector<std::string> labels;
  const json& q = r.at("question");
  if (q.is_object()) {
    for (const json& c : q.at("choices")) labels.push_back(FieldText(c, {"label"}));
  } else {
    for (const json& l : r.at("choices").at("label")) labels.push_back(l.is_string() ? l.get<std::string>() : l.dump());
  }
  return labels;
}

std::vector<std::string> SquadReferences(const json& r) {
  std::vector<std::string> refs;
  const json& text = r.at("answers").at("text");
  if (!text.is_array() || text.empty()) throw InputError("field 'answers.text' is not a non-empty list");
  for (const json& t : text) refs.push_back(FieldText(t, {}));
  return refs;
}

// Throws InputError when `record` lacks what scoring `task` reads.
void CheckScorable(EvalTask task, const json& record) {
  try {
    switch (task) {
      case EvalTask::kGsm8k:
        if (!Gsm8kFinalNumber(FieldText(record, {"answer"})).has_value()) {
          throw InputError("field 'answer' has no final number (expected '#### N' at its end)");
        }
        break;
      case EvalTask::kArc:
        FieldText(record, {"answerKey"});
        if (ArcLabels(record).empty()) throw InputError("the record has no choices");
        break;
      case EvalTask::kSquad:
        SquadReferences(record);
        break;
      case EvalTask::kCodeAlpaca:
        FieldText(record, {"output"});
        break;
    }
  } catch (const json::exception& e) {
    throw InputError(std::string("the record does not have the ") + EvalTaskName(task) + " fields (" + e.what() + ")");
  }
}

}  // namespace

EvalTask ParseEvalTask(std::string_view name) {
  if (name == "gsm8k") return EvalTask::kGsm8k;
  if (name == "arc_challenge") return EvalTask::kArc;
  if (name == "squad") return EvalTask::kSquad;
  if (name == "codealpaca") return EvalTask::kCodeAlpaca;
  throw InputError("unknown task " + io_internal::Quote(name) + " (expected gsm8k, arc_challenge, squad or codealpaca)");
}

const char* EvalTaskName(EvalTask task) {
  switch (task) {
    case EvalTask::kGsm8k:
      return "gsm8k";
    case EvalTask::kArc:
      return "arc_challenge";
    case EvalTask::kSquad:
      return "squad";
    case EvalTask::kCodeAlpaca:
      return "codealpaca";
  }
  return "?";
}

const char* EvalMetricName(EvalTask task) {
  switch (task) {
    case EvalTask::kGsm8k:
      return "exact final number";
    case EvalTask::kArc:
      return "answer letter";
    case EvalTask::kSquad:
      return "exact match";
    case EvalTask::kCodeAlpaca:
      return "ROUGE-L F";
  }
  return "?";
}

AnswerLimits DefaultAnswerLimits(EvalTask task) {
  switch (task) {
    case EvalTask::kGsm8k:  // worked solutions have no blank line; the next "Question:" would follow one
      return {256, {"\n\n"}};
    case EvalTask::kArc:
      return {8, {"\n"}};
    case EvalTask::kSquad:
      return {32, {"\n"}};
    case EvalTask::kCodeAlpaca:  // code has blank lines; stop at a new "Question"/instruction block only
      return {192, {"\n\n\n", "\n\nQuestion:"}};
  }
  return {128, {}};
}

std::vector<EvalItem> LoadEvalItems(const std::string& file_with_slice, EvalTask task, int64_t limit,
                                    int64_t stride) {
  if (stride < 1) throw InputError("stride: expected >= 1, got " + std::to_string(stride));
  const TaskSpec spec = TaskSpec::FromFile(EvalTaskName(task), file_with_slice);
  const int64_t n = CountJsonlRecords(spec.file);
  auto [begin, end] = spec.slice.Resolve(n);
  const RecordTemplate prompt = RecordTemplate::Parse(std::string(EvalTaskName(task)) + "_prompt");
  std::ifstream in(spec.file, std::ios::binary);
  std::vector<EvalItem> items;
  int64_t record = 0, line_no = 0;
  for (std::string line; record < end && (limit < 0 || std::ssize(items) < limit) && std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const int64_t index = record++;
    if (index < begin || (index - begin) % stride != 0) continue;
    EvalItem item;
    item.line = line_no;
    try {
      item.record = ParseBoundedJson(line);
      item.prompt = prompt.Format(item.record);
      CheckScorable(task, item.record);
    } catch (const json::exception& e) {
      throw InputError(spec.file + ":" + std::to_string(line_no) + ": not a JSON record (" + e.what() + ")");
    } catch (const InputError& e) {
      throw InputError(spec.file + ":" + std::to_string(line_no) + ": " + e.what() + " (is this a " +
                       EvalTaskName(task) + " file? check --task)");
    }
    items.push_back(std::move(item));
  }
  if (items.empty()) throw InputError(spec.Describe() + ": no records (empty file or slice?)");
  return items;
}

ItemScore ScoreAnswer(EvalTask task, const json& record, std::string_view output) {
  ItemScore s;
  switch (task) {
    case EvalTask::kGsm8k: {
      s.reference = Gsm8kFinalNumber(FieldText(record, {"answer"})).value_or("");
      s.predicted = Gsm8kFinalNumber(output).value_or("");
      s.score = Gsm8kNumbersEqual(s.predicted, s.reference) ? 1 : 0;
      break;
    }
    case EvalTask::kArc: {
      s.reference = FieldText(record, {"answerKey"});
      s.predicted = ArcAnswerLabel(output, ArcLabels(record));
      s.score = !s.predicted.empty() && s.predicted == s.reference ? 1 : 0;
      break;
    }
    case EvalTask::kSquad: {
      const std::vector<std::string> refs = SquadReferences(record);
      s.reference = refs.front();
      s.predicted = FirstLine(output);
      s.score = SquadExactMatch(s.predicted, refs);
      s.f1 = SquadF1(s.predicted, refs);
      break;
    }
    case EvalTask::kCodeAlpaca: {
      s.reference = FieldText(record, {"output"});
      s.predicted = Trim(output);
      s.score = RougeL(s.predicted, s.reference);
      break;
    }
  }
  return s;
}

}  // namespace tokenlora::eval
