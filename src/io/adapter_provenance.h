// How a trained LoRA adapter came about, recorded in its adapter_config.json
// the way PEFT records it (base_model_name_or_path, task_type, lora_dropout),
// plus what PEFT has no field for: the base model file the adapter was
// trained on and its SHA-256 (under "tokenlora", a key PEFT >= 0.14 ignores
// with a warning). The adapter writers (src/lora) write the weights and the
// shape fields; this module stamps the training fields in afterwards, so
// `train` and `convert-adapter` can keep them.
#pragma once

#include <optional>
#include <string>

namespace tokenlora {

struct AdapterProvenance {
  std::string base_model_name_or_path;  // Hugging Face id of the base (PEFT's field)
  std::string task_type = "CAUSAL_LM";  // PEFT TaskType
  double lora_dropout = 0.0;            // the dropout the trainer applied to the adapters' inputs
  std::string base_model_file;          // the base file trained on, name only (no directories)
  std::string base_model_sha256;        // hex SHA-256 of that file; "" when unknown
};

// Sets the provenance fields in DIR/adapter_config.json (rewritten
// atomically; every other field is kept). Throws InputError naming the file
// when it is missing or not a JSON object.
void WriteAdapterProvenance(const std::string& dir, const AdapterProvenance& p);

// The provenance fields of DIR/adapter_config.json; nullopt when it records
// no base model (an adapter not written by `tokenlora train`). Throws
// InputError naming the file when it is unreadable or malformed.
std::optional<AdapterProvenance> ReadAdapterProvenance(const std::string& dir);

}  // namespace tokenlora
