// Numbers in messages and labels, written the way printf's %g writes them.
#pragma once

#include <string>

namespace tokenlora {

// `v` with six significant digits and no trailing zeros, switching to an
// exponent for very large or small magnitudes: 0.9, 50, 1e-05, 65536, inf.
// A float passed in is widened first, so 0.9f reads 0.9 as well.
std::string GeneralNumber(double v);

}  // namespace tokenlora
