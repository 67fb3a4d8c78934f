#include "io/adapter_provenance.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/json_text.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps the writer's key order

Json ReadConfig(const std::string& path) {
  if (!fs::exists(path)) {
    throw InputError(path + ": missing — expected a PEFT adapter directory with adapter_config.json");
  }
  Json j = ParseBoundedJson<Json>(ReadTextFile(path), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object, got invalid JSON or another type");
  return j;
}

// Reads `key` of `j` as a string; "" when absent or null.
std::string StringField(const Json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return "";
  if (!j[key].is_string()) {
    throw InputError(path + ": " + key + " must be a string, got " + j[key].dump() +
                     " — edited by hand? A Hugging Face id such as \"HuggingFaceTB/SmolLM2-135M-Instruct\" is "
                     "expected");
  }
  return j[key].get<std::string>();
}

}  // namespace

void WriteAdapterProvenance(const std::string& dir, const AdapterProvenance& p) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  Json j = ReadConfig(path);
  j["task_type"] = p.task_type;
  j["base_model_name_or_path"] = p.base_model_name_or_path.empty() ? Json(nullptr) : Json(p.base_model_name_or_path);
  // A float probability such as 0.1f reads back as 0.10000000149; six
  // decimals are more than any dropout setting carries.
  j["lora_dropout"] = std::round(p.lora_dropout * 1e6) / 1e6;
  Json base = Json::object();
  base["base_model_file"] = p.base_model_file.empty() ? Json(nullptr) : Json(p.base_model_file);
  base["base_model_sha256"] = p.base_model_sha256.empty() ? Json(nullptr) : Json(p.base_model_sha256);
  j["tokenlora"] = base;
  WriteFileAtomically(path, j.dump(2) + "\n");
}

std::optional<AdapterProvenance> ReadAdapterProvenance(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  const Json j = ReadConfig(path);
  AdapterProvenance p;
  p.base_model_name_or_path = StringField(j, "base_model_name_or_path", path);
  if (p.base_model_name_or_path.empty()) return std::nullopt;
  if (const std::string t = StringField(j, "task_type", path); !t.empty()) p.task_type = t;
  if (j.contains("lora_dropout") && !j["lora_dropout"].is_null()) {
    if (!j["lora_dropout"].is_number()) {
      throw InputError(path + ": lora_dropout must be a number, got " + j["lora_dropout"].dump());
    }
    p.lora_dropout = j["lora_dropout"].get<double>();
  }
  if (j.contains("tokenlora") && j["tokenlora"].is_object()) {
    p.base_model_file = StringField(j["tokenlora"], "base_model_file", path);
    p.base_model_sha256 = StringField(j["tokenlora"], "base_model_sha256", path);
  }
  return p;
}

}  // namespace tokenlora
