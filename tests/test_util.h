#pragma once
#include <string>

namespace tokenlora::testing {
// Absolute path of a file under the source tree (tests/golden/..., etc).
std::string SourcePath(const std::string& relative);
// The shared data folder (../shared beside the checkout, or $TOKENLORA_SHARED).
std::string SharedPath(const std::string& relative);
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
