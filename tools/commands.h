// The `tokenlora` command line: argument parsing only; the work happens in
// the library. Each subcommand registers its options and a run function.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

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
// $env_var when set, else `relative` (e.g. "models/all-MiniLM-L6-v2") under
// the current directory or under the source tree the binary was built from;
// `relative` itself when found nowhere (the loader's error then names it).
std::string FindBundledPath(const char* env_var, const std::string& relative);
int DefaultThreads();
// --activations int8|f32 (default int8) on commands that run the model;
// ModelOptionsFor turns the value into Model::Load's options.
void AddActivationsOption(CLI::App* cmd, std::string* value);
ModelOptions ModelOptionsFor(const std::string& activations);
// --kv-type f16|f32 (default f16); ParseKvType (model/llama/kv_cache.h)
// turns the value into the cache's DType.
void AddKvTypeOption(CLI::App* cmd, std::string* value);
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
// InputError (naming `path`) unless a file can be written at `path`: its
// directory exists and is writable and `path` is not a directory. Called
// before long work whose result goes there.
void CheckWritableOutput(const std::string& path);

}  // namespace tokenlora::cli
