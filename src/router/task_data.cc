#include "router/task_data.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/io_util.h"
#include "io/json_text.h"

namespace tokenlora {
namespace {

bool IsBlank(std::string_view line) { return line.find_first_not_of(" \t\r\n") == std::string_view::npos; }

std::optional<RecordSlice::Bound> ParseBound(std::string_view s, std::string_view whole) {
  if (s.empty()) return std::nullopt;
  RecordSlice::Bound b;
  if (s.back() == '%') {
    b.percent = true;
    s.remove_suffix(1);
  }
  const std::string str(s);
  size_t used = 0;
  try {
    b.value = b.percent ? std::stod(str, &used) : static_cast<double>(std::stoll(str, &used));
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != str.size() || str.empty() || !std::isfinite(b.value)) {
    throw InputError("record slice " + io_internal::Quote(whole) + ": " + io_internal::Quote(s) +
                     " is not a record number or percentage (examples: [:90%], [5696:], [100:200])");
  }
  return b;
}

int64_t ResolveBound(const RecordSlice::Bound& b, int64_t n) {
  // datasets: int(round(pct * n / 100)), Python's round being half-to-even.
  double v = b.percent ? std::nearbyint(b.value * static_cast<double>(n) / 100.0) : b.value;
  if (v < 0) v += static_cast<double>(n);
  return std::clamp<int64_t>(static_cast<int64_t>(v), 0, n);
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[i + 1];
      if (n == 'n' || n == 't' || n == '\\') {
        out.push_back(n == 'n' ? '\n' : n == 't' ? '\t' : '\\');
        ++i;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

RecordSlice RecordSlice::Parse(std::string_view text) {
  RecordSlice s;
  s.text = std::string(text);
  std::string_view t = text;
  if (t.empty()) return s;
  if (t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  const size_t colon = t.find(':');
  if (colon == std::string_view::npos) {
    throw InputError("record slice " + io_internal::Quote(text) +
                     ": expected [BEGIN:END] (examples: [:90%], [5696:], [100:200])");
  }
  s.begin = ParseBound(t.substr(0, colon), text);
  s.end = ParseBound(t.substr(colon + 1), text);
  return s;
}

std::pair<int64_t, int64_t> RecordSlice::Resolve(int64_t n) const {
  const int64_t b = begin ? ResolveBound(*begin, n) : 0;
  const int64_t e = end ? ResolveBound(*end, n) : n;
  return {b, std::max(b, e)};
}

bool IsValidTaskName(std::string_view name) {
  return !name.empty() &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
             std::string_view::npos;
}

TaskSpec TaskSpec::Parse(std::string_view arg) {
  const auto fail = [&](const std::string& why) -> TaskSpec {
    throw InputError("--task " + io_internal::Quote(arg) + ": " + why +
                     " (expected NAME=FILE.jsonl[SLICE][:TEMPLATE], e.g. gsm8k=train.jsonl or "
                     "squad=dev.jsonl[:5696]:squad)");
  };
  TaskSpec spec;
  const size_t eq = arg.find('=');
  if (eq == std::string_view::npos) return fail("no '='");
  spec.name = std::string(arg.substr(0, eq));
  if (!IsValidTaskName(spec.name)) {
    return fail("task name " + io_internal::Quote(spec.name) + " must be letters, digits, '_', '-' or '.'");
  }
  std::string_view rest = arg.substr(eq + 1);
  const size_t file_end = rest.find_first_of("[:");
  spec.file = std::string(rest.substr(0, file_end));
  if (spec.file.empty()) return fail("no file");
  rest = file_end == std::string_view::npos ? std::string_view() : rest.substr(file_end);
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return fail("'[' of the record slice is not closed");
    spec.slice = RecordSlice::Parse(rest.substr(0, close + 1));
    rest = rest.substr(close + 1);
  }
  if (!rest.empty()) {
    if (rest.front() != ':') return fail("unexpected " + io_internal::Quote(rest) + " after the file");
    const std::string_view t = rest.substr(1);
    if (t.empty()) return fail("empty template after ':'");
    spec.template_spec = RecordTemplate::IsBuiltin(t) ? std::string(t) : Unescape(t);
  }
  return spec;
}

RecordTemplate TaskSpec::Template() const {
  if (!template_spec.empty()) return RecordTemplate::Parse(template_spec);
  if (RecordTemplate::IsBuiltin(name)) return RecordTemplate::Parse(name);
  throw InputError("--task " + name + "=" + file +
                   ": no template; add :TEMPLATE (built-in: gsm8k, arc_challenge, "
                   "squad, codealpaca; or a custom one such as ':Question: {question}')");
}

std::string TaskSpec::Describe() const { return file + slice.text + pooled_sources; }

TaskSpec TaskSpec::FromFile(std::string name, const std::string& file_with_slice) {
  TaskSpec spec;
  spec.name = std::move(name);
  spec.file = file_with_slice;
  const size_t open = file_with_slice.rfind('[');
  if (!file_with_slice.empty() && file_with_slice.back() == ']' && open != std::string::npos) {
    spec.file = file_with_slice.substr(0, open);
    spec.slice = RecordSlice::Parse(file_with_slice.substr(open));
  }
  return spec;
}

int64_t CountJsonlRecords(const std::string& path, const std::string& flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(flag + " " + io_internal::Quote(path) + " is a directory; expected a JSONL file (one JSON "
                     "record a line) — name the file inside it");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open " + io_internal::Quote(path) + " (check the path of " + flag + ")");
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !IsBlank(line);
  return n;
}

TaskRecords::TaskRecords(const TaskSpec& spec, const RecordTemplate& tmpl, int64_t limit, bool skip_bad)
    : spec_(spec), template_(tmpl), skip_bad_(skip_bad) {
  const int64_t n = CountJsonlRecords(spec.file, spec.flag);
  std::tie(begin_, end_) = spec.slice.Resolve(n);
  if (limit >= 0) end_ = std::min(end_, begin_ + limit);
  in_.open(spec.file, std::ios::binary);
  if (!in_) throw InputError("cannot open " + io_internal::Quote(spec.file));
}

bool TaskRecords::NextBatch(size_t n, std::vector<FormattedRecord>* out) {
  size_t added = 0;
  std::string line;
  while (added < n && record_ < end_ && std::getline(in_, line)) {
    ++line_;
    if (IsBlank(line)) continue;
    if (record_++ < begin_) continue;
    try {
      nlohmann::json j;
      try {
        j = ParseBoundedJson(line);
      } catch (const nlohmann::json::exception& e) {
        throw InputError(std::string("not valid JSON (") + e.what() + ")");
      }
      out->push_back({template_.Format(j), line_});
      ++added;
    } catch (const InputError& e) {
      const std::string where = spec_.file + ":" + std::to_string(line_) + ": " + e.what() + " (template " +
                                io_internal::Quote(template_.spec(), 60) + ")";
      if (!skip_bad_) {
        throw InputError(where + " — check the template's field names, or pass --skip-bad to skip bad records");
      }
      ++skipped_;
      if (skip_messages_.size() < 5) skip_messages_.push_back(where);
    }
  }
  return added > 0;
}

}  // namespace tokenlora
