#include "lora/mix_spec.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora {
using io_internal::Quote;

AdapterSpec ParseAdapterSpec(const std::string& text) {
  const size_t eq = text.find('=');
  // A '/' before the '=' means the '=' belongs to the path.
  if (eq == std::string::npos || text.substr(0, eq).find('/') != std::string::npos) {
    std::filesystem::path p(text);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" → "dir"
    const std::string stem = p.stem().string();
    if (stem.empty()) throw InputError("--adapter " + Quote(text) + ": expected NAME=PATH");
    return {stem, text};
  }
  AdapterSpec spec{text.substr(0, eq), text.substr(eq + 1)};
  if (spec.name.empty() || spec.path.empty()) {
    throw InputError("--adapter " + Quote(text) + ": expected NAME=PATH with both parts non-empty");
  }
  return spec;
}

std::vector<std::pair<std::string, float>> ParseMixSpec(const std::string& text) {
  std::vector<std::pair<std::string, float>> mix;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError("--mix " + Quote(text) + ": item " + Quote(item) + " is not NAME=WEIGHT");
    }
    const std::string name = item.substr(0, eq), value = item.substr(eq + 1);
    float w = 0;
    try {
      size_t used = 0;
      w = std::stof(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw InputError("--mix " + Quote(text) + ": weight " + Quote(value) + " of " + Quote(name) +
                       " is not a number");
    }
    if (!std::isfinite(w))
      throw InputError("--mix " + Quote(text) + ": weight of " + Quote(name) + " is not finite");
    for (const auto& [n, unused] : mix) {
      if (n == name) throw InputError("--mix " + Quote(text) + ": " + Quote(name) + " is given twice");
    }
    mix.emplace_back(name, w);
  }
  return mix;
}

}  // namespace tokenlora
