#pragma once
#include <string>

namespace tokenlora::testing {
// Absolute path of a file under the source tree (tests/golden/..., etc).
std::string SourcePath(const std::string& relative);
// The data sets folder (gsm8k/, arc_challenge/, squad/, codealpaca/,
// tokenizers/): $TOKENLORA_DATA when set, else data/ in the checkout
// (scripts/fetch-data), else ../shared/data beside the checkout, else data/.
// The same rule as scripts/data_dir.py.
std::string DataDir();
// DataDir() + "/" + relative.
std::string DataPath(const std::string& relative);
// Reports that data a test needs is absent: the test is skipped, or, under CI
// (CI=true in the environment), fails. `what` names the missing data. Call
// from the test body and return afterwards.
void MissingData(const std::string& what);
// True, after MissingData(path), when `path` does not exist:
//   if (testing::DataMissing(p)) return;
bool DataMissing(const std::string& path);
// The default model GGUF (models/ under the source tree, or $TOKENLORA_MODEL);
// empty if not fetched.
std::string DefaultModelPath();
// A fresh temporary directory for one test.
std::string TempDir();

// Runs the built `tokenlora` binary with `args` (shell syntax).
struct CliResult {
  int code;         // exit status (-1 if it did not exit normally)
  std::string out;  // stdout and stderr together
};
CliResult RunTokenlora(const std::string& args);
// The same with stdout written to `stdout_file` (out: stderr only).
CliResult RunTokenlora(const std::string& args, const std::string& stdout_file);
}  // namespace tokenlora::testing
