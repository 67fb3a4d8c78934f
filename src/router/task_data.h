// Where a task's records come from: `NAME=FILE.jsonl[SLICE][:TEMPLATE]` on
// the command line, and a reader that streams the file's records formatted by
// the template, batch by batch, with file:line in every error.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/record_template.h"

namespace tokenlora {

// Records [begin, end) of a file, written like Hugging Face split slices:
// "[:90%]", "[5696:]", "[100:200]", "[-10%:]". Percentages round to the
// nearest record (ties to even, as Python's round in `datasets`).
struct RecordSlice {
  struct Bound {
    double value = 0;
    bool percent = false;
  };
  std::optional<Bound> begin, end;
  std::string text;  // as written, "" for the whole file

  // `text` without or with the brackets. Throws InputError.
  static RecordSlice Parse(std::string_view text);
  // [begin, end) clamped to [0, n_records].
  std::pair<int64_t, int64_t> Resolve(int64_t n_records) const;
};

// A task (adapter) name: non-empty, letters, digits, '_', '-' or '.' — the
// one rule for --task, router files and --adapter names that match them.
bool IsValidTaskName(std::string_view name);
inline constexpr const char* kTaskNameRule = "must be non-empty: letters, digits, '_', '-' or '.'";

struct TaskSpec {
  std::string name;
  std::string file;
  RecordSlice slice;
  std::string template_spec;  // "" = the built-in template named like the task
  std::string flag = "--task";  // the flag that gave it, named in errors ("--data", "--val" for train)
  std::string pooled_sources;   // " + FILE[SLICE]..." of later --task NAME=... pooled into this one (router build)

  // NAME=FILE[SLICE][:TEMPLATE]. NAME is letters, digits, '_', '-', '.'. In a
  // custom TEMPLATE, \n, \t and \\ stand for newline, tab and backslash (a
  // shell cannot easily pass a newline). FILE cannot contain ':' or '['.
  static TaskSpec Parse(std::string_view arg);
  // `name` reading FILE or FILE[SLICE] (no template: the caller's own).
  static TaskSpec FromFile(std::string name, const std::string& file_with_slice);
  // The template to use; InputError when none was given and NAME is not a built-in.
  RecordTemplate Template() const;
  std::string Describe() const;  // "FILE[SLICE]" (+ pooled_sources)
};

// Non-blank lines of a JSONL file, counted once up front.
// Non-blank lines of a JSONL file. InputError naming `flag` when `path` is
// missing, a directory or unreadable.
int64_t CountJsonlRecords(const std::string& path, const std::string& flag = "--task");

struct FormattedRecord {
  std::string text;
  int64_t line = 0;  // 1-based line of the file
};

class TaskRecords {
 public:
  // `limit` < 0: no limit (applied after the slice). With `skip_bad`, a
  // record that is not JSON or lacks a field is counted and skipped;
  // otherwise it throws InputError "FILE:LINE: ...".
  TaskRecords(const TaskSpec& spec, const RecordTemplate& tmpl, int64_t limit, bool skip_bad);

  int64_t total() const { return end_ - begin_; }  // records the slice and limit select
  int64_t done() const { return std::max<int64_t>(0, std::min(record_, end_) - begin_); }  // read so far
  // Appends up to `n` formatted records; false once the selection is exhausted.
  bool NextBatch(size_t n, std::vector<FormattedRecord>* out);
  int64_t skipped() const { return skipped_; }
  // The first few skip reasons, "FILE:LINE: ...".
  const std::vector<std::string>& skip_messages() const { return skip_messages_; }

 private:
  TaskSpec spec_;
  RecordTemplate template_;
  bool skip_bad_;
  std::ifstream in_;
  int64_t line_ = 0;    // lines read
  int64_t record_ = 0;  // records (non-blank lines) read
  int64_t begin_ = 0, end_ = 0;
  int64_t skipped_ = 0;
  std::vector<std::string> skip_messages_;
};

}  // namespace tokenlora
