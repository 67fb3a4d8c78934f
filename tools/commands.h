// The `tokenlora` command line: argument parsing only; the work happens in
// the library. Each subcommand registers its options and a run function.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <limits>
#include <string>

#include "lora/mixer.h"
#include "model/model.h"

namespace tokenlora::cli {

using RunFn = std::function<int()>;

RunFn AddGenerateCommand(CLI::App& app);
RunFn AddInspectCommand(CLI::App& app);
RunFn AddTokenizeCommand(CLI::App& app);
RunFn AddBenchCommand(CLI::App& app);
RunFn AddEmbedCommand(CLI::App& app);
RunFn AddRouteCommand(CLI::App& app);
RunFn AddRouterCommand(CLI::App& app);
RunFn AddMergeCommand(CLI::App& app);           // cmd_lora.cc
RunFn AddConvertAdapterCommand(CLI::App& app);  // cmd_lora.cc
RunFn AddQuantizeCommand(CLI::App& app);
RunFn AddTrainCommand(CLI::App& app);           // cmd_train.cc
RunFn AddEvalCommand(CLI::App& app);            // cmd_eval.cc
RunFn AddServeCommand(CLI::App& app);           // cmd_serve.cc

// The default model when -m is not given: $TOKENLORA_MODEL, else
// models/SmolLM2-135M-Instruct.Q4_1.gguf under the current directory or the
// source tree the binary was built from.
std::string DefaultModelPath();
// The Hugging Face id of the built-in model (DefaultModelPath() is its Q4_1 GGUF).
inline constexpr const char* kDefaultModelHfId = "HuggingFaceTB/SmolLM2-135M-Instruct";
// $env_var when set (nullptr: no variable), else `relative` (e.g. "models/all-MiniLM-L6-v2") under
// the current directory or under the source tree the binary was built from;
// `relative` itself when found nowhere (the loader's error then names it).
std::string FindBundledPath(const char* env_var, const std::string& relative);
int DefaultThreads();
// --activations int8|f32 (default int8) on commands that run the model;
// ModelOptionsFor turns the value and -t (0: every core) into Model::Load's
// options.
void AddActivationsOption(CLI::App* cmd, std::string* value);
ModelOptions ModelOptionsFor(const std::string& activations, int threads);
// --lora-activations int8|f32 (default int8) on commands that load adapters;
// MixerOptionsFor gives the mixer int8 products when the value is int8 and
// the model runs int8 activations (--activations int8), with --mix-mode.
void AddLoraActivationsOption(CLI::App* cmd, std::string* value);
MixerOptions MixerOptionsFor(const Model& model, const std::string& mix_mode, const std::string& lora_activations);
// --kv-type f16|f32 (default f16); ParseKvType (model/llama/kv_cache.h)
// turns the value into the cache's DType.
void AddKvTypeOption(CLI::App* cmd, std::string* value);
// The one check of a numeric flag, shared by every command (CLI11's own
// Range prints 300-digit bounds and calls text "not in range"): "expected
// an integer in [lo, hi], got 0", "expected an integer, got 'abc' (not a
// number)". A bound at the type's limit is left out of the message.
CLI::Validator IntRange(long long lo, long long hi = std::numeric_limits<int>::max());
// The same for a finite real number (nan and inf refused); `lo_exclusive`:
// lo itself is refused ("expected a number > 0 and <= 1e+06").
CLI::Validator NumberRange(double lo, double hi = std::numeric_limits<double>::max(), bool lo_exclusive = false);
// A program to run (bench --peer): a path must be an executable file, a
// bare name must be found on $PATH; "'X' does not exist" etc. otherwise.
CLI::Validator ExecutableFile();
// "exit code 3", "killed by signal 9", "not found (exit 127)" for a
// wait status from pclose/system.
std::string DescribeWaitStatus(int status);
// Text a user gives the model (-p, -f, --system, tokenize's TEXT) as valid
// UTF-8: each invalid byte becomes U+FFFD, as Hugging Face tokenizers see
// such input (Python decodes with errors="replace"), with one warning on
// stderr naming `source` and the first bad byte's offset. Never dropped
// silently.
std::string PromptUtf8(std::string text, const std::string& source);
// -t,--threads: worker threads in [1, 256] (default: physical cores), the
// same flag on every command.
void AddThreadsOption(CLI::App* cmd, int* threads);
// "int8 (vnni)" / "int8 (avx2)" when projections run with int8 activations
// (and which kernel), else "f32".
std::string ActivationsLabel(const Model& model);
// How the projection weights sit in memory: "huge pages (N of M MiB)",
// "4 KiB pages" (THP refused or TOKENLORA_HUGE_PAGES=0) or "mapped file".
std::string WeightPagesLabel(const Model& model);
// The embedder directory: `dir`, or when empty $TOKENLORA_EMBEDDER, else
// models/all-MiniLM-L6-v2 (found like the model). InputError with a hint
// when it does not exist.
std::string EmbedderPath(const std::string& dir);
// --embedder-precision f32|int8|auto (default auto: int8 where the CPU has
// int8 kernels). Parse it with ParseEncoderPrecision.
void AddEmbedderPrecisionOption(CLI::App* cmd, std::string* spec);
// InputError (naming `path`) unless a file can be written at `path`: its
// directory exists and is writable and `path` is not a directory. Called
// before long work whose result goes there.
void CheckWritableOutput(const std::string& path);

}  // namespace tokenlora::cli
