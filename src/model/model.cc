#include "model/model.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/int8_matmul.h"

namespace tokenlora {
namespace fs = std::filesystem;

std::unique_ptr<Model> Model::Load(const std::string& path, const ModelOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw InputError("model '" + path + "' does not exist (run scripts/fetch-models for the "
                     "default model, or pass a .gguf file or a Hugging Face model directory)");
  }
  fs::path dir = path;
  if (fs::is_regular_file(path, ec)) {
    if (fs::path(path).extension() == ".safetensors") {
      dir = fs::path(path).parent_path();
      if (dir.empty()) dir = ".";
      const std::string file = fs::path(path).filename().string();
      if (file == "adapter_model.safetensors") {
        throw InputError("'" + path + "' is a PEFT adapter's weights, not a model — give the adapter's directory "
                         "to --adapter NAME=DIR, and the base model to -m");
      }
      if (!fs::exists(dir / "config.json", ec)) {
        throw InputError("'" + path + "': a safetensors file is loaded as part of its Hugging Face directory, "
                         "and '" + dir.string() + "' has no config.json beside it — keep config.json, "
                         "tokenizer.json and model.safetensors together and pass the directory");
      }
    } else {
      m->format_ = "gguf";
      m->gguf_ = std::make_unique<GgufFile>(GgufFile::Open(path));
      const GgufFile& g = *m->gguf_;
      if (auto type = g.FindString("general.type"); type && *type != "model") {
        throw InputError("'" + path + "': general.type is '" + *type +
                         "', not a model — a LoRA adapter goes to --adapter, not -m");
      }
      m->config_ = ConfigFromGguf(g);
      m->weights_ = WeightsFromGguf(g, m->config_);
      m->tokenizer_ = LoadTokenizerFromGguf(g);
      m->Finish();
      m->PlaceWeights(options);
      return m;
    }
  }
  m->format_ = "safetensors";
  const std::string config_path = (dir / "config.json").string();
  if (!fs::exists(config_path)) {
    throw InputError("'" + dir.string() + "': no config.json — a Hugging Face model directory "
                     "needs config.json, model.safetensors (or its index) and tokenizer.json");
  }
  m->config_ = ConfigFromHfJson(ReadTextFile(config_path), config_path);
  m->safetensors_ = std::make_unique<SafetensorsModel>(SafetensorsModel::OpenDirectory(dir.string()));
  m->weights_ = WeightsFromSafetensors(*m->safetensors_, m->config_, dir.string());
  if (m->weights_.output.weight.data == m->weights_.token_embd.data) m->config_.tied_embeddings = true;
  const std::string tokenizer_path = (dir / "tokenizer.json").string();
  if (!fs::exists(tokenizer_path)) {
    throw InputError("'" + dir.string() + "': no tokenizer.json beside config.json");
  }
  m->tokenizer_ = LoadTokenizerFromJson(tokenizer_path);
  m->Finish();
  m->PlaceWeights(options);
  return m;
}

void Model::PlaceWeights(const ModelOptions& options) {
  const bool int8 = options.int8_activations && kernels::Int8Accelerated();
  auto packs = [&](const Linear& l) { return int8 && kernels::Int8Packable(l.weight.dtype); };
  const std::vector<Linear*> all = AllProjections();
  if (!options.stream_buffer) {
    for (Linear* l : all) {
      if (!packs(*l)) continue;
      l->packed = kernels::PackForInt8(l->weight);
      ++int8_projections_;
    }
    return;
  }
  auto bytes = [&](const Linear& l) {
    const size_t n = packs(l) ? kernels::PackedInt8Bytes(l.weight) : l.weight.NumBytes();
    return (n + 63) / 64 * 64;
  };
  std::vector<size_t> offsets(all.size() + 1, 0);  // each matrix's place in the buffer
  for (size_t i = 0; i < all.size(); ++i) offsets[i + 1] = offsets[i] + bytes(*all[i]);
  weight_buffer_ = std::make_unique<StreamBuffer>(offsets.back());
  for (const Linear* l : all) int8_projections_ += packs(*l) ? 1 : 0;
  // Repacking a 7B model's 4 GB is seconds of work for one core: the
  // matrices go to the cores in turn (each writes only its own slice).
  ThreadPool pool(options.load_threads > 0 ? options.load_threads : ThreadPool::PhysicalCores());
  pool.ParallelForRanges(all.size(), 1, [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) {
      Linear* l = all[i];
      uint8_t* dst = weight_buffer_->data() + offsets[i];
      if (packs(*l)) {
        l->packed = kernels::PackForInt8Into(l->weight, dst);
      } else {
        std::memcpy(dst, l->weight.data, l->weight.NumBytes());
        l->weight.data = dst;
      }
    }
  });
}

std::vector<Linear*> Model::AllProjections() {
  std::vector<Linear*> all;
  for (LlamaLayer& layer : weights_.layers) {
    for (Linear* l : layer.Projections()) all.push_back(l);
  }
  all.push_back(&weights_.output);
  return all;
}

void Model::Finish() {
  rope_inv_freq_ = RopeInverseFrequencies(config_, weights_.rope_freq_factors);
  if (tokenizer_->vocab_size() > config_.vocab_size) {
    throw InputError("'" + path_ + "': the tokenizer has " +
                     std::to_string(tokenizer_->vocab_size()) + " tokens but the model's vocab_size is " +
                     std::to_string(config_.vocab_size) + " — tokenizer from another model?");
  }
}

}  // namespace tokenlora
