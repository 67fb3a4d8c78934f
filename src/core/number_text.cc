#include "core/number_text.h"

#include <charconv>

namespace tokenlora {

std::string GeneralNumber(double v) {
  // std::to_chars in general form with a precision is specified as printf's
  // "%.6g" in the C locale; 32 characters hold any double written that way.
  char text[32];
  const std::to_chars_result r = std::to_chars(text, text + sizeof text, v, std::chars_format::general, 6);
  return std::string(text, r.ptr);
}

}  // namespace tokenlora
