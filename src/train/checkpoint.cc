#include "train/checkpoint.h"

#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "io/safetensors.h"
#include "router/sha256.h"

namespace tokenlora {
namespace {

constexpr const char* kParts[] = {"lora_A", "lora_B", "adam_m_A", "adam_v_A", "adam_m_B", "adam_v_B"};

std::string TensorName(const TrainableModule& m, const char* part) { return HfModuleKey(m.layer, m.kind) + "." + part; }

// The six f32 arrays of module i in the file's order (A, B, then A's and B's
// AdamW moments), const when params is.
template <class Params>
auto Parts(Params& params, AdamW& optimizer, size_t i) {
  using Vector = std::conditional_t<std::is_const_v<Params>, const std::vector<float>, std::vector<float>>;
  auto& m = params.modules()[i];
  auto& moments = optimizer.moments()[i];
  return std::array<Vector*, 6>{&m.a, &m.b, &moments[0], &moments[1], &moments[2], &moments[3]};
}

// SHA-256 over every part's bytes, module by module: safetensors has no
// checksum, and a flipped bit in a moment would resume without a word.
std::string PartsDigest(const LoraParams& params, AdamW& optimizer) {
  Sha256 sha;
  for (size_t i = 0; i < params.modules().size(); ++i) {
    for (const std::vector<float>* part : Parts(params, optimizer, i)) sha.Update(part->data(), part->size() * sizeof(float));
  }
  return sha.HexDigest();
}

}  // namespace

void SaveCheckpoint(const std::string& path, const LoraParams& params, AdamW& optimizer,
                    const std::map<std::string, std::string>& fingerprint) {
  SafetensorsWriter st;
  st.SetMetadata("format", "tokenlora-train-checkpoint");
  st.SetMetadata("step", std::to_string(optimizer.step()));
  st.SetMetadata("sha256", PartsDigest(params, optimizer));
  for (const auto& [k, v] : fingerprint) st.SetMetadata("fp." + k, v);
  const auto& modules = params.modules();
  for (size_t i = 0; i < modules.size(); ++i) {
    const TrainableModule& m = modules[i];
    const auto data = Parts(params, optimizer, i);
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
    const auto data = Parts(params, optimizer, i);
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
  // After the finiteness check, so a diverged run (its NaNs summed into the
  // digest as written) keeps that message; checkpoints from before the digest
  // have none to check.
  const std::string recorded = get("sha256");
  if (recorded != "(missing)") {
    const std::string actual = PartsDigest(params, optimizer);
    if (actual != recorded) {
      throw InputError("checkpoint " + path + ": its tensors' SHA-256 is " + actual.substr(0, 16) +
                       "… but the file records " + recorded.substr(0, 16) +
                       "… — the file is corrupt (a disk or copy error); restore it, or start again without --resume");
    }
  }
  optimizer.set_step(step);
}

}  // namespace tokenlora
