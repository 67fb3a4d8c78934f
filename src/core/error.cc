#include "core/error.h"

namespace tokenlora {

void AbortWithMessage(const char* file, int line, const char* condition,
                      const std::string& message) {
  std::fprintf(stderr, "tokenlora: internal error at %s:%d: CHECK(%s) failed%s%s\n", file, line,
               condition, message.empty() ? "" : ": ", message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace tokenlora
