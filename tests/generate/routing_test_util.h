// Router files for the generation tests, built over the tiny BERT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <memory>

#include "lora/adapter_bank.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/router_file.h"

namespace tokenlora::testing {

// A bank of one random adapter per task name (rank 6, alpha 16, on q, v and
// down; seeds 7, 8, ...): visible but moderate changes to the tiny models.
std::unique_ptr<AdapterBank> RandomTaskAdapters(const Model& model, const std::vector<std::string>& tasks);

// One task per name, each centroid the embedding of the matching text, so
// the routing weights move as a generated text drifts between them.
RouterFile RouterFileFromTexts(Embedder& embedder, const std::vector<std::string>& tasks,
                               const std::vector<std::string>& centroid_texts);

// One task per name with random normal centroids (fixed seed).
RouterFile RandomRouterFile(const EmbedderIdentity& embedder, const std::vector<std::string>& tasks, uint32_t seed);

}  // namespace tokenlora::testing
