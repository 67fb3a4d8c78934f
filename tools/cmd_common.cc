#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "core/number_text.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/int8_matmul.h"
#include "tokenizer/tokenizer.h"

namespace tokenlora::cli {
namespace fs = std::filesystem;

std::string DefaultModelPath() {
  return FindBundledPath("TOKENLORA_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

std::string FindBundledPath(const char* env_var, const std::string& rel) {
  if (const char* env = env_var != nullptr ? std::getenv(env_var) : nullptr; env != nullptr && *env != '\0') return env;
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

namespace {
std::string Bounds(const std::string& what, const std::string& lo, const std::string& hi, bool has_lo,
                   bool has_hi) {
  if (has_lo && has_hi) return "expected " + what + " in [" + lo + ", " + hi + "]";
  if (has_lo) return "expected " + what + " >= " + lo;
  if (has_hi) return "expected " + what + " <= " + hi;
  return "expected " + what;
}
}  // namespace

CLI::Validator IntRange(long long lo, long long hi) {
  const bool has_lo = lo > std::numeric_limits<int>::min(), has_hi = hi < std::numeric_limits<int>::max();
  const std::string expected = Bounds("an integer", std::to_string(lo), std::to_string(hi), has_lo, has_hi);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0') return expected + ", got '" + text + "' (not an integer)";
        if (errno == ERANGE || v < lo || v > hi) return expected + ", got " + text;
        return {};
      },
      has_lo && has_hi ? "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"
                       : (has_lo ? "INT >= " + std::to_string(lo) : "INT"));
}

CLI::Validator NumberRange(double lo, double hi, bool lo_exclusive) {
  const bool has_lo = lo > -std::numeric_limits<double>::max(), has_hi = hi < std::numeric_limits<double>::max();
  const std::string expected =
      lo_exclusive ? "expected a number > " + GeneralNumber(lo) + (has_hi ? " and <= " + GeneralNumber(hi) : std::string())
                   : Bounds("a number", GeneralNumber(lo), GeneralNumber(hi), has_lo, has_hi);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0') return expected + ", got '" + text + "' (not a number)";
        if (!std::isfinite(v) || v < lo || v > hi || (lo_exclusive && v == lo)) return expected + ", got " + text;
        return {};
      },
      has_lo && has_hi ? "NUMBER in [" + GeneralNumber(lo) + ", " + GeneralNumber(hi) + "]" : (has_lo ? "NUMBER >= " + GeneralNumber(lo) : "NUMBER"));
}

CLI::Validator ExecutableFile() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        std::error_code ec;
        if (path.find('/') == std::string::npos) {
          const char* env = std::getenv("PATH");
          std::string dirs = env != nullptr ? env : "";
          for (size_t start = 0; start <= dirs.size();) {
            const size_t colon = std::min(dirs.find(':', start), dirs.size());
            const fs::path candidate = fs::path(dirs.substr(start, colon - start)) / path;
            if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return {};
            start = colon + 1;
          }
          return "'" + path + "' is not a program on $PATH; give its path (e.g. ./llama-bench)";
        }
        if (!fs::exists(path, ec)) return "'" + path + "' does not exist";
        if (fs::is_directory(path, ec)) return "'" + path + "' is a directory; expected the program inside it";
        if (::access(path.c_str(), X_OK) != 0) return "'" + path + "' is not executable (chmod +x?)";
        return {};
      },
      "PROGRAM");
}

std::string DescribeWaitStatus(int status) {
  if (status == -1) return "could not be run";
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == 127) return "exit code 127: the shell could not run it";
    return "exit code " + std::to_string(code);
  }
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

std::string PromptUtf8(std::string text, const std::string& source) {
  size_t bad = std::string::npos;
  std::string fixed = ToValidUtf8(text, &bad);
  if (bad == std::string::npos) return text;
  std::fprintf(stderr,
               "tokenlora: warning: %s is not valid UTF-8 (first bad byte 0x%02x at offset %zu); each invalid byte "
               "is read as U+FFFD, as Hugging Face tokenizers do\n",
               source.c_str(), static_cast<unsigned>(static_cast<unsigned char>(text[bad])), bad);
  return fixed;
}

void AddEmbedderPrecisionOption(CLI::App* cmd, std::string* spec) {
  cmd->add_option("--embedder-precision", *spec,
                  "the router encoder's arithmetic: int8 (8-bit weights and activations, ~3x faster; cosine to f32 "
                  ">= 0.999), f32 (exact, as the reference), or auto (int8 where the CPU has int8 kernels)")
      ->capture_default_str();
}

void AddThreadsOption(CLI::App* cmd, int* threads) {
  cmd->add_option("-t,--threads", *threads, "worker threads (default: physical cores)")->check(IntRange(1, 256));
}

void AddActivationsOption(CLI::App* cmd, std::string* value) {
  cmd->add_option("--activations", *value,
                  "int8 (default): Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K projections quantize activations to 8 bits and use "
                  "integer dot products (AVX-512 VNNI or AVX2; as llama.cpp does); f32: exact f32 activations")
      ->check(CLI::IsMember({"int8", "f32"}))
      ->capture_default_str();
}

void AddLoraActivationsOption(CLI::App* cmd, std::string* value) {
  cmd->add_option("--lora-activations", *value,
                  "int8 (default): with --activations int8 the adapters' products also quantize their inputs to 8 "
                  "bits, on Q8_0 copies of the adapters (their logits move by ~1% of the adapters' effect); f32: "
                  "exact f32 products (PEFT to 1e-4), as with --activations f32")
      ->check(CLI::IsMember({"int8", "f32"}))
      ->capture_default_str();
}

MixerOptions MixerOptionsFor(const Model& model, const std::string& mix_mode, const std::string& lora_activations) {
  MixerOptions o;
  o.mode = ParseMixMode(mix_mode);
  o.int8_activations = model.int8_projections() > 0 && lora_activations == "int8";
  return o;
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
  // Whole 2 MiB pages may reach past the buffer's end: count only its bytes.
  const size_t huge = std::min(buf->HugePageBytes(), buf->size());
  if (huge == 0) return "4 KiB pages";
  char text[64];
  auto mib = [](size_t bytes) { return (bytes + (size_t{1} << 20) - 1) >> 20; };
  std::snprintf(text, sizeof text, "huge pages (%zu of %zu MiB)", mib(huge), mib(buf->size()));
  return text;
}

ModelOptions ModelOptionsFor(const std::string& activations, int threads) {
  ModelOptions o;
  o.int8_activations = activations == "int8";
  o.load_threads = threads;
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
