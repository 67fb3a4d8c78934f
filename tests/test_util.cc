#include "test_util.h"

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

std::string SharedPath(const std::string& relative) {
  if (const char* env = std::getenv("TOKENLORA_SHARED")) return std::string(env) + "/" + relative;
  return std::string(TOKENLORA_SOURCE_DIR) + "/../shared/" + relative;
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
