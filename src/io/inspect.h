// Human-readable summaries of model files, for `tokenlora inspect`.
#pragma once

#include <span>
#include <string>

namespace tokenlora {

class GgufFile;
class SafetensorsFile;

// Summarises a .gguf file, a .safetensors file, or a Hugging Face model
// directory (model.safetensors or a sharded index): header facts, every
// metadata key with its type and value (long arrays and strings cut), a table
// of tensors (name, dtype, shape, offset, bytes) and totals per dtype.
// Throws InputError for a file of another kind, with a hint about what it is.
std::string InspectModelFile(const std::string& path);

// The parts InspectModelFile prints, for files already parsed.
std::string FormatGgufSummary(const GgufFile& file);
// `files` are the shards of one model (or a single file); `title` heads the output.
std::string FormatSafetensorsSummary(std::span<const SafetensorsFile> files,
                                     const std::string& title);

}  // namespace tokenlora
