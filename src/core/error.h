// Two tiers of errors (see STYLE.md):
//  * InputError: bad user input (files, flags, requests). The message names the
//    file/field, expected vs got, and a hint. Only front ends catch it
//    (CLI exit code 2, HTTP 400).
//  * TL_CHECK: a broken invariant inside the engine. Aborts with file:line.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tokenlora {

class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& message) : std::runtime_error(message) {}
};

[[noreturn]] void AbortWithMessage(const char* file, int line, const char* condition,
                                   const std::string& message);

}  // namespace tokenlora

#define TL_CHECK(cond)                                                 \
  do {                                                                 \
    if (!(cond)) ::tokenlora::AbortWithMessage(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define TL_CHECK_MSG(cond, msg)                                              \
  do {                                                                       \
    if (!(cond)) ::tokenlora::AbortWithMessage(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)
