#include "train/checkpoint.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/safetensors.h"

namespace tokenlora {
namespace {

constexpr const char* kParts[] = {"lora_A", "lora_B", "adam_m_A", "adam_v_A", "adam_m_B", "adam_v_B"};

std::string TensorName(const TrainableModule& m, const char* part) { return HfModuleKey(m.layer, m.kind) + "." + part; }

}  // namespace

void SaveCheckpoint(const std::string& path, const LoraParams& params, AdamW& optimizer,
                    const std::map<std::string, std::string>& fingerprint) {
  SafetensorsWriter st;
  st.SetMetadata("format", "tokenlora-train-checkpoint");
  st.SetMetadata("step", std::to_string(optimizer.step()));
  for (const auto& [k, v] : fingerprint) st.SetMetadata("fp." + k, v);
  const auto& modules = params.modules();
  for (size_t i = 0; i < modules.size(); ++i) {
    const TrainableModule& m = modules[i];
    const std::vector<float>* data[] = {&m.a,
                                        &m.b,
                                        &optimizer.moments()[i][0],
                                        &optimizer.moments()[i][1],
                                        &optimizer.moments()[i][2],
                                        &optimizer.moments()[i][3]};
    for (int p = 0; p < 6; ++p) {
      const bool is_a = p == 0 || p == 2 || p == 3;
      const std::vector<int64_t> shape =
          is_a ? std::vector<int64_t>{params.rank(), m.n_in} : std::vector<int64_t>{m.n_out, params.rank()};
      st.AddTensor(TensorName(m, kParts[p]), DType::kF32, shape, data[p]->data(), data[p]->size() * sizeof(float));
    }
  }
  st.Write(path);
}

void LoadCheckpoint(const std::string& path, LoraParams& params, AdamW& optimizer,
                    const std::map<std::string, std::string>& fingerprint) {
  const SafetensorsFile f = SafetensorsFile::Open(path);
  const auto& meta = f.metadata();
  auto get = [&](const std::string& key) -> std::string {
    const auto it = meta.find(key);
    return it == meta.end() ? std::string("(missing)") : it->second;
  };
  if (get("format") != "tokenlora-train-checkpoint") {
    throw InputError("checkpoint " + path + ": metadata format is '" + get("format") +
                     "', expected 'tokenlora-train-checkpoint' — not a tokenlora training checkpoint?");
  }
  for (const auto& [k, v] : fingerprint) {
    const std::string got = get("fp." + k);
    if (got != v) {
      throw InputError("checkpoint " + path + ": " + k + " is " + got + " there but " + v +
                       " in this run — resume with the options of the interrupted run");
    }
  }
  int64_t step = 0;
  try {
    step = std::stoll(get("step"));
  } catch (const std::exception&) {
    throw InputError("checkpoint " + path + ": metadata 'step' is '" + get("step") + "', expected an integer");
  }
  auto& modules = params.modules();
  for (size_t i = 0; i < modules.size(); ++i) {
    TrainableModule& m = modules[i];
    std::vector<float>* data[] = {&m.a,
                                  &m.b,
                                  &optimizer.moments()[i][0],
                                  &optimizer.moments()[i][1],
                                  &optimizer.moments()[i][2],
                                  &optimizer.moments()[i][3]};
    for (int p = 0; p < 6; ++p) {
      const std::string name = TensorName(m, kParts[p]);
      const TensorView* t = f.Find(name);
      if (t == nullptr || t->dtype != DType::kF32 || static_cast<size_t>(t->NumElements()) != data[p]->size()) {
        throw InputError("checkpoint " + path + ": tensor " + name + " is missing or not f32 of " +
                         std::to_string(data[p]->size()) + " values");
      }
      std::memcpy(data[p]->data(), t->data, data[p]->size() * sizeof(float));
      for (size_t j = 0; j < data[p]->size(); ++j) {
        const float v = (*data[p])[j];
        if (!std::isfinite(v)) {
          throw InputError("checkpoint " + path + ": tensor " + name + " holds " + (std::isnan(v) ? "NaN" : "Inf") +
                           " at element " + std::to_string(j) +
                           " — the run diverged before this checkpoint, or the file is corrupt; start again "
                           "without --resume (a lower --lr, or --max-grad-norm, may help)");
        }
      }
    }
  }
  optimizer.set_step(step);
}

}  // namespace tokenlora
