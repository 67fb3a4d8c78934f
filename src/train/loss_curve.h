// An SVG chart of training loss per step (and validation loss points).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tokenlora {

// train, val: (step, loss) pairs. Returns the SVG document.
std::string LossCurveSvg(const std::vector<std::pair<double, double>>& train,
                         const std::vector<std::pair<double, double>>& val, const std::string& title);

}  // namespace tokenlora
