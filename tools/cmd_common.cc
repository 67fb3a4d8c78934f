#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/int8_matmul.h"

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

void AddActivationsOption(CLI::App* cmd, std::string* value) {
  cmd->add_option("--activations", *value,
                  "int8 (default): Q4_0/Q4_1/Q8_0 projections quantize activations to 8 bits and use "
                  "integer dot products (AVX-512 VNNI or AVX2; as llama.cpp does); f32: exact f32 activations")
      ->check(CLI::IsMember({"int8", "f32"}))
      ->capture_default_str();
}

void AddKvTypeOption(CLI::App* cmd, std::string* value) {
  cmd->add_option("--kv-type", *value,
                  "KV cache elements: f16 (default, as llama.cpp: half the memory and the attention's reads) "
                  "or f32 (exact)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
}

std::string ActivationsLabel(const Model& model) {
  if (model.int8_projections() == 0) return "f32";
  return std::string("int8 (") + (kernels::internal::ForceScalar() ? "scalar" : kernels::Int8KernelName()) + ")";
}

std::string WeightPagesLabel(const Model& model) {
  const StreamBuffer* buf = model.weight_buffer();
  if (buf == nullptr) return "mapped file";
  const size_t huge = buf->HugePageBytes();
  if (huge == 0) return "4 KiB pages";
  char text[64];
  std::snprintf(text, sizeof text, "huge pages (%zu of %zu MiB)", huge >> 20, (buf->size() + (1u << 20) - 1) >> 20);
  return text;
}

ModelOptions ModelOptionsFor(const std::string& activations) {
  ModelOptions o;
  o.int8_activations = activations == "int8";
  return o;
}

void CheckWritableOutput(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path + " is a directory; give a file name to write");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) {
    throw InputError("cannot write " + path + ": directory " + dir.string() + " does not exist (create it first)");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw InputError("cannot write " + path + ": directory " + dir.string() + " is not writable");
  }
}

std::string EmbedderPath(const std::string& dir) {
  const std::string path = dir.empty() ? FindBundledPath("TOKENLORA_EMBEDDER", "models/all-MiniLM-L6-v2") : dir;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw InputError("embedder " + path +
                     " not found: run scripts/fetch-models (it brings all-MiniLM-L6-v2), "
                     "or pass --embedder DIR / set $TOKENLORA_EMBEDDER");
  }
  return path;
}

}  // namespace tokenlora::cli
