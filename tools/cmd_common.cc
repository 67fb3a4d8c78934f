#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "commands.h"
#include "core/thread_pool.h"

namespace tokenlora::cli {
namespace fs = std::filesystem;

std::string DefaultModelPath() {
  return FindBundledPath("TOKENLORA_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

std::string FindBundledPath(const char* env_var, const std::string& rel) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (fs::exists(rel, ec)) return rel;
  // Next to the source tree of this binary: <root>/build/tools/tokenlora.
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      if (fs::exists(dir / rel, ec)) return (dir / rel).string();
    }
  }
  return rel;  // the loader's error then says how to fetch it
}

int DefaultThreads() { return ThreadPool::PhysicalCores(); }

}  // namespace tokenlora::cli
