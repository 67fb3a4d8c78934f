#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace tokenlora::testing {

std::string SourcePath(const std::string& relative) {
  return std::string(TOKENLORA_SOURCE_DIR) + "/" + relative;
}

std::string DataDir() {
  if (const char* env = std::getenv("TOKENLORA_DATA"); env != nullptr && *env != '\0') return env;
  const std::string fetched = SourcePath("data");
  if (std::filesystem::is_directory(fetched)) return fetched;
  const std::string shared = SourcePath("../shared/data");
  return std::filesystem::is_directory(shared) ? shared : fetched;
}

std::string DataPath(const std::string& relative) { return DataDir() + "/" + relative; }

void MissingData(const std::string& what) {
  const char* ci = std::getenv("CI");
  const std::string msg = "data absent: " + what + " (data folder " + DataDir() +
                          "; run scripts/fetch-data, or set TOKENLORA_DATA to an existing copy)";
  if (ci != nullptr && (std::string(ci) == "true" || std::string(ci) == "1")) {
    ADD_FAILURE() << msg << "; under CI=true missing data fails the test instead of skipping it";
  } else {
    [&] { GTEST_SKIP() << msg; }();
  }
}

bool DataMissing(const std::string& path) {
  if (std::filesystem::exists(path)) return false;
  MissingData(path);
  return true;
}

std::string DefaultModelPath() {
  if (const char* env = std::getenv("TOKENLORA_MODEL")) return env;
  const std::string p = SourcePath("models/SmolLM2-135M-Instruct.Q4_1.gguf");
  return std::filesystem::exists(p) ? p : "";
}

std::string TempDir() {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("tokenlora_test_" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

CliResult RunTokenlora(const std::string& args) { return RunTokenlora(args, ""); }

CliResult RunTokenlora(const std::string& args, const std::string& stdout_file) {
  std::string cmd = std::string(TOKENLORA_BINARY_DIR) + "/tools/tokenlora " + args + " 2>&1";
  if (!stdout_file.empty()) cmd += " >'" + stdout_file + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed: " + cmd};
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace tokenlora::testing
