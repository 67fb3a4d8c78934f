// Command-line and config spellings of adapters and mixtures, shared by the
// front ends (generate, merge, bench, server): "NAME=PATH" and
// "NAME=W,NAME=W".
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tokenlora {

struct AdapterSpec {
  std::string name;
  std::string path;
};

// "math=/data/math-lora" → {math, /data/math-lora}. A bare path names the
// adapter after its file or directory stem. Throws InputError.
AdapterSpec ParseAdapterSpec(const std::string& text);

// "math=0.7,code=0.3" → {{math, 0.7}, {code, 0.3}}. Throws InputError for a
// malformed item, a non-finite weight or a name given twice.
std::vector<std::pair<std::string, float>> ParseMixSpec(const std::string& text);

}  // namespace tokenlora
