#include "test_util.h"

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

}  // namespace tokenlora::testing
